import type { TaskAttempt } from '@memoflow/engine';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { makeAttempt } from '../testing/fixtures.js';
import { AttemptWatchdog, type JobPresence } from './attempt-watchdog.js';

function harness(graceMs: number | null = 1_000) {
  const clock = { t: 0 };
  const workers = new Map<string, number>();
  const reported: string[] = [];
  const redispatched: string[] = [];
  const presence = new Map<string, JobPresence>();
  const warnings: string[] = [];
  const logger = { ...silentLogger, warn: (_fields: object, message: string) => void warnings.push(message) };
  const watchdog = new AttemptWatchdog({
    noWorkerGraceMs: graceMs,
    intervalMs: 60_000, // driven by check() below, never by the timer
    logger,
    now: () => clock.t,
    probe: {
      countWorkers: async (task) => workers.get(task) ?? 0,
      jobPresence: async (attempts: readonly TaskAttempt[]) => new Map(attempts.map((a) => [a.id, presence.get(a.id) ?? 'open'])),
      redispatch: async (attempts) => {
        for (const attempt of attempts) {
          redispatched.push(attempt.id);
          presence.set(attempt.id, 'open');
        }
      },
      reportUnserved: async (attempt) => {
        reported.push(attempt.id);
        return 'reported';
      },
    },
  });
  return { clock, workers, reported, redispatched, presence, warnings, watchdog };
}

describe('AttemptWatchdog', () => {
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

  it('forgets attempts whose job finished (their result went to another controller)', async () => {
    const h = harness();
    const attempt = makeAttempt({ task: 'etl' });
    h.watchdog.track(attempt);
    h.presence.set(attempt.id, 'finished');
    await h.watchdog.check();
    expect(h.watchdog.size).toBe(0);
    expect(h.reported).toEqual([]);
    expect(h.redispatched).toEqual([]);
    await h.watchdog.stop();
  });

  it('dispatches a vanished job again under the same attempt id, says so, and keeps watching it', async () => {
    const h = harness();
    const lost = makeAttempt({ task: 'etl', nodeId: 'a' });
    const fine = makeAttempt({ task: 'etl', nodeId: 'b' });
    h.workers.set('etl', 1);
    h.watchdog.track(lost);
    h.watchdog.track(fine);
    h.presence.set(lost.id, 'missing');
    await h.watchdog.check();
    expect(h.redispatched).toEqual([lost.id]);
    expect(h.warnings.some((w) => w.startsWith('attempt:redispatched') && w.includes(lost.id))).toBe(true);
    expect(h.watchdog.size).toBe(2);
    await h.watchdog.check(); // present again: nothing more to do
    expect(h.redispatched).toEqual([lost.id]);
    await h.watchdog.stop();
  });

  it('finds lost jobs even when the no-worker check is disabled', async () => {
    const h = harness(null);
    const attempt = makeAttempt({ task: 'ghost' });
    h.watchdog.track(attempt);
    h.clock.t = 1e9;
    await h.watchdog.check();
    expect(h.reported).toEqual([]);
    h.presence.set(attempt.id, 'missing');
    await h.watchdog.check();
    expect(h.redispatched).toEqual([attempt.id]);
    await h.watchdog.stop();
  });
});
