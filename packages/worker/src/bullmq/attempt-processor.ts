import type { Clock, TaskAttempt, TaskRegistry } from '@memoflow/engine';
import { UnrecoverableError, WaitingError } from 'bullmq';
import type { Job } from 'bullmq';
import type { Semaphore } from '../concurrency/semaphore.js';
import type { WorkerLogger } from '../logger.js';
import { runAttempt } from '../run-attempt.js';
import type { ResultPublisher } from './results-stream.js';
import { decodeAttempt } from './wire-format.js';

export interface AttemptProcessorDeps {
  registry: TaskRegistry;
  clock: Clock;
  /** Shared by every task queue of the pool: bounds the pool's total concurrency. */
  slots: Semaphore;
  results: ResultPublisher;
  logger: WorkerLogger;
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
 * - the job completes only after its result is in the results stream, so a worker that dies at
 *   any point leaves either a stalled job (re-run elsewhere) or a published result;
 * - a job claimed while all slots are busy waits for one; if the pool starts draining first, the
 *   job is handed back to the wait list untouched instead of being run during shutdown.
 * It declares three parameters so BullMQ passes its cancellation signal (lock lost, cancelJob).
 */
export function createAttemptProcessor(deps: AttemptProcessorDeps) {
  return async (job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<{ ok: boolean }> => {
    let attempt: TaskAttempt;
    try {
      attempt = decodeAttempt(job.data);
    } catch (error) {
      deps.logger.error({ err: error, jobId: job.id, queue: job.queueName }, 'attempt:malformed');
      throw new UnrecoverableError(`malformed attempt job '${String(job.id)}': ${(error as Error).message}`);
    }

    try {
      await deps.slots.acquire();
    } catch {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const log = deps.logger.child(attemptLogFields(attempt));
    try {
      log.debug({}, 'attempt:started');
      const result = await runAttempt(deps.registry, attempt, deps.clock, signal);
      await deps.results.publish(result);
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
      deps.slots.release();
    }
  };
}
