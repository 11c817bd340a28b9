import type { AttemptResult, Clock, TaskAttempt, TaskRegistry } from '@memoflow/engine';
import { UnrecoverableError, WaitingError } from 'bullmq';
import type { Job } from 'bullmq';
import type { Semaphore } from '../concurrency/semaphore.js';
import type { WorkerLogger } from '../logger.js';
import { WorkerError } from '../errors.js';
import { cancelledError, type AttemptCancellations } from '../attempt-cancellations.js';
import { failedAttemptResult, runAttempt, timeoutIgnoredMessage } from '../run-attempt.js';
import type { ResultPublisher } from './results-stream.js';
import { inputHolder, type ValueStore } from './value-refs.js';
import { decodeQueuedAttempt, decodeResult, encodeResult, replyToOf } from './wire-format.js';
import type { QueuedAttempt } from './wire-format.js';

export interface AttemptProcessorDeps {
  registry: TaskRegistry;
  clock: Clock;
  /** Shared by every task queue of the pool: bounds the pool's total concurrency. */
  slots: Semaphore;
  results: ResultPublisher;
  /** Reads the inputs an attempt's job passes by reference. */
  values: ValueStore;
  logger: WorkerLogger;
  /** See runAttempt; undefined: DEFAULT_TIMEOUT_GRACE_MS. */
  timeoutGraceMs?: number;
  /** The pool's cancelled attempts (cancelChannel): aborted while running, never started after. */
  cancellations: AttemptCancellations;
}

/** The fields every attempt log line carries (the controller's lines use the same names). */
export function attemptLogFields(attempt: TaskAttempt): object {
  return {
    runId: attempt.runId,
    nodeId: attempt.nodeId,
    task: attempt.task,
    attempt: attempt.attempt,
    attemptId: attempt.id,
    key: attempt.cacheKey === null ? null : attempt.cacheKey.slice(0, 12),
  };
}

/**
 * The BullMQ processor for task jobs. Invariants:
 * - a task failure is a *result*, never a failed job: the engine owns retries (each retry is a
 *   new attempt with a new id); the job fails only if the result cannot be published, and then
 *   BullMQ's job retries re-run it (a second publish for the same attempt is a no-op);
 * - the result goes to the inbox of the controller that dispatched the attempt (its address is the
 *   job's `replyTo`) while that controller is live, else to the shared stream (ResultPublisher);
 * - the job completes only after its result is in the results stream, so a worker that dies at
 *   any point leaves either a stalled job (re-run elsewhere) or a published result;
 * - a job claimed while all slots are busy waits for one; if the pool starts draining first, the
 *   job is handed back to the wait list untouched instead of being run during shutdown.
 * - the body runs at most once per job in a pool: its result is kept in memory until it is
 *   published, and on the job as its progress if a publish fails (best effort), so a job retry after
 *   a failed publish only publishes again; a job that runs again after its result was published (its
 *   worker died before completing it, or a re-dispatch queued it again after it finished) completes
 *   without running the body; a result that cannot be serialised is replaced by a failed result
 *   saying so;
 * - inputs passed by reference are read once a slot is free; one that is gone fails the attempt
 *   (VALUE_MISSING, retryable) instead of the job, and one that cannot be read (Redis down) fails the
 *   job, which BullMQ retries.
 * - a timed-out attempt holds its slot (and its job) until its body settles or the grace period
 *   ends (see runAttempt), so the pool's concurrency bound holds and its retry does not run beside it.
 * It declares three parameters so BullMQ passes its cancellation signal (lock lost, cancelJob).
 */
export function createAttemptProcessor(deps: AttemptProcessorDeps) {
  /** Results produced here but not yet published, by attempt id (a job retry publishes these). */
  const unpublished = new Map<string, AttemptResult>();
  return async (job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<{ ok: boolean }> => {
    let queued: QueuedAttempt;
    try {
      queued = decodeQueuedAttempt(job.data);
    } catch (error) {
      deps.logger.error({ err: error, jobId: job.id, queue: job.queueName }, 'attempt:malformed');
      throw new UnrecoverableError(`malformed attempt job '${String(job.id)}': ${(error as Error).message}`);
    }
    let attempt = queued.attempt; // inputs by reference are `null` until read
    const inputRefs = Object.values(queued.inputRefs);
    const log = deps.logger.child(attemptLogFields(attempt));
    const replyTo = replyToOf(job.data);

    const earlier = unpublished.get(attempt.id) ?? storedResult(job);
    if (earlier !== undefined) {
      log.info({ ok: earlier.ok }, 'attempt:republishing');
      await publish(earlier, inputRefs, replyTo);
      return { ok: earlier.ok };
    }
    // Its result may be out already: the job was taken before (it stalled, or a publish failed), or
    // it was queued again after it finished (a re-dispatch whose EXISTS of the marker ran before
    // the result was published and whose addBulk came after the job's removal: two round trips,
    // not one atomic step). So one EXISTS on every job, not only on re-runs.
    if (await deps.results.isPublished(attempt.id)) {
      log.info({}, 'attempt:already-published');
      // A job queued again held the inputs it passes by reference again; the publish that would
      // have released them happened before. A published attempt never needs its inputs.
      await deps.values.release(inputRefs, inputHolder(attempt.id));
      return { ok: true };
    }

    try {
      await deps.slots.acquire();
    } catch {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const cancellation = deps.cancellations.start(attempt.id);
    try {
      let result: AttemptResult;
      try {
        attempt = await deps.values.resolveAttempt(queued);
      } catch (error) {
        if (!(error instanceof WorkerError && error.code === 'VALUE_MISSING')) throw error;
        log.warn({ err: error }, 'attempt:input-missing');
        await publish(failedAttemptResult(attempt, error, deps.clock.now()), inputRefs, replyTo);
        return { ok: false };
      }
      if (cancellation.signal.aborted) {
        // Cancelled before it started (its cancel came before its job): the body never runs.
        log.info({}, 'attempt:cancelled-before-start');
        result = failedAttemptResult(attempt, cancelledError(attempt.id), deps.clock.now());
      } else {
        log.debug({}, 'attempt:started');
        try {
          result = await runAttempt(deps.registry, attempt, deps.clock, {
            // BullMQ's own signal (a lost lock) or a cancel, whichever comes first.
            signal: signal === undefined ? cancellation.signal : AbortSignal.any([signal, cancellation.signal]),
            ...(deps.timeoutGraceMs === undefined ? {} : { timeoutGraceMs: deps.timeoutGraceMs }),
            onTimeoutIgnored: (abandoned) => log.warn(abandoned, timeoutIgnoredMessage(abandoned)),
          });
        } catch (error) {
          // runAttempt never rejects by contract; if it does, the attempt still fails once, here.
          result = failedAttemptResult(attempt, error, deps.clock.now());
        }
      }
      result = serialisable(attempt, result, deps.clock.now());
      unpublished.set(attempt.id, result);
      try {
        await publish(result, inputRefs, replyTo);
      } catch (error) {
        // Kept on the job for a retry by another pool (best effort: Redis may be what failed).
        await job.updateProgress({ memoflowResult: encodeResult(result) }).catch(() => undefined);
        throw error;
      }
      const durationMs = result.finishedAt.getTime() - result.startedAt.getTime();
      if (result.ok) log.info({ durationMs, ok: true }, 'attempt:succeeded');
      else {
        log.warn(
          { durationMs, ok: false, code: result.error.code, retryable: result.error.retryable, error: result.error.message },
          'attempt:failed',
        );
      }
      return { ok: result.ok };
    } finally {
      cancellation.done();
      deps.slots.release();
    }
  };

  /** To the controller that dispatched the attempt (`replyTo` on the job) while it is live, else to the shared stream. */
  async function publish(result: AttemptResult, inputRefs: readonly string[], replyTo: string | null): Promise<void> {
    await deps.results.publish(result, inputRefs, replyTo);
    unpublished.delete(result.attemptId);
  }
}

/** A result kept on the job by an earlier try (possibly another pool's) whose publish failed. */
function storedResult(job: Job): AttemptResult | undefined {
  const progress = job.progress as { memoflowResult?: unknown } | number | undefined;
  if (typeof progress !== 'object' || progress === null || progress.memoflowResult === undefined) return undefined;
  try {
    return decodeResult(progress.memoflowResult);
  } catch {
    return undefined;
  }
}

/** A result whose output cannot cross the queue as JSON fails the attempt instead of the job. */
function serialisable(attempt: TaskAttempt, result: AttemptResult, now: Date): AttemptResult {
  try {
    JSON.stringify(encodeResult(result));
    return result;
  } catch (error) {
    return failedAttemptResult(
      attempt,
      new WorkerError('INVALID_TASK_OUTCOME', `task '${attempt.task}' (attempt ${attempt.id}) produced a result that cannot be sent as JSON: ${error instanceof Error ? error.message : 'unknown reason'}`),
      now,
    );
  }
}
