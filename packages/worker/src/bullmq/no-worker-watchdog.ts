import type { TaskAttempt } from '@memoflow/engine';
import type { WorkerLogger } from '../logger.js';

/** The transport operations the watchdog needs (the dispatcher provides them; tests can fake them). */
export interface NoWorkerProbe {
  /** Workers currently connected to the task's queue (BullMQ `Queue.getWorkersCount()`). */
  countWorkers(task: string): Promise<number>;
  /**
   * Withdraws the attempt's job if it is still waiting and publishes a NO_WORKER_FOR_TASK result.
   * Returns 'reported' when it did, 'gone' when the job finished or vanished (stop tracking),
   * 'busy' when a worker holds it (keep tracking).
   */
  reportUnserved(attempt: TaskAttempt, unservedForMs: number): Promise<'reported' | 'gone' | 'busy'>;
  /** Whether the attempt's job has finished (so it no longer needs watching). */
  isFinished(attempt: TaskAttempt): Promise<boolean>;
}

export interface NoWorkerWatchdogOptions {
  graceMs: number;
  intervalMs: number;
  probe: NoWorkerProbe;
  logger: WorkerLogger;
  now?: () => number;
}

/**
 * Watches the attempts a dispatcher sent and fails those whose task has had no worker for
 * `graceMs`, so a run with a task no pool registers ends with a clear error instead of waiting
 * forever. The grace is measured from the later of "dispatched" and "last seen a worker", so a
 * rolling restart shorter than the grace fails nothing. State is in memory only: a new
 * controller re-dispatches its open attempts (a no-op on the queue), which re-tracks them.
 */
export class NoWorkerWatchdog {
  private readonly tracked = new Map<string, { attempt: TaskAttempt; since: number }>();
  private readonly lastServed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private tick: Promise<void> | null = null;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: NoWorkerWatchdogOptions) {
    this.now = options.now ?? Date.now;
  }

  track(attempt: TaskAttempt): void {
    if (this.stopped || this.tracked.has(attempt.id)) return;
    this.tracked.set(attempt.id, { attempt, since: this.now() });
    this.schedule();
  }

  forget(attemptId: string): void {
    this.tracked.delete(attemptId);
  }

  get size(): number {
    return this.tracked.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.tick;
  }

  /** One pass; public so tests can drive it without waiting for the timer. */
  async check(): Promise<void> {
    const byTask = new Map<string, { attempt: TaskAttempt; since: number }[]>();
    for (const entry of this.tracked.values()) {
      const list = byTask.get(entry.attempt.task) ?? [];
      list.push(entry);
      byTask.set(entry.attempt.task, list);
    }
    for (const [task, entries] of byTask) {
      if (this.stopped) return;
      const { probe, graceMs } = this.options;
      const now = this.now();
      if ((await probe.countWorkers(task)) > 0) {
        this.lastServed.set(task, now);
        // Results may go to another controller; drop entries whose job is done so the map stays small.
        for (const { attempt, since } of entries) {
          if (now - since >= graceMs && (await probe.isFinished(attempt))) this.forget(attempt.id);
        }
        continue;
      }
      for (const { attempt, since } of entries) {
        const unservedForMs = now - Math.max(since, this.lastServed.get(task) ?? since);
        if (unservedForMs < graceMs) continue;
        const outcome = await probe.reportUnserved(attempt, unservedForMs);
        if (outcome !== 'busy') this.forget(attempt.id);
        if (outcome === 'reported') {
          this.options.logger.warn({ task, attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId }, 'attempt:no-worker');
        }
      }
    }
  }

  private schedule(): void {
    if (this.stopped || this.timer !== undefined || this.tick !== null) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick = this.check()
        .catch((err: unknown) => this.options.logger.error({ err }, 'no-worker check failed'))
        .finally(() => {
          this.tick = null;
          if (this.tracked.size > 0) this.schedule();
        });
    }, this.options.intervalMs);
  }
}
