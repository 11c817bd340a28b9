/**
 * Worker pools in processes of their own: `memoflow worker` children sharing the work of a run,
 * draining on SIGTERM, and a pool SIGKILLed mid-task whose attempt another pool takes over.
 */
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '@memoflow/sdk';
import { Redis } from 'ioredis';
import { chain, square, wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { REDIS_URL, resultWithin, distributedEnvPerTest } from './support.js';
import { taskQueueName } from '@memoflow/worker';
import { countBy, exitOf, waitFor } from './support.js';

const t = distributedEnvPerTest();

describe('distributed: worker pools in separate processes', () => {
  it('two `memoflow worker` processes share a wide run; a repeat is all HIT; SIGTERM drains and exits 0', async () => {
    const workers = await Promise.all([t.startCliWorker(4), t.startCliWorker(4)]);
    const mf = await t.connect();
    const salt = 1000 + Math.floor(Math.random() * 1000);

    const first = await mf.run(wide, { salt, ms: 300 });
    expect(await resultWithin(t, mf, first)).toEqual(wideOutputs(salt));
    const nodes = await first.nodes();
    expect(nodes).toHaveLength(WIDTH + 1);
    expect(nodes.every((n) => n.status === 'succeeded' && n.attempts === 1)).toBe(true);

    const executed = t.executions().filter((line) => line.phase === 'done');
    // Every node ran exactly once, and the 12 sleeping squares were spread over both processes.
    expect([...countBy(executed, 'done').values()]).toEqual(Array(WIDTH + 1).fill(1));
    const pids = new Set(executed.map((line) => line.pid));
    expect(pids).toEqual(new Set(workers.map((w) => w.process.pid)));
    // The workers' own log lines carry the run, node, task, attempt, short key and duration.
    const succeeded = workers.flatMap((w) => w.stdout).filter((line) => line.includes('"attempt:succeeded"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(succeeded).toHaveLength(WIDTH + 1);
    for (const line of succeeded) {
      expect(line).toMatchObject({ runId: first.id, attempt: 1, ok: true });
      expect(typeof line['nodeId']).toBe('string');
      expect(String(line['task'])).toMatch(/^dist\./);
      expect(String(line['key'])).toMatch(/^[0-9a-f]{12}$/);
      expect(typeof line['durationMs']).toBe('number');
    }

    const before = t.executions().length;
    const second = await mf.run(wide, { salt, ms: 300 });
    expect(await resultWithin(t, mf, second)).toEqual(wideOutputs(salt));
    expect((await second.nodes()).map((n) => n.cacheStatus)).toEqual(Array(WIDTH + 1).fill('HIT'));
    expect(t.executions().length).toBe(before);

    for (const worker of workers) worker.process.kill('SIGTERM');
    const codes = await Promise.all(workers.map((worker) => exitOf(worker, 15_000)));
    expect(codes).toEqual([0, 0]);
    for (const worker of workers) expect(worker.stdout.some((line) => line.includes('"pool:closed"'))).toBe(true);
  }, 60_000);

  it('SIGTERM while attempts run: the pool finishes them, publishes their results and exits 0', async () => {
    const draining = await t.startCliWorker(4);
    const mf = await t.connect();
    const salt = 2000 + Math.floor(Math.random() * 1000);
    const run = await mf.run(wide, { salt, ms: 1500 });
    await waitFor('the pool to start four attempts', () => t.executions().filter((l) => l.phase === 'start').length >= 4);
    draining.process.kill('SIGTERM');
    // The pool stops fetching: the rest waits for a pool that is still up.
    const rescuer = await t.startCliWorker(4);
    expect(await exitOf(draining, 15_000)).toBe(0);
    expect(await resultWithin(t, mf, run)).toEqual(wideOutputs(salt));
    const lines = t.executions();
    // Nothing ran twice: every attempt the draining pool started, it finished.
    expect([...countBy(lines, 'start').values()].every((n) => n === 1)).toBe(true);
    expect([...countBy(lines, 'done').values()]).toEqual(Array(WIDTH + 1).fill(1));
    const drainedPid = draining.process.pid;
    const startedByDrained = lines.filter((l) => l.phase === 'start' && l.pid === drainedPid).length;
    expect(startedByDrained).toBeGreaterThanOrEqual(4);
    expect(lines.filter((l) => l.phase === 'done' && l.pid === drainedPid).length).toBe(startedByDrained);
    expect(lines.some((l) => l.pid === rescuer.process.pid)).toBe(true);
  }, 60_000);

  it('SIGTERM with claimed jobs waiting for a slot: they go back to the queue and another pool runs them once', async () => {
    // Concurrency 2 across two task queues: the pool's `dist.step` consumer claims the chain's first
    // job while both slots run sleeping squares, so at SIGTERM it holds a job it has not started.
    const draining = await t.startCliWorker(2);
    const mf = await t.connect();
    const salt = 2500 + Math.floor(Math.random() * 1000);
    const squares = await mf.run(wide, { salt, ms: 2000 });
    await waitFor('both slots to run squares', () => t.executions().filter((l) => l.phase === 'start').length >= 2);
    const steps = await mf.run(chain, { seed: salt, ms: 0 });
    await waitFor('the step job to be claimed', async () => (await stepJobState(t.prefix, steps.id)) === 'active', 10_000, 20);
    draining.process.kill('SIGTERM');
    expect(await exitOf(draining, 15_000)).toBe(0);
    // It finished what it had started and ran nothing it had merely claimed.
    const byDrained = t.executions().filter((l) => l.pid === draining.process.pid);
    expect(byDrained.filter((l) => l.phase === 'start').map((l) => l.task)).toEqual(['dist.square', 'dist.square']);
    expect(byDrained.filter((l) => l.phase === 'done')).toHaveLength(2);

    const rescuer = await t.startCliWorker(8);
    expect(await resultWithin(t, mf, squares)).toEqual(wideOutputs(salt));
    expect(await resultWithin(t, mf, steps)).toEqual({ out: salt + 3 });
    const lines = t.executions();
    expect([...countBy(lines, 'start').values()].every((n) => n === 1)).toBe(true);
    expect([...countBy(lines, 'done').values()]).toEqual(Array(WIDTH + 1 + 3).fill(1));
    expect(lines.filter((l) => l.task === 'dist.step').every((l) => l.pid === rescuer.process.pid)).toBe(true);
    for (const run of [squares, steps]) expect((await run.nodes()).every((n) => n.status === 'succeeded' && n.attempts === 1)).toBe(true);
  }, 60_000);

  it('a worker SIGKILLed mid-task: another pool takes the stalled attempt over and the run succeeds', async () => {
    // Short BullMQ lock and stalled-check timings: `memoflow worker` has no flags for them, and with
    // its defaults (30 s lock, 30 s stalled check) the takeover would come 30-60 s after the kill.
    const victim = await t.startFixtureWorker({ lockMs: 2000, stalledMs: 1000 });
    const events: EngineEvent[] = [];
    const mf = await t.connect(events);
    const salt = 3000 + Math.floor(Math.random() * 1000);
    const run = await mf.run(wide, { salt, ms: 3000 });
    const started = await waitFor('the victim to start an attempt', () => t.executions().find((l) => l.phase === 'start' && l.pid === victim.process.pid));
    victim.process.kill('SIGKILL');
    expect(await exitOf(victim)).toBe('SIGKILL');
    const rescuer = await t.startFixtureWorker({ concurrency: WIDTH, lockMs: 2000, stalledMs: 1000 });

    expect(await resultWithin(t, mf, run)).toEqual(wideOutputs(salt));
    const lines = t.executions();
    const victimPid = victim.process.pid;
    const killedNodes = new Set(lines.filter((l) => l.pid === victimPid).map((l) => l.nodeId));
    expect(killedNodes.has(started.nodeId)).toBe(true);
    expect(lines.some((l) => l.pid === victimPid && l.phase === 'done')).toBe(false);
    for (const nodeId of killedNodes) {
      // Started twice (once per pool) and finished once, by the rescuer, as the same engine attempt.
      expect(lines.filter((l) => l.nodeId === nodeId).map((l) => [l.phase, l.pid, l.attempt])).toEqual([
        ['start', victimPid, 1],
        ['start', rescuer.process.pid, 1],
        ['done', rescuer.process.pid, 1],
      ]);
    }
    // Every other node ran once; the killed ones were not retried as new engine attempts.
    expect([...countBy(lines, 'done').values()]).toEqual(Array(WIDTH + 1).fill(1));
    const nodes = await run.nodes();
    expect(nodes.every((n) => n.status === 'succeeded' && n.attempts === 1)).toBe(true);
    const killed = nodes.find((n) => n.id === started.nodeId);
    const x = started.nodeId === 'square' ? 0 : Number(started.nodeId.replace('square-', '')) - 1;
    expect(killed?.output).toBe(x * x + salt);
    // The result was recorded once: one success event per node, one cache entry per node.
    const successes = events.filter((e) => e.runId === run.id && e.type === 'node:succeeded');
    expect(successes.filter((e) => e.nodeId === started.nodeId)).toHaveLength(1);
    expect(successes).toHaveLength(WIDTH + 1);
    expect(await mf.cache.list({ runId: run.id, task: square.taskName })).toHaveLength(WIDTH);
  }, 60_000);
});

/** The BullMQ state of the first `dist.step` attempt of a run (job id = attempt id): active or not. */
async function stepJobState(prefix: string, runId: string): Promise<'active' | 'other'> {
  const redis = new Redis(REDIS_URL, { connectionName: 'mf-test-probe', lazyConnect: true });
  await redis.connect();
  try {
    const active = await redis.lrange(`${prefix}:${taskQueueName('dist.step')}:active`, 0, -1);
    return active.includes(`${runId}-step-1`) ? 'active' : 'other';
  } finally {
    await redis.quit();
  }
}
