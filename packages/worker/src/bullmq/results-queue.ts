import type { AttemptResult } from '@memoflow/engine';
import type { JobsOptions, Queue } from 'bullmq';
import { encodeResult } from './wire-format.js';

/**
 * Finished task and result jobs stay in Redis this long (default one day). This is the window
 * in which re-dispatching a finished attempt, or re-publishing a delivered result, is a no-op:
 * both job ids are the attempt id, and BullMQ ignores an add whose id exists.
 */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The backoff type the results consumer registers (capped exponential, see below). */
export const RESULT_BACKOFF = 'memoflow-capped';

/**
 * A result job is retried while the controller's handler fails (its database is down, say):
 * up to 1,000 tries, each delay doubling from 500 ms and capped at 30 s (about eight hours), so
 * a result outlives an outage instead of being dropped after a few quick retries.
 */
export function resultBackoffMs(attemptsMade: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, attemptsMade - 1));
}

export function resultJobOptions(attemptId: string, retentionMs: number): JobsOptions {
  const age = Math.ceil(retentionMs / 1000);
  return {
    jobId: attemptId,
    attempts: 1_000,
    backoff: { type: RESULT_BACKOFF },
    removeOnComplete: { age },
    removeOnFail: { age },
  };
}

/** Publishes a result; a second publish for the same attempt is a no-op (same job id). */
export async function publishResult(queue: Queue, result: AttemptResult, retentionMs: number): Promise<void> {
  await queue.add('result', encodeResult(result), resultJobOptions(result.attemptId, retentionMs));
}
