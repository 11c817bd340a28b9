/**
 * Stateless controllers: a controller SIGKILLed mid-run and another taking the run over (a
 * standalone `memoflow controller`, or a client calling wait), and two controllers sharing the
 * results of the same runs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent, Memoflow, RunHandle } from '@memoflow/sdk';
import { openPostgresStorage } from '@memoflow/catalog';
import type { RunState } from '@memoflow/engine';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, DistributedEnv, exitOf, TEST_DATABASE_URL, waitFor, type Child, resultWithin } from './support.js';

let t: DistributedEnv;
beforeEach(async () => {
  t = await DistributedEnv.create();
});
afterEach(async () => {
  await t.cleanup();
}, 30_000);

/**
 * Starts test/fixtures/submit-run.ts (a client whose controller drives a `dist.chain` run:
 * step -> step-2, which sleeps `ms` -> step-3) and SIGKILLs it once step has finished and step-2 is
 * running. Returns the run id and the execution log at the moment of the kill.
 */
async function killControllerMidRun(seed: number, ms: number): Promise<{ runId: string; submitter: Child }> {
  const submitter = t.spawnScript('submit-run.ts', { SEED: String(seed), MS: String(ms) });
  const runId = (await submitter.waitForLine((line) => line.startsWith('run '), 30_000)).slice('run '.length);
  await waitFor('step-2 to start', () => t.executions().some((l) => l.runId === runId && l.nodeId === 'step-2' && l.phase === 'start'));
  submitter.process.kill('SIGKILL');
  expect(await exitOf(submitter)).toBe('SIGKILL');
  const atKill = t.executions().filter((l) => l.runId === runId);
  // The kill landed mid-run: step finished, step-2 is still sleeping, step-3 has not started.
  expect(atKill.map((l) => [l.nodeId, l.phase])).toEqual([
    ['step', 'start'],
    ['step', 'done'],
    ['step-2', 'start'],
  ]);
  expect(submitter.stdout.some((line) => line.startsWith('result '))).toBe(false);
  return { runId, submitter };
}

/** After the takeover: every node ran exactly once (none that had finished ran again), outputs are right. */
async function expectFinishedOnce(mf: Memoflow, runId: string, seed: number): Promise<void> {
  const lines = t.executions().filter((l) => l.runId === runId);
  expect([...countBy(lines, 'start')]).toEqual([[`${runId}/step`, 1], [`${runId}/step-2`, 1], [`${runId}/step-3`, 1]]);
  expect([...countBy(lines, 'done')]).toEqual([[`${runId}/step`, 1], [`${runId}/step-2`, 1], [`${runId}/step-3`, 1]]);
  // `runs show` (the CLI's command is this call; the CLI itself cannot be pointed at a schema).
  const report = await mf.runs.show(runId);
  expect(report.status).toBe('succeeded');
  expect(report.outputs).toEqual({ out: seed + 3 });
  expect(report.nodes.map((n) => [n.id, n.status, n.attempts, n.output])).toEqual([
    ['step', 'succeeded', 1, seed + 1],
    ['step-2', 'succeeded', 1, seed + 2],
    ['step-3', 'succeeded', 1, seed + 3],
  ]);
}

/** Reads the run straight from Postgres (no controller in this process to take part). */
async function pollRun(runId: string, until: (state: RunState) => boolean, timeoutMs: number): Promise<RunState> {
  const storage = await openPostgresStorage({ url: TEST_DATABASE_URL, schema: t.schema, max: 1 });
  try {
    return await waitFor(`run ${runId} to finish`, async () => {
      const state = await storage.runStore.load(runId);
      return state !== undefined && until(state) ? state : undefined;
    }, timeoutMs, 200);
  } finally {
    await storage.close();
  }
}

describe('distributed: a controller killed mid-run', () => {
  it('a standalone `memoflow controller --stale-after 1000` finishes the run without re-running finished tasks', async () => {
    await t.startCliWorker(4);
    const seed = 100 + Math.floor(Math.random() * 1000);
    const { runId } = await killControllerMidRun(seed, 3000);

    const controller = await t.startCliController(1000);
    const state = await pollRun(runId, (s) => s.run.status !== 'running', 30_000);
    expect(state.run.status).toBe('succeeded');
    // The standalone controller's log shows it driving the run to the end.
    const events = controller.stdout.filter((line) => line.startsWith('{') && line.includes(runId)).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events.filter((e) => e['event'] === 'node:succeeded').map((e) => e['nodeId'])).toContain('step-3');
    expect(events.some((e) => e['event'] === 'run:succeeded')).toBe(true);

    controller.process.kill('SIGTERM');
    expect(await exitOf(controller, 15_000)).toBe(0);
    await expectFinishedOnce(await t.connect(), runId, seed);
  }, 60_000);

  it('a new client calling wait() on the run id takes the run over', async () => {
    await t.startCliWorker(4);
    const seed = 2000 + Math.floor(Math.random() * 1000);
    const { runId } = await killControllerMidRun(seed, 3000);

    const mf = await t.connect();
    const report = await mf.getRun(runId).wait();
    expect(report.status).toBe('succeeded');
    expect(report.outputs).toEqual({ out: seed + 3 });
    await expectFinishedOnce(mf, runId, seed);
  }, 60_000);
  it('killed right after submitting: a standalone controller recovers the stale run (the sweeper path)', async () => {
    // No worker yet, so no result can come back and move the run on: only recovery from the store
    // (recoverStale at start-up) can advance it, whether or not the dead client dispatched `step`.
    const seed = 4000 + Math.floor(Math.random() * 1000);
    const submitter = t.spawnScript('submit-run.ts', { SEED: String(seed), MS: '0' });
    const runId = (await submitter.waitForLine((line) => line.startsWith('run '), 30_000)).slice('run '.length);
    submitter.process.kill('SIGKILL');
    expect(await exitOf(submitter)).toBe('SIGKILL');
    // Stale means untouched for --stale-after (1 s).
    await pollRun(runId, (s) => Date.now() - s.run.updatedAt.getTime() > 1100, 10_000);

    const controller = await t.startCliController(1000);
    const started = JSON.parse(controller.stdout.find((line) => line.includes('controller started')) ?? '{}') as { recovered?: string[] };
    expect(started.recovered).toEqual([runId]);
    await t.startCliWorker(4);
    const state = await pollRun(runId, (s) => s.run.status !== 'running', 30_000);
    expect(state.run.status).toBe('succeeded');
    controller.process.kill('SIGTERM');
    expect(await exitOf(controller, 15_000)).toBe(0);
    const lines = t.executions().filter((l) => l.runId === runId);
    expect([...countBy(lines, 'done').values()]).toEqual([1, 1, 1]);
    expect((await (await t.connect()).runs.show(runId)).outputs).toEqual({ out: seed + 3 });
  }, 60_000);
});

describe('distributed: two controllers at once', () => {
  it('two clients share the results queue of several wide runs; every node runs once and every run succeeds', async () => {
    await Promise.all([t.startCliWorker(6), t.startCliWorker(6)]);
    const eventsA: EngineEvent[] = [];
    const eventsB: EngineEvent[] = [];
    const [a, b] = await Promise.all([t.connect(eventsA), t.connect(eventsB)]);
    const base = 5000 + Math.floor(Math.random() * 1000) * 10;
    const salts = [0, 1, 2, 3, 4, 5].map((i) => base + i);
    const runs: { handle: RunHandle<{ total: number; first: number }>; salt: number; by: 'a' | 'b' }[] = [];
    for (const [i, salt] of salts.entries()) {
      const by = i % 2 === 0 ? 'a' : 'b';
      runs.push({ handle: await (by === 'a' ? a : b).run(wide, { salt, ms: 50 }), salt, by });
    }
    const outputs = await Promise.all(runs.map(({ handle, by }) => resultWithin(t, by === 'a' ? a : b, handle)));
    expect(outputs).toEqual(salts.map(wideOutputs));

    const lines = t.executions();
    const expectedKeys = runs.flatMap(({ handle }) => ['sum', 'square', ...Array.from({ length: WIDTH - 1 }, (_, i) => `square-${i + 2}`)].map((node) => `${handle.id}/${node}`)).sort();
    for (const phase of ['start', 'done'] as const) {
      const counts = countBy(lines, phase);
      expect([...counts.keys()].sort()).toEqual(expectedKeys);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    }
    for (const { handle } of runs) {
      const nodes = await handle.nodes();
      expect(nodes.every((n) => n.status === 'succeeded' && n.attempts === 1)).toBe(true);
    }
    // Both controllers took results (of runs the other one submitted too), and between them
    // recorded each node's success exactly once.
    const succeeded = [...eventsA, ...eventsB].filter((e) => e.type === 'node:succeeded');
    expect(succeeded).toHaveLength(runs.length * (WIDTH + 1));
    expect(new Set(succeeded.map((e) => `${e.runId}/${e.nodeId}`)).size).toBe(runs.length * (WIDTH + 1));
    const tookPart = (events: EngineEvent[], by: 'a' | 'b') =>
      runs.some((run) => run.by !== by && events.some((e) => e.runId === run.handle.id && e.type === 'node:succeeded'));
    expect(tookPart(eventsA, 'a')).toBe(true);
    expect(tookPart(eventsB, 'b')).toBe(true);
  }, 60_000);

  it('a client and a standalone controller sweeping with --stale-after 1000: runs with sleeping tasks are recovered while driven, nothing runs twice', async () => {
    await Promise.all([t.startCliWorker(8), t.startCliWorker(8)]);
    // Tasks sleep 2.5 s, longer than --stale-after: the standalone controller "recovers" runs the
    // client is still driving (repeating their in-flight dispatches) and both take their results.
    const controller = await t.startCliController(1000);
    const mf = await t.connect();
    const base = 8000 + Math.floor(Math.random() * 1000) * 10;
    const salts = [base, base + 1];
    const runs = await Promise.all(salts.map((salt) => mf.run(wide, { salt, ms: 2500 })));
    expect(await Promise.all(runs.map((run) => resultWithin(t, mf, run)))).toEqual(salts.map(wideOutputs));

    const lines = t.executions();
    for (const phase of ['start', 'done'] as const) {
      const counts = countBy(lines, phase);
      expect(counts.size).toBe(runs.length * (WIDTH + 1));
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    }
    for (const run of runs) expect((await run.nodes()).every((n) => n.status === 'succeeded' && n.attempts === 1)).toBe(true);
    // The sweeper did pick the runs up (else this test proves nothing about concurrent recovery).
    const logged = controller.stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { event?: string; runId?: string });
    expect(runs.some((run) => logged.some((e) => e.runId === run.id))).toBe(true);
    controller.process.kill('SIGTERM');
    expect(await exitOf(controller, 15_000)).toBe(0);
  }, 60_000);
});
