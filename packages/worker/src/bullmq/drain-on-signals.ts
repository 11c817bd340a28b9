import type { WorkerLogger } from '../logger.js';

/**
 * Drains `pool` on the first SIGTERM/SIGINT (running attempts finish and publish their results;
 * see WorkerPool.close) and lets the process exit by itself once nothing is left open, which is
 * the proof that no connection or timer leaked. A second signal exits at once with code 130:
 * the attempts still running then stall and are recovered by another pool.
 * Returns a function that removes the handlers.
 */
export function drainOnSignals(
  pool: { close(): Promise<void> },
  options: { signals?: readonly NodeJS.Signals[]; logger?: WorkerLogger } = {},
): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let draining = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (draining) {
      options.logger?.warn({ signal }, 'pool:forced-exit');
      process.exit(130);
    }
    draining = true;
    options.logger?.info({ signal }, 'pool:signal');
    pool.close().then(
      () => remove(),
      (err: unknown) => {
        options.logger?.error({ err }, 'pool:drain-failed');
        process.exitCode = 1;
        remove();
      },
    );
  };
  const remove = (): void => {
    for (const signal of signals) process.off(signal, onSignal);
  };
  for (const signal of signals) process.on(signal, onSignal);
  return remove;
}
