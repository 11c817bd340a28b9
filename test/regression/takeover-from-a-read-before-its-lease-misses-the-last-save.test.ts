/**
 * Regression (found by an adversarial review of the lease fence): a takeover that recovered from a
 * state read BEFORE it held the lease (Controller.recover, wait(), a cancel) could miss a save the
 * stalled previous owner landed in between: that owner's lease had expired, so nothing fenced its
 * save. The successor repeated the effects of the older state, and those of the later one (here a
 * dispatch of b that never reached the queue) were repeated by nobody: the run hung, leased to a
 * live controller. Now a takeover reads the run once it holds the lease, never before.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { Controller } from '../../packages/engine/src/controller/shell/controller.js';
import { InMemoryCacheCatalog } from '../../packages/engine/src/memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../packages/engine/src/memory/in-memory-run-store.js';
import type { Clock } from '../../packages/engine/src/ports/clock.js';
import type { RunSaveRequest, RunStore, LeaseRequest } from '../../packages/engine/src/ports/run-store.js';
import type { TaskAttempt } from '../../packages/engine/src/ports/task-dispatcher.js';
import { SharedTransport } from '../../packages/engine/src/testing/shared-transport.js';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

class FakeClock implements Clock {
  current = Date.parse('2030-06-01T00:00:00.000Z');
  now(): Date { return new Date(this.current); }
}
const LEASE_MS = 5_000;
const spec = workflowSpec('stall.chain', [taskNode('a', 'times', { x: lit(1) }, { cache: null }), taskNode('b', 'times', { x: ref('a') }, { cache: null })], { outputs: { b: ref('b') } });
const run = (attempt: TaskAttempt) => (attempt.inputs['x'] as number) * 10;
const controllers: Controller[] = [];
afterEach(async () => { await Promise.all(controllers.splice(0).map((c) => c.close())); });

function proxy(store: InMemoryRunStore, hooks: { save?: (r: RunSaveRequest) => Promise<void>; acquireLease?: () => Promise<void> }): RunStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const fn = (value as (...args: unknown[]) => unknown).bind(target);
      if (property === 'save' && hooks.save) return async (r: RunSaveRequest) => { await hooks.save!(r); return fn(r); };
      if (property === 'acquireLease' && hooks.acquireLease) return async (id: string, l: LeaseRequest) => { await hooks.acquireLease!(); return fn(id, l); };
      return fn;
    },
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) { if (await check()) return; await new Promise((r) => setTimeout(r, 5)); }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A stalls past its lease in the middle of saving a's result (its dispatch of b, sent beside that
 * save, never reached the queue); B is made with a store whose lease acquisition first lets A's
 * save land, so the save falls between anything B read before leasing and its lease.
 */
async function stalledOwner() {
  const clock = new FakeClock();
  const store = new InMemoryRunStore({ clock });
  const catalog = new InMemoryCacheCatalog({ clock });
  const transport = new SharedTransport(run);
  let stalled = false;
  const held: (() => void)[] = [];
  const outcomes: string[] = [];
  const aStore = proxy(store, {
    save: async () => {
      if (stalled) await new Promise<void>((r) => held.push(r));
    },
  });
  const aDispatcher = transport.dispatcher();
  const a = new Controller({ catalog, runStore: aStore, dispatcher: aDispatcher, clock, leaseMs: LEASE_MS, waitPollMs: 10 });
  controllers.push(a);
  transport.lose.add('a');
  const id = await a.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
  await until('a dispatched', async () => (await store.load(id))?.nodes['a']?.phase === 'dispatched');

  transport.lose.add('b');
  stalled = true;
  const result = { attemptId: `${id}-a-1`, runId: id, nodeId: 'a', attempt: 1, startedAt: new Date(), finishedAt: new Date(), ok: true as const, output: 10, outputHash: null };
  const toA = (a as unknown as { deliverResults(rs: unknown[]): Promise<void>[] }).deliverResults([result])[0] as Promise<void>;
  toA.catch(() => undefined);
  await until('A saving', () => held.length === 1);
  clock.current += LEASE_MS; // A's lease expires; nobody holds the run

  const bStore = proxy(store, {
    acquireLease: async () => {
      stalled = false;
      for (const r of held.splice(0)) r();
      await until("A's save to land", async () => (await store.load(id))?.nodes['a']?.phase === 'succeeded');
      outcomes.push('A saved before B leased');
    },
  });
  const b = new Controller({ catalog, runStore: bStore, dispatcher: transport.dispatcher(), clock, leaseMs: LEASE_MS, waitPollMs: 10 });
  controllers.push(b);
  /** A is gone once its save landed: it never made b's dispatch. */
  const aDies = async (): Promise<void> => {
    await toA.catch(() => undefined);
    await a.close();
    await aDispatcher.close();
  };
  return { store, b, id, outcomes, aDies };
}

/** The run's outputs once B finishes it, or a message if b never runs. */
function finished(b: Controller, id: string): Promise<unknown> {
  return Promise.race([b.wait(id).then((s) => s.run.outputs), new Promise((r) => setTimeout(() => r('timed out: b never ran'), 2_000))]);
}

describe('takeover from a read made before the lease', () => {
  test("the stalled owner's save landing between the successor's read and its lease is never acted on", async () => {
    const { store, b, id, outcomes, aDies } = await stalledOwner();
    // Controller.recover reads the run first, then leases it.
    expect(await b.recover(id)).toBe(true);
    expect(outcomes).toEqual(['A saved before B leased']);
    await aDies();
    expect((await store.load(id))?.nodes['b']?.phase).toBe('dispatched');
    // B owns the run; b's dispatch is in the store, never queued: B must repeat it.
    expect(await finished(b, id)).toEqual({ b: 100 });
  });

  test('same through wait(): it reads, then takes the run over from that read', async () => {
    const { b, id, outcomes, aDies } = await stalledOwner();
    const waiting = b.wait(id).then((s) => s.run.outputs);
    waiting.catch(() => undefined);
    await until("A's save to land while B leases the run", () => outcomes.length === 1);
    await aDies();
    // B took the run over from what it read once leased: it repeats b's dispatch, and the run ends.
    const final = await Promise.race([waiting, new Promise((r) => setTimeout(() => r('timed out: b never ran'), 2_000))]);
    expect(final).toEqual({ b: 100 });
  });

  test('control: recoverUnowned (reads after leasing) finishes the same run', async () => {
    const { store, b, id, outcomes, aDies } = await stalledOwner();
    expect(await b.recoverUnowned()).toEqual([id]);
    expect(outcomes).toEqual(['A saved before B leased']);
    await aDies();
    expect((await store.load(id))?.nodes['b']?.phase).toBe('dispatched');
    expect(await finished(b, id)).toEqual({ b: 100 });
  });
});
