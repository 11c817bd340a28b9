/**
 * The worker package's errors. String codes, a `retryable` flag and the original `cause`, like
 * the engine's MemoflowError. Failures that reach the engine do so as `ErrorInfo`, built by the
 * engine's `toErrorInfo` (the one classifier); `nonRetryable` mirrors `retryable` so that
 * classifier reads a WorkerError correctly without knowing this class.
 */
export type WorkerErrorCode =
  /** No task with that name is registered with the worker that received the attempt. */
  | 'UNKNOWN_TASK'
  /** The attempt ran longer than its `timeoutMs`. Retryable. */
  | 'TASK_TIMEOUT'
  /** No worker has served the task's queue for the dispatcher's grace period. */
  | 'NO_WORKER_FOR_TASK'
  /** The attempt's job stalled (its worker died) more often than the stalled limit allows. */
  | 'TASK_STALLED'
  /** The worker could not finish the attempt's job (its result could not be published). */
  | 'TRANSPORT_ERROR'
  /**
   * The attempt was traced from another definition of the task (another version or signature)
   * than the one registered with this worker, e.g. during a rolling deploy. Refused, never run:
   * its result would be cached under a key that does not describe the code. Not retryable.
   */
  | 'TASK_VERSION_MISMATCH'
  /**
   * An input or output passed by reference (above the value threshold) is no longer in Redis: it
   * outlived its safety expiry (a job queued, or a result left unacknowledged, longer than
   * valueTtlMs) or Redis lost it. Retryable: a retry stores the inputs again.
   */
  | 'VALUE_MISSING'
  /** The task returned something that is not a TaskOutcome with a JSON output. */
  | 'INVALID_TASK_OUTCOME'
  /** `route` found no live controller at the address (it died or closed): the caller keeps the result. Retryable. */
  | 'CONTROLLER_GONE'
  /** `dispatch` or `onResults` on a closed dispatcher, a second `onResults`, a bad option. */
  | 'DISPATCHER_CLOSED'
  | 'HANDLER_ALREADY_SET'
  /** The attempt's run was cancelled (TaskDispatcher.cancel): its signal aborted, or it never started. */
  | 'ATTEMPT_CANCELLED'
  /** A worker pool is draining: an attempt claimed but not started is handed back to its queue. */
  | 'POOL_CLOSING'
  | 'INVALID_OPTION'
  | 'DUPLICATE_TASK_NAME';

export interface WorkerErrorOptions {
  retryable?: boolean;
  cause?: unknown;
}

export class WorkerError extends Error {
  readonly code: WorkerErrorCode;
  readonly retryable: boolean;
  /** Read by `toErrorInfo` (it recognises the marker, not the class). */
  readonly nonRetryable: boolean;

  constructor(code: WorkerErrorCode, message: string, options: WorkerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WorkerError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.nonRetryable = !this.retryable;
  }
}
