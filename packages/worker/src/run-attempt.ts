import { toErrorInfo } from '@memoflow/engine';
import type { AttemptResult, Clock, Json, TaskAttempt, TaskImplementation, TaskOutcome, TaskRegistry } from '@memoflow/engine';
import { WorkerError } from './errors.js';
import { setLongTimeout } from './long-timeout.js';
import { tracedAttempt } from './attempt-tracing.js';

/**
 * Runs one attempt to its AttemptResult. Shared by both dispatchers so embedded and distributed
 * modes time, classify and time out attempts identically.
 *
 * Contract:
 * - never rejects: every failure (unknown task, thrown value, timeout, bad outcome) becomes an
 *   `ok: false` result whose ErrorInfo comes from the engine's `toErrorInfo`;
 * - `startedAt`/`finishedAt` come from `clock`;
 * - `attempt.timeoutMs` (when not null) aborts the task's signal with a retryable TASK_TIMEOUT
 *   error, then waits for the body to settle, up to `timeoutGraceMs`, before failing the attempt.
 *   The caller holds the attempt's concurrency slot until then, so a timed-out body still running
 *   counts against the concurrency bound and its retry does not start beside it. A body that
 *   ignores its signal past the grace cannot be stopped (JavaScript has no way to); the attempt
 *   fails anyway, `onTimeoutIgnored` is told (the dispatchers log a warning) and the body's
 *   eventual result or error is dropped;
 * - `signal` (shutdown) is forwarded to the task's context signal; the task decides what to do;
 * - an attempt traced from another definition than the registered one (version or signature, where
 *   both sides know it) is refused before the body runs: non-retryable TASK_VERSION_MISMATCH;
 * - it runs in its `memoflow.attempt <task>` span, the child of the node span it carries
 *   (attempt-tracing.ts; nothing is recorded with no OpenTelemetry SDK registered).
 */
/** How long a timed-out body may take to honour its abort before its slot is released anyway. */
export const DEFAULT_TIMEOUT_GRACE_MS = 10_000;

export interface RunAttemptOptions {
  /** Shutdown: forwarded to the body's signal. */
  signal?: AbortSignal;
  /** See DEFAULT_TIMEOUT_GRACE_MS. */
  timeoutGraceMs?: number;
  /** Called when a timed-out body is still running after the grace period (it is then abandoned). */
  onTimeoutIgnored?: (abandoned: { attemptId: string; task: string; timeoutMs: number; graceMs: number }) => void;
}

export function runAttempt(
  registry: TaskRegistry,
  attempt: TaskAttempt,
  clock: Clock,
  options: RunAttemptOptions = {},
): Promise<AttemptResult> {
  return tracedAttempt(attempt, () => runUntraced(registry, attempt, clock, options));
}

async function runUntraced(registry: TaskRegistry, attempt: TaskAttempt, clock: Clock, options: RunAttemptOptions): Promise<AttemptResult> {
  const { signal } = options;
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
  const mismatch = definitionMismatch(attempt, implementation);
  if (mismatch !== null) return fail(mismatch);

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
      const settled = execution.then(
        () => true,
        () => true,
      );
      const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
        cancelTimer = setLongTimeout(() => resolve(TIMED_OUT), timeoutMs);
      });
      const first = await Promise.race([execution.then((value) => ({ value })), timedOut]);
      if (first === TIMED_OUT) {
        const error = new WorkerError(
          'TASK_TIMEOUT',
          `task '${attempt.task}' (attempt ${attempt.id}) timed out after ${timeoutMs} ms`,
          { retryable: true },
        );
        controller.abort(error);
        const graceMs = options.timeoutGraceMs ?? DEFAULT_TIMEOUT_GRACE_MS;
        let cancelGrace: (() => void) | undefined;
        const ended = await Promise.race([
          settled,
          new Promise<false>((resolve) => {
            cancelGrace = setLongTimeout(() => resolve(false), graceMs);
          }),
        ]);
        cancelGrace?.();
        if (!ended) options.onTimeoutIgnored?.({ attemptId: attempt.id, task: attempt.task, timeoutMs, graceMs });
        throw error;
      }
      outcome = first.value;
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

const TIMED_OUT = Symbol('timed out');

/** The warning for an abandoned body: what happened, why it matters, what to do. */
export function timeoutIgnoredMessage(abandoned: { task: string; timeoutMs: number; graceMs: number }): string {
  return (
    `attempt:timeout-ignored: task '${abandoned.task}' still runs ${abandoned.graceMs} ms after its ${abandoned.timeoutMs} ms timeout aborted its signal; ` +
    'its slot is released and its retry may run beside it (make the body honour `signal`)'
  );
}

/**
 * The attempt's definition against the registered one. Each part is compared only where both sides
 * carry it: attempts from specs saved before versions were sent have no `taskVersion`, and a bare
 * TaskImplementation (tests, hand-written registries) declares neither.
 */
function definitionMismatch(attempt: TaskAttempt, implementation: TaskImplementation): WorkerError | null {
  const versionDiffers = attempt.taskVersion !== undefined && implementation.version !== undefined && attempt.taskVersion !== implementation.version;
  const signatureDiffers = attempt.signature !== undefined && implementation.signature !== undefined && attempt.signature !== implementation.signature;
  if (!versionDiffers && !signatureDiffers) return null;
  const describe = (version: string | undefined, signature: string | undefined): string =>
    `version ${version === undefined ? '(not sent)' : `'${version}'`}, signature ${signature === undefined ? '(not sent)' : signature.slice(0, 12)}`;
  return new WorkerError(
    'TASK_VERSION_MISMATCH',
    `task '${attempt.task}' (attempt ${attempt.id}) was traced from another definition than this worker runs: ` +
      `attempt has ${describe(attempt.taskVersion, attempt.signature)}, worker has ${describe(implementation.version, implementation.signature)}; ` +
      'refused so its result is not cached under a key that does not match the code (deploy the same code to controllers and workers)' +
      (derived(attempt.taskVersion) && derived(implementation.version)
        ? "; both versions are derived from the task body's source text, which also differs when the same code is loaded through different tools (tsx, tsc, a bundler): pin cache.version to make it independent of that"
        : ''),
  );
}

/** A version the SDK derived from a body's source (`src-<digest>`), not one a user pinned. */
function derived(version: string | undefined): boolean {
  return version?.startsWith('src-') === true;
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
