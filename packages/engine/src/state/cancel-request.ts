import type { ErrorInfo } from '../errors.js';
import type { RunRecord } from './run-state.js';

/*
 * A cancel request is recorded on the run row itself, with no column of its own: the run stays
 * `running` and its `error` becomes the RUN_CANCELLED error the cancelled run will end with
 * (RunStore.requestCancel, one statement that also bumps the version). So:
 * - any client can ask (the CLI in another process), and the request survives its controller:
 *   whichever controller loads the run next sees it and cancels (`decide`);
 * - the owner's next save, made from the version before the request, loses the race and re-reads;
 * - a run can only end `cancelled` once the request landed (every later save starts from it).
 * A running run never has an error otherwise (errors are written when a run fails).
 */

/** The RUN_CANCELLED error a cancel request records and the cancelled run keeps. */
export function cancelError(message: string): ErrorInfo {
  return { name: 'RunCancelled', code: 'RUN_CANCELLED', message, retryable: false };
}

/** The run's pending cancel request (it is running, and cancelling was asked), or null. */
export function cancelRequestOf(run: Pick<RunRecord, 'status' | 'error'>): ErrorInfo | null {
  return run.status === 'running' && run.error?.code === 'RUN_CANCELLED' ? run.error : null;
}

/** What `RunStore.requestCancel` found. */
export type CancelRequestOutcome =
  /** Recorded now: the run will end `cancelled`. */
  | { kind: 'requested' }
  /** An earlier request is still being applied. */
  | { kind: 'already-requested' }
  /** The run is over (succeeded, failed or cancelled): nothing to cancel. */
  | { kind: 'finished'; status: Exclude<RunRecord['status'], 'running'> }
  | { kind: 'missing' };
