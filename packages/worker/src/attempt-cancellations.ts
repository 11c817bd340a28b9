import { WorkerError } from './errors.js';

/** How long a cancelled attempt id is remembered, so an attempt claimed after its cancel never runs. */
export const REMEMBER_CANCELLED_MS = 10 * 60_000;

/**
 * The attempts of one dispatcher or pool that may be cancelled (TaskDispatcher.cancel): a running
 * attempt's body has its signal aborted with ATTEMPT_CANCELLED; an attempt cancelled before it
 * starts (queued, claimed but waiting for a slot, or whose cancel arrived before its job did) is
 * remembered for REMEMBER_CANCELLED_MS and never runs. Memory: one entry per running attempt and
 * per cancelled id of the last ten minutes.
 */
export class AttemptCancellations {
  private readonly running = new Map<string, AbortController>();
  /** Cancelled ids -> when they may be forgotten (ms since the epoch). */
  private readonly cancelled = new Map<string, number>();

  constructor(private readonly rememberMs = REMEMBER_CANCELLED_MS) {}

  /** Cancels these attempts: running ones are aborted now, the others will not start. */
  cancel(attemptIds: readonly string[]): void {
    const now = Date.now();
    this.forgetOld(now);
    for (const id of attemptIds) {
      this.cancelled.delete(id); // re-inserted at the end: the map stays in expiry order
      this.cancelled.set(id, now + this.rememberMs);
      this.running.get(id)?.abort(cancelledError(id));
    }
  }

  isCancelled(attemptId: string): boolean {
    const until = this.cancelled.get(attemptId);
    return until !== undefined && until > Date.now();
  }

  /**
   * An attempt starts: its signal (aborted at once if it was cancelled already), to hand to
   * runAttempt, and `done` to call when it has finished.
   */
  start(attemptId: string): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController();
    if (this.isCancelled(attemptId)) controller.abort(cancelledError(attemptId));
    this.running.set(attemptId, controller);
    return {
      signal: controller.signal,
      done: () => {
        if (this.running.get(attemptId) === controller) this.running.delete(attemptId);
      },
    };
  }

  private forgetOld(now: number): void {
    for (const [id, until] of this.cancelled) {
      if (until > now) break; // insertion order is expiry order
      this.cancelled.delete(id);
    }
  }
}

/** What a cancelled attempt's signal is aborted with, and the error of its result if it has one. */
export function cancelledError(attemptId: string): WorkerError {
  return new WorkerError('ATTEMPT_CANCELLED', `attempt ${attemptId} was cancelled: its run was cancelled`);
}
