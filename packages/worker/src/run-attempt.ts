import { toErrorInfo } from '@memoflow/engine';
import type { AttemptResult, Clock, Json, TaskAttempt, TaskOutcome, TaskRegistry } from '@memoflow/engine';
import { WorkerError } from './errors.js';
import { setLongTimeout } from './long-timeout.js';

/**
 * Runs one attempt to its AttemptResult. Shared by both dispatchers so embedded and distributed
 * modes time, classify and time out attempts identically.
 *
 * Contract:
 * - never rejects: every failure (unknown task, thrown value, timeout, bad outcome) becomes an
 *   `ok: false` result whose ErrorInfo comes from the engine's `toErrorInfo`;
 * - `startedAt`/`finishedAt` come from `clock`;
 * - `attempt.timeoutMs` (when not null) aborts the task's signal with a retryable TASK_TIMEOUT
 *   error and fails the attempt at once. A body that ignores its signal keeps running in the
 *   background (JavaScript cannot stop it); its eventual result or error is dropped;
 * - `signal` (shutdown) is forwarded to the task's context signal; the task decides what to do.
 */
export async function runAttempt(
  registry: TaskRegistry,
  attempt: TaskAttempt,
  clock: Clock,
  signal?: AbortSignal,
): Promise<AttemptResult> {
  const startedAt = clock.now();
  const base = {
    attemptId: attempt.id,
    runId: attempt.runId,
    nodeId: attempt.nodeId,
    attempt: attempt.attempt,
    startedAt,
  };
  const fail = (thrown: unknown): AttemptResult => ({
    ...base,
    finishedAt: clock.now(),
    ok: false,
    error: toErrorInfo(thrown),
  });

  const implementation = registry.get(attempt.task);
  if (implementation === undefined) return fail(unknownTask(attempt.task, registry));

  const controller = new AbortController();
  const forwardAbort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted === true) forwardAbort();
  else signal?.addEventListener('abort', forwardAbort, { once: true });
  let cancelTimer: (() => void) | undefined;

  try {
    // `then` turns a synchronous throw from `execute` into a rejection like any other.
    const execution = Promise.resolve().then(() =>
      implementation.execute(attempt.inputs, {
        runId: attempt.runId,
        nodeId: attempt.nodeId,
        attempt: attempt.attempt,
        signal: controller.signal,
      }),
    );
    let outcome: unknown;
    if (attempt.timeoutMs === null) {
      outcome = await execution;
    } else {
      const timeoutMs = attempt.timeoutMs;
      // The body may outlive its timeout; its late rejection must not become an unhandled one.
      execution.catch(() => undefined);
      outcome = await Promise.race([
        execution,
        new Promise<never>((_resolve, reject) => {
          cancelTimer = setLongTimeout(() => {
            const error = new WorkerError(
              'TASK_TIMEOUT',
              `task '${attempt.task}' (attempt ${attempt.id}) timed out after ${timeoutMs} ms`,
              { retryable: true },
            );
            controller.abort(error);
            reject(error);
          }, timeoutMs);
        }),
      ]);
    }
    const normalised = normaliseOutcome(outcome, attempt.task);
    return { ...base, finishedAt: clock.now(), ok: true, ...normalised };
  } catch (thrown) {
    return fail(thrown);
  } finally {
    cancelTimer?.();
    signal?.removeEventListener('abort', forwardAbort);
  }
}

function unknownTask(task: string, registry: TaskRegistry): WorkerError {
  const known = [...registry.keys()].sort();
  const list = known.length === 0 ? 'none' : known.map((name) => `'${name}'`).join(', ');
  return new WorkerError(
    'UNKNOWN_TASK',
    `task '${task}' is not registered with this worker (registered tasks: ${list})`,
  );
}

/**
 * An outcome must be `{ output, outputHash }`. `undefined` in either place (a body with no
 * output) becomes `null`, since it cannot cross a queue as JSON.
 */
function normaliseOutcome(outcome: unknown, task: string): TaskOutcome {
  if (typeof outcome !== 'object' || outcome === null || !('output' in outcome || 'outputHash' in outcome)) {
    throw new WorkerError(
      'INVALID_TASK_OUTCOME',
      `task '${task}' returned ${describe(outcome)} instead of a TaskOutcome ({ output, outputHash })`,
    );
  }
  const { output, outputHash } = outcome as { output?: Json; outputHash?: string | null };
  return { output: output ?? null, outputHash: outputHash ?? null };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object without `output`' : `a ${typeof value}`;
}

/** The result of an attempt that failed without its body finishing (no worker, abandoned, stalled). */
export function failedAttemptResult(attempt: TaskAttempt, error: unknown, now: Date): AttemptResult {
  return {
    attemptId: attempt.id,
    runId: attempt.runId,
    nodeId: attempt.nodeId,
    attempt: attempt.attempt,
    startedAt: now,
    finishedAt: now,
    ok: false,
    error: toErrorInfo(error),
  };
}
