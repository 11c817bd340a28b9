import type { RunStore } from '../../ports/run-store.js';

export interface CancelWatchOptions {
  store: RunStore;
  /** The runs to watch now: those this controller drives. */
  runs: () => string[];
  /** Called with the runs that have a cancel request (they are still running). */
  onRequested: (runIds: string[]) => void;
  /** A poll that failed (the store is down): the next one tries again. Must not throw. */
  onError: (error: unknown) => void;
  intervalMs: number;
}

/**
 * How a cancel asked for in another process (`memoflow runs cancel` while `memoflow run` or a
 * standalone controller drives the run) reaches the run's controller: every `intervalMs`, one read
 * of the cancel requests among the runs it drives (RunStore.cancelRequested), so a cancel takes
 * effect within about one interval wherever it was asked. A cancel asked here is delivered at once
 * (Controller.cancel), and a request is never lost to a missed poll: it is on the run row, so any
 * controller's next decision on the run (a result, a lost race) cancels it too.
 *
 * No poll while there is nothing to watch. Polls never overlap.
 */
export class CancelWatch {
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  constructor(private readonly options: CancelWatchOptions) {
    this.timer = setInterval(() => this.poll(), Math.max(10, options.intervalMs));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private poll(): void {
    if (this.busy) return;
    const runs = this.options.runs();
    if (runs.length === 0) return;
    this.busy = true;
    this.options.store
      .cancelRequested(runs)
      .then((requested) => {
        if (requested.length > 0) this.options.onRequested(requested);
      })
      .catch((error: unknown) => this.options.onError(error))
      .finally(() => {
        this.busy = false;
      });
  }
}
