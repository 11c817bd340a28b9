/**
 * A worker pool in its own process, for tests. Run with `node --import tsx` and env:
 * PREFIX, REDIS_URL, CONCURRENCY, LOCK_MS, STALLED_MS, MAX_STALLED. Prints `ready` once serving and
 * `started <attemptId>` when a task body starts, one per line on stdout; drains on SIGTERM and then exits on its own.
 */
import { drainOnSignals } from '../bullmq/drain-on-signals.js';
import { startWorker } from '../bullmq/start-worker.js';
import { silentLogger } from '../logger.js';
import { taskOf } from './fixtures.js';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

const pool = await startWorker({
  tasks: [
    taskOf('slow.echo', async ({ value, ms }, { attempt }) => {
      process.stdout.write(`started ${typeof value === 'string' ? value : JSON.stringify(value)} ${attempt}\n`);
      await new Promise((resolve) => setTimeout(resolve, Number(ms ?? 0)));
      return { value: value ?? null, pid: process.pid };
    }),
  ],
  redisUrl: env('REDIS_URL'),
  prefix: env('PREFIX'),
  concurrency: Number(env('CONCURRENCY', '4')),
  lockDurationMs: Number(env('LOCK_MS', '30000')),
  stalledIntervalMs: Number(env('STALLED_MS', '30000')),
  maxStalledCount: Number(env('MAX_STALLED', '1')),
  logger: silentLogger,
  name: `child-${process.pid}`,
});
process.stdout.write('ready\n');
// No process.exit: the child must exit by itself after the drain, or something leaked.
drainOnSignals(pool);
