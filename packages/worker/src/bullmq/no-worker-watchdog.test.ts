import type { TaskAttempt } from '@memoflow/engine';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { makeAttempt } from '../testing/fixtures.js';
import { NoWorkerWatchdog } from './no-worker-watchdog.js';

function harness(graceMs = 1_000) {
  const clock = { t: 0 };
  const workers = new Map<string, number>();
  const reported: string[] = [];
  const finished = new Set<string>();
  const watchdog = new NoWorkerWatchdog({
    graceMs,
    intervalMs: 60_000, // driven by check() below, never by the timer
    logger: silentLogger,
    now: () => clock.t,
    probe: {
      countWorkers: async (task) => workers.get(task) ?? 0,
      isFinished: async (attempt: TaskAttempt) => finished.has(attempt.id),
      reportUnserved: async (attempt) => {
        reported.push(attempt.id);
        return 'reported';
      },
    },
  });
  return { clock, workers, reported, finished, watchdog };
}

describe('NoWorkerWatchdog', () => {
  it('reports an attempt only once its task has had no worker for the whole grace period', async () => {
    const h = harness();
    const attempt = makeAttempt({ task: 'ghost' });
    h.watchdog.track(attempt);
    h.clock.t = 999;
    await h.watchdog.check();
    expect(h.reported).toEqual([]);
    h.clock.t = 1_000;
    await h.watchdog.check();
    expect(h.reported).toEqual([attempt.id]);
    expect(h.watchdog.size).toBe(0);
    await h.watchdog.stop();
  });

  it('measures the grace from the last time a worker was seen (rolling restarts)', async () => {
    const h = harness();
    const attempt = makeAttempt({ task: 'etl' });
    h.watchdog.track(attempt);
    h.workers.set('etl', 1);
    h.clock.t = 800;
    await h.watchdog.check(); // worker seen at 800
    h.workers.set('etl', 0);
    h.clock.t = 1_700;
    await h.watchdog.check();
    expect(h.reported).toEqual([]);
    h.clock.t = 1_800;
    await h.watchdog.check();
    expect(h.reported).toEqual([attempt.id]);
    await h.watchdog.stop();
  });

  it('forgets attempts that finished elsewhere while a worker serves their task', async () => {
    const h = harness();
    const attempt = makeAttempt({ task: 'etl' });
    h.watchdog.track(attempt);
    h.workers.set('etl', 2);
    h.finished.add(attempt.id);
    h.clock.t = 1_000;
    await h.watchdog.check();
    expect(h.watchdog.size).toBe(0);
    expect(h.reported).toEqual([]);
    await h.watchdog.stop();
  });
});
