/**
 * Stateless controllers, one owner per run: a controller SIGKILLed mid-run and another taking the
 * run over once its lease expires (a standalone `memoflow controller`, or a client calling wait),
 * and two controllers side by side, each driving the runs it owns.
 */
import { describe, expect, it } from 'vitest';
import type { EngineEvent, Memoflow, RunHandle } from '@memoflow/sdk';
import { openPostgresStorage } from '@memoflow/catalog';
import type { RunState } from '@memoflow/engine';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, exitOf, TEST_DATABASE_URL, waitFor, type Child, resultWithin, distributedEnvPerTest } from './support.js';

/** The killed client's lease (and how soon its results stream counts as gone): short, so takeovers are quick. */
const VICTIM_LEASE_MS = 1000;

const t = distributedEnvPerTest();

/**
 * Starts test/fixtures/submit-run.ts (a client whose controller drives a `dist.chain` run:
 * step -> step-2, which sleeps `ms` -> step-3) and SIGKILLs it once step has finished and step-2 is
 * running. Returns the run id and the execution log at the moment of the kill.
 */
async function killControllerMidRun(seed: number, ms: number): Promise<{ runId: string; submitter: Child }> {
  const submitter = t.spawnScript('submit-run.ts', { SEED: String(seed), MS: String(ms), LEASE_MS: String(VICTIM_LEASE_MS) });
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

/** Until the run's lease is free or expired (its controller is dead and the lease ran out). */
async function untilUnleased(runId: string, timeoutMs: number): Promise<void> {
  const storage = await openPostgresStorage({ url: TEST_DATABASE_URL, schema: t.schema, max: 1 });
  try {
    await waitFor(`run ${runId}'s lease to expire`, async () => (await storage.runStore.listUnleased()).some((run) => run.id === runId), timeoutMs, 100);
  } finally {
    await storage.close();
  }
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
  it('a standalone `memoflow controller --lease 1000` takes the run over once its lease expires and finishes it without re-running finished tasks', async () => {
    await t.startCliWorker(4);
    const seed = 100 + Math.floor(Math.random() * 1000);
    const { runId } = await killControllerMidRun(seed, 3000);

    const controller = await t.startCliController(1000);
    const state = await pollRun(runId, (s) => s.run.status !== 'running', 30_000);
    expect(state.run.status).toBe('succeeded');
    // The standalone controller's log shows it driving the run to the end. Its last line is written
    // just after the save this test read, and crosses a pipe: it may reach us a moment later.
    const eventsOf = () => controller.stdout.filter((line) => line.startsWith('{') && line.includes(runId)).map((line) => JSON.parse(line) as Record<string, unknown>);
    await waitFor('the run:succeeded line', async () => (eventsOf().some((e) => e['event'] === 'run:succeeded') ? true : undefined), 5_000, 50).catch(() => undefined);
    const events = eventsOf();
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
  it('killed right after submitting: a standalone controller takes the unleased run over at start-up (the sweeper path)', async () => {
    // No worker yet, so no result can come back and move the run on: only recovery from the store
    // (recoverUnowned at start-up) can advance it, whether or not the dead client dispatched `step`.
    const seed = 4000 + Math.floor(Math.random() * 1000);
    const submitter = t.spawnScript('submit-run.ts', { SEED: String(seed), MS: '0', LEASE_MS: String(VICTIM_LEASE_MS) });
    const runId = (await submitter.waitForLine((line) => line.startsWith('run '), 30_000)).slice('run '.length);
    submitter.process.kill('SIGKILL');
    expect(await exitOf(submitter)).toBe('SIGKILL');
    await untilUnleased(runId, 10_000);

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
  it('two clients side by side: each drives the runs it submitted (their results go to it alone); every node runs once and every run succeeds', async () => {
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
    // Each client waits on the other's runs too: waiting on a run another live controller owns only watches it.
    const outputs = await Promise.all(
      runs.map(({ handle, by }) => {
        const other = by === 'a' ? b : a;
        return resultWithin(t, other, other.getRun<{ total: number; first: number }>(handle.id));
      }),
    );
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
    // Each node's success was recorded exactly once, by the controller that owns its run.
    const succeeded = [...eventsA, ...eventsB].filter((e) => e.type === 'node:succeeded');
    expect(succeeded).toHaveLength(runs.length * (WIDTH + 1));
    expect(new Set(succeeded.map((e) => `${e.runId}/${e.nodeId}`)).size).toBe(runs.length * (WIDTH + 1));
    const drove = (events: EngineEvent[]) => new Set(events.filter((e) => e.type === 'node:succeeded').map((e) => e.runId));
    expect([...drove(eventsA)].sort()).toEqual(runs.filter((r) => r.by === 'a').map((r) => r.handle.id).sort());
    expect([...drove(eventsB)].sort()).toEqual(runs.filter((r) => r.by === 'b').map((r) => r.handle.id).sort());
  }, 60_000);

  it('a client and a standalone controller sweeping with --lease 1000: the controller leaves the runs the client owns alone, though their tasks sleep longer than the lease', async () => {
    await Promise.all([t.startCliWorker(8), t.startCliWorker(8)]);
    // Tasks sleep 2.5 s, longer than the standalone controller's lease and sweep: the client's
    // heartbeat keeps its leases, so the sweeper never takes its runs (the release before leases
    // "recovered" them while they were driven, and both controllers took their results).
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
    // The standalone controller swept all along (several sweeps per second) and touched none of them.
    const logged = controller.stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { event?: string; runId?: string });
    expect(runs.some((run) => logged.some((e) => e.runId === run.id))).toBe(false);
    controller.process.kill('SIGTERM');
    expect(await exitOf(controller, 15_000)).toBe(0);
  }, 60_000);
});
