/** How long one shutdown step may take before it is abandoned (a dropped connection never answers). */
export const CLOSE_STEP_TIMEOUT_MS = 10_000;

/**
 * Runs one shutdown step, bounded: a step that rejects or takes longer than `timeoutMs` is logged
 * (one line: what, why, that the shutdown goes on) and abandoned, so closing always finishes. The
 * timer is referenced on purpose: while a step is pending the process must stay alive to finish
 * the rest of the shutdown (with nothing else open, Node would exit 13 on a pending await).
 */
export async function closeWithin(
  what: string,
  step: () => Promise<void>,
  logger?: { warn(fields: object, message: string): void },
  timeoutMs = CLOSE_STEP_TIMEOUT_MS,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = await Promise.race([
      Promise.resolve().then(step).then(
        () => 'closed' as const,
        (error: unknown) => ({ error }),
      ),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
    ]);
    if (outcome === 'timeout') warn(logger, `closing ${what} took longer than ${timeoutMs} ms; abandoned it, shutdown goes on`);
    else if (outcome !== 'closed') warn(logger, `closing ${what} failed (${describe(outcome.error)}); shutdown goes on`);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function warn(logger: { warn(fields: object, message: string): void } | undefined, message: string): void {
  if (logger !== undefined) logger.warn({}, message);
  else process.stderr.write(`memoflow: warning: ${message}\n`);
}

function describe(error: unknown): string {
  try {
    return error instanceof Error ? error.message.split('\n')[0] ?? error.name : String(error);
  } catch {
    return 'an unprintable error';
  }
}
