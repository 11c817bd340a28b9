import type { RunStore } from '../../ports/run-store.js';
import type { AttemptToCancel, TaskDispatcher } from '../../ports/task-dispatcher.js';

export interface OrphanWatchOptions {
  store: RunStore;
  dispatcher: TaskDispatcher;
  intervalMs: number;
  /** A poll or a cancel that failed: the next poll tries again. Must not throw. */
  onError: (error: unknown) => void;
}

/** How long orphans are watched: a run that has not ended by then has long recorded or dropped them. */
const WATCH_MS = 60 * 60_000;

/**
 * The attempts a stopped driver had sent beside saves that never landed (its `Orphans`: fenced,
 * lease lost, lease given back), kept after the driver is gone. A driver cancels its own orphans
 * once the state shows they will never be recorded; a stopped one cannot, and the run's next owner
 * does not know them (a cancel read from the store names attempts one step ahead of it, and these
 * may be further). So each is cancelled once its run has ended: cancelled, its attempts must not
 * start; succeeded or failed, they are no one's (one the new owner recorded has finished, and a
 * cancel of a finished attempt is a no-op). One status read per watched run per poll; none while
 * nothing is watched.
 */
export class OrphanWatch {
  private readonly byRun = new Map<string, { attempts: Map<string, AttemptToCancel>; until: number }>();
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  constructor(private readonly options: OrphanWatchOptions) {
    this.timer = setInterval(() => void this.poll(), Math.max(10, options.intervalMs));
    this.timer.unref();
  }

  add(runId: string, attempts: readonly AttemptToCancel[]): void {
    if (attempts.length === 0) return;
    const entry = this.byRun.get(runId) ?? { attempts: new Map<string, AttemptToCancel>(), until: 0 };
    for (const attempt of attempts) entry.attempts.set(attempt.id, { id: attempt.id, task: attempt.task });
    entry.until = Date.now() + WATCH_MS;
    this.byRun.set(runId, entry);
  }

  /** Attempt ids watched, for tests. */
  get watched(): number {
    let count = 0;
    for (const entry of this.byRun.values()) count += entry.attempts.size;
    return count;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.busy || this.byRun.size === 0) return;
    this.busy = true;
    try {
      const now = Date.now();
      for (const [runId, entry] of [...this.byRun]) {
        if (entry.until <= now) {
          this.byRun.delete(runId);
          continue;
        }
        const status = await this.options.store.status(runId);
        if (status === 'running') continue;
        await this.options.dispatcher.cancel([...entry.attempts.values()]);
        this.byRun.delete(runId);
      }
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.busy = false;
    }
  }
}
