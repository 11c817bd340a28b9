import { MemoflowError } from '../../errors.js';
import type { RunStore } from '../../ports/run-store.js';
import type { RunState } from '../../state/run-state.js';

export interface RunWaitersOptions {
  store: Pick<RunStore, 'status' | 'load'>;
  /** How often a waited-on run's status is read (the controller's `waitPollMs`). */
  pollMs: number;
  closed: () => boolean;
  /** Takes the run over in the background if its lease is free (never rejects). */
  takeOver: (runId: string, stored?: RunState) => void;
  /** A waited-on run turned out over at a poll: the controller settles it (and so its waiters). */
  over: (state: RunState) => void;
}

interface Waiter {
  resolve: (state: RunState) => void;
  reject: (error: Error) => void;
}

/**
 * The `wait()` calls a controller holds, per run. A waiter is resolved from memory when the run
 * ends here (`settle`); meanwhile its run's status is polled (one small read per `pollMs`, the
 * whole run loaded once, when it is over), so a run finished or abandoned elsewhere is noticed too.
 * A run this controller could drive (`takeable`) is taken over at a poll once its lease is free.
 */
export class RunWaiters {
  private readonly waiting = new Map<string, Waiter[]>();
  private readonly watchers = new Map<string, NodeJS.Timeout>();
  /** Runs waited on here that this controller could drive (their pool is its own): waiting may take them over. */
  private readonly takeable = new Set<string>();

  constructor(private readonly options: RunWaitersOptions) {}

  /**
   * Waits for the run's end. `stored`: the run as just read, for a run this controller does not own
   * (`takeable`: it could drive it, so its owner being gone means taking it over, now or at a poll).
   */
  add(runId: string, stored: RunState | undefined, takeable = false): Promise<RunState> {
    if (this.options.closed()) return Promise.reject(closedWhileWaiting(runId));
    if (takeable) this.takeable.add(runId);
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(runId) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(runId, list);
      this.watch(runId);
      // Its owner may be gone already: then waiting takes it over (a run this controller cannot
      // drive is left alone and only watched).
      if (stored !== undefined && this.takeable.has(runId)) this.options.takeOver(runId, stored);
    });
  }

  waitedOn(runId: string): boolean {
    return this.waiting.has(runId);
  }

  /** The run is over: its waiters resolve with `state` and its polling stops. */
  settle(state: RunState): void {
    const runId = state.run.id;
    this.takeable.delete(runId);
    const timer = this.watchers.get(runId);
    if (timer !== undefined) clearInterval(timer);
    this.watchers.delete(runId);
    const list = this.waiting.get(runId) ?? [];
    this.waiting.delete(runId);
    for (const waiter of list) waiter.resolve(state);
  }

  /** Every waiter rejects (STALE_STATE: the run is saved and continues elsewhere); polling stops. */
  close(): void {
    for (const timer of this.watchers.values()) clearInterval(timer);
    this.watchers.clear();
    for (const [runId, list] of this.waiting) for (const waiter of list) waiter.reject(closedWhileWaiting(runId));
    this.waiting.clear();
    this.takeable.clear();
  }

  private watch(runId: string): void {
    if (this.watchers.has(runId)) return;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      // Poll the status alone (one small read); load the whole run once, when it is over.
      this.options.store
        .status(runId)
        .then(async (status) => {
          if (status === 'running') {
            // Its owner may have gone since: take it over once the lease is free (one statement
            // that changes nothing while the owner holds it).
            if (this.takeable.has(runId)) this.options.takeOver(runId);
            return;
          }
          if (status === undefined) return;
          const state = await this.options.store.load(runId);
          if (state !== undefined) this.options.over(state);
        })
        .catch(() => undefined) // a store hiccup: the next tick tries again
        .finally(() => {
          busy = false;
        });
    }, this.options.pollMs);
    timer.unref();
    this.watchers.set(runId, timer);
  }
}

export function closedWhileWaiting(runId: string): MemoflowError {
  return new MemoflowError('STALE_STATE', `the connection closed while waiting for run ${runId}; the run is saved and continues when a controller picks it up`, { retryable: true });
}
