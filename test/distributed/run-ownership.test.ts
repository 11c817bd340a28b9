/**
 * Run ownership (issue 9, item 5): several controllers share many runs without fighting over them,
 * and a dead controller's runs move on to the others.
 * - Three controllers in this process, each with its own Postgres pool and BullMQ dispatcher (so its
 *   own results stream), two worker pools, 200 concurrent runs of `dist.wide` (12 squares and their
 *   sum). Every save a controller makes is counted; a save that returns false is a lost race
 *   (another controller moved the run on first). The figure is printed with its target.
 * - A client process driving 30 runs is SIGKILLed mid-run, its leases 2 s long: two controllers in
 *   this process take its runs over once the leases expire and finish them; timings are printed.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgresStorage, type Storage } from '@memoflow/catalog';
import { Controller, type EngineEvent, type RunSaveRequest, type RunStore } from '@memoflow/engine';
import { BullMqTaskDispatcher, silentLogger, startWorker, type WorkerPool } from '@memoflow/worker';
import { cleanUpPrefix, REDIS_URL } from '../../packages/worker/src/testing/redis.js';
import { dropSchema, TEST_DATABASE_URL } from '../support/modes.js';
import { square, sum, wide, wideOutputs } from '../fixtures/flows.js';
import { countBy, DistributedEnv, exitOf, waitFor } from './support.js';

interface SaveCounts {
  saves: number;
  lost: number;
}

/** The store as is, except that every `save` is counted (and each one returning false as lost). */
function countingSaves(store: RunStore, counts: SaveCounts): RunStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'save') {
        return async (request: RunSaveRequest) => {
          const saved = await target.save(request);
          counts.saves += 1;
          if (!saved) counts.lost += 1;
          return saved;
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const schema = `mf_own_${randomBytes(6).toString('hex')}`;
const prefix = `mf-own-${randomBytes(5).toString('hex')}`;
const toClose: { close(): Promise<void> }[] = [];

let env: DistributedEnv | undefined;

afterEach(async () => {
  for (const item of toClose.splice(0).reverse()) await item.close();
  await cleanUpPrefix(prefix);
  await dropSchema(schema);
  await env?.cleanup();
  env = undefined;
}, 30_000);

async function controllers(count: number): Promise<{ controller: Controller; counts: SaveCounts }[]> {
  const out: { controller: Controller; counts: SaveCounts }[] = [];
  for (let i = 0; i < count; i++) {
    const storage: Storage = await openPostgresStorage({ url: TEST_DATABASE_URL, schema, max: 4 });
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, resultClaimIdleMs: 10_000, logger: silentLogger });
    const counts: SaveCounts = { saves: 0, lost: 0 };
    const controller = new Controller({ catalog: storage.catalog, runStore: countingSaves(storage.runStore, counts), dispatcher });
    toClose.push(storage, dispatcher, controller);
    out.push({ controller, counts });
  }
  return out;
}

describe('distributed: run ownership', () => {
  it('three controllers on 200 concurrent runs: lost races stay under 1 % of saves', async () => {
    const pools: WorkerPool[] = await Promise.all(
      [0, 1].map(() => startWorker({ tasks: [square.implementation, sum.implementation], redisUrl: REDIS_URL, prefix, concurrency: 16, logger: silentLogger })),
    );
    toClose.push(...pools);
    const all = await controllers(3);
    const base = 30_000 + Math.floor(Math.random() * 1000) * 1000;
    const started = Date.now();
    const runs = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const { controller } = all[i % all.length] as (typeof all)[number];
        const salt = base + i;
        const id = await controller.submit({ spec: wide.spec, inputs: wide.prepareInputs({ salt, ms: 5 }), project: 'own', domain: 'dev' });
        return { id, salt, controller };
      }),
    );
    const finals = await Promise.all(runs.map(({ id, controller }) => controller.wait(id)));
    const elapsedMs = Date.now() - started;
    for (const [i, final] of finals.entries()) {
      expect(final.run.status).toBe('succeeded');
      expect(final.run.outputs).toEqual(wideOutputs((runs[i] as (typeof runs)[number]).salt));
    }
    const saves = all.reduce((n, c) => n + c.counts.saves, 0);
    const lost = all.reduce((n, c) => n + c.counts.lost, 0);
    const perThousand = (lost / saves) * 1000;
    const met = perThousand < 10;
    console.log(
      `run ownership: 3 controllers, 200 runs x 13 nodes in ${elapsedMs} ms: ${lost} lost races in ${saves} saves = ` +
        `${perThousand.toFixed(1)} per 1,000 rounds (target < 10, i.e. < 1 %): ${met ? 'MET' : 'MISSED'}; ` +
        `per controller ${all.map((c) => `${c.counts.lost}/${c.counts.saves}`).join(', ')}`,
    );
    expect(perThousand).toBeLessThan(10);
  }, 120_000);

  it('a controller SIGKILLed mid-run: its runs finish on the others within the lease expiry and a round', async () => {
    const LEASE_MS = 2_000;
    const SWEEP_MS = 500;
    const RUNS = 30;
    const t = (env = await DistributedEnv.create());
    await t.startCliWorker(40);
    const events: { at: number; event: EngineEvent }[] = [];
    const survivors = [];
    for (let i = 0; i < 2; i++) {
      const storage = await openPostgresStorage({ url: t.databaseUrl, schema: t.schema, max: 4 });
      const dispatcher = new BullMqTaskDispatcher({ connection: t.redisUrl, prefix: t.prefix, resultClaimIdleMs: LEASE_MS, logger: silentLogger });
      const controller = new Controller({ catalog: storage.catalog, runStore: storage.runStore, dispatcher, leaseMs: LEASE_MS, onEvent: (event) => events.push({ at: Date.now(), event }) });
      controller.startSweeper({ intervalMs: SWEEP_MS });
      toClose.push(storage, dispatcher, controller);
      survivors.push({ controller, storage });
    }
    // The victim: a client whose controller creates and drives RUNS chains (step -> step-2, 1.5 s -> step-3).
    const seed = 60_000 + Math.floor(Math.random() * 1000) * 100;
    const victim = t.spawnScript('submit-run.ts', { SEED: String(seed), MS: '1500', COUNT: String(RUNS), LEASE_MS: String(LEASE_MS) });
    await victim.waitForLine((line) => line === 'submitted', 60_000);
    const ids = victim.stdout.filter((line) => line.startsWith('run ')).map((line) => line.slice('run '.length));
    expect(ids).toHaveLength(RUNS);
    // Kill it while every run's sleeping middle step runs on the workers (their results come after the kill).
    await waitFor('every step-2 to start', () => ids.every((id) => t.executions().some((l) => l.runId === id && l.nodeId === 'step-2' && l.phase === 'start')), 30_000, 20);
    victim.process.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await exitOf(victim)).toBe('SIGKILL');
    const store = (survivors[0] as (typeof survivors)[number]).storage.runStore;
    // Measured on the runs the victim left unfinished (on a loaded machine the first few may have
    // finished before the kill); the test means something only if that is nearly all of them.
    const open = (await Promise.all(ids.map(async (id) => ((await store.status(id)) === 'running' ? id : null)))).filter((id): id is string => id !== null);
    expect(open.length).toBeGreaterThanOrEqual(RUNS - 5);

    const finals = await waitFor('every run to finish', async () => {
      const states = await Promise.all(ids.map((id) => store.load(id)));
      return states.every((s) => s !== undefined && s.run.status !== 'running') ? states : undefined;
    }, 30_000, 100);
    for (const [i, final] of finals.entries()) {
      expect(final?.run.status).toBe('succeeded');
      expect(final?.run.outputs).toEqual({ out: seed + i + 3 });
    }
    // Nothing ran twice: the middle steps' results, published after the kill, were taken over too.
    expect([...countBy(t.executions(), 'start').values()].every((n) => n === 1)).toBe(true);
    expect(countBy(t.executions(), 'start').size).toBe(RUNS * 3);

    const takeovers = events.filter((e) => e.event.type === 'run:taken-over');
    const takenOver = new Map(takeovers.map((e) => [e.event.runId, e.at]));
    const finished = new Map(events.filter((e) => e.event.type === 'run:succeeded').map((e) => [e.event.runId, e.at]));
    expect(takeovers.map((e) => e.event.runId).sort()).toEqual([...open].sort()); // each open run once, by one survivor
    const takeover = open.map((id) => (takenOver.get(id) as number) - killedAt);
    const finish = open.map((id) => (finished.get(id) as number) - killedAt);
    const after = open.map((id) => (finished.get(id) as number) - (takenOver.get(id) as number));
    const byController = survivors.map(({ controller }) => events.filter((e) => e.event.type === 'run:taken-over' && e.event.message?.includes(controller.id)).length);
    console.log(
      `killed controller: ${open.length} of ${RUNS} runs open at the kill, lease ${LEASE_MS} ms, sweep every ${SWEEP_MS} ms: taken over ${Math.min(...takeover)}-${Math.max(...takeover)} ms after the kill ` +
        `(split ${byController.join(' / ')}), finished ${Math.min(...finish)}-${Math.max(...finish)} ms after it, ` +
        `${Math.min(...after)}-${Math.max(...after)} ms after its takeover ` +
        `(target: within lease expiry + one round)`,
    );
    // A lease renewed at most a third of it before the kill expires within LEASE_MS of it; a sweep
    // finds it within SWEEP_MS more (slack: a loaded 2-core machine).
    expect(Math.max(...takeover)).toBeLessThanOrEqual(LEASE_MS + SWEEP_MS + 1_500);
    // Then a round or two: the in-flight effects are repeated, the middle step's result (waiting in
    // the shared stream or the dead inbox, handed on at the takeover) is recorded, and step-3, a
    // no-op, runs and is written to the cache.
    expect(Math.max(...after)).toBeLessThanOrEqual(2_500);
  }, 120_000);
});
