import type { TaskAttempt } from '@memoflow/engine';
import type { WorkerLogger } from '../logger.js';

/** Where an attempt's job is, as far as the queue knows. */
export type JobPresence = 'open' | 'finished' | 'missing';

/** The transport operations the watchdog needs (the dispatcher provides them; tests can fake them). */
export interface AttemptProbe {
  /** Workers currently connected to the task's queue (BullMQ `Queue.getWorkersCount()`). */
  countWorkers(task: string): Promise<number>;
  /**
   * For each attempt, whether its job is open (waiting, delayed, active), finished (completed or
   * failed, and still retained), or missing: gone from Redis although no result for it reached this
   * dispatcher (Redis lost its data, or evicted the key). One round trip for the whole batch.
   */
  jobPresence(attempts: readonly TaskAttempt[]): Promise<Map<string, JobPresence>>;
  /** Enqueues the attempts again under their own job ids (a no-op for any that exists). */
  redispatch(attempts: readonly TaskAttempt[]): Promise<void>;
  /**
   * Withdraws the attempt's job if it is still waiting and publishes a NO_WORKER_FOR_TASK result.
   * Returns 'reported' when it did, 'gone' when the job finished or vanished (stop tracking),
   * 'busy' when a worker holds it (keep tracking).
   */
  reportUnserved(attempt: TaskAttempt, unservedForMs: number): Promise<'reported' | 'gone' | 'busy'>;
}

export interface AttemptWatchdogOptions {
  /** An attempt whose task has had no worker this long is reported (NO_WORKER_FOR_TASK); `null` never. */
  noWorkerGraceMs: number | null;
  intervalMs: number;
  probe: AttemptProbe;
  logger: WorkerLogger;
  now?: () => number;
}

/**
 * Watches the attempts a dispatcher sent until their results arrive, so that no attempt can leave
 * its node waiting forever:
 * - a job that vanished from Redis (its data was lost: a restart without persistence, an eviction)
 *   is dispatched again under the same attempt id, with a warning saying so; without this, a node
 *   whose job is gone stays `dispatched` for good (measured: 135 of 200 nodes after a restart);
 * - an attempt whose task has had no worker for `noWorkerGraceMs` is withdrawn and failed with
 *   NO_WORKER_FOR_TASK, so a run with a task no pool registers ends with a clear error. The grace is
 *   measured from the later of "dispatched" and "last seen a worker", so a rolling restart shorter
 *   than the grace fails nothing;
 * - a job that finished while its result went to another controller is simply forgotten.
 * State is in memory only: a new controller re-dispatches its open attempts (a no-op on the queue),
 * which re-tracks them. One check costs one pipelined read of every tracked job, per interval.
 */
export class AttemptWatchdog {
  private readonly tracked = new Map<string, { attempt: TaskAttempt; since: number }>();
  private readonly lastServed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private tick: Promise<void> | null = null;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: AttemptWatchdogOptions) {
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
    const { probe, logger } = this.options;
    const entries = [...this.tracked.values()];
    if (entries.length === 0) return;
    const presence = await probe.jobPresence(entries.map((e) => e.attempt));
    if (this.stopped) return;
    const lost: TaskAttempt[] = [];
    const open: { attempt: TaskAttempt; since: number }[] = [];
    for (const entry of entries) {
      switch (presence.get(entry.attempt.id) ?? 'open') {
        case 'finished':
          this.forget(entry.attempt.id); // its result went to whichever controller read it
          break;
        case 'missing':
          lost.push(entry.attempt);
          break;
        case 'open':
          open.push(entry);
          break;
      }
    }
    if (lost.length > 0) {
      await probe.redispatch(lost);
      const now = this.now();
      for (const attempt of lost) {
        const entry = this.tracked.get(attempt.id);
        if (entry !== undefined) entry.since = now;
        logger.warn(
          { task: attempt.task, attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId },
          `attempt:redispatched: the job of attempt ${attempt.id} vanished from Redis before its result arrived (did Redis lose its data?); dispatched it again under the same id`,
        );
      }
    }
    if (this.options.noWorkerGraceMs !== null) await this.checkServed(open, this.options.noWorkerGraceMs);
  }

  private async checkServed(open: readonly { attempt: TaskAttempt; since: number }[], graceMs: number): Promise<void> {
    const byTask = new Map<string, { attempt: TaskAttempt; since: number }[]>();
    for (const entry of open) {
      const list = byTask.get(entry.attempt.task) ?? [];
      list.push(entry);
      byTask.set(entry.attempt.task, list);
    }
    for (const [task, list] of byTask) {
      if (this.stopped) return;
      const now = this.now();
      if ((await this.options.probe.countWorkers(task)) > 0) {
        this.lastServed.set(task, now);
        continue;
      }
      for (const { attempt, since } of list) {
        const unservedForMs = now - Math.max(since, this.lastServed.get(task) ?? since);
        if (unservedForMs < graceMs) continue;
        const outcome = await this.options.probe.reportUnserved(attempt, unservedForMs);
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
        .catch((err: unknown) => this.options.logger.error({ err }, 'attempt watchdog check failed (retried next interval)'))
        .finally(() => {
          this.tick = null;
          if (this.tracked.size > 0) this.schedule();
        });
    }, this.options.intervalMs);
  }
}
