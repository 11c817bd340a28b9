/**
 * Run ownership: each running run has one owner at a time, the holder of its lease. In memory: a
 * shared store on a fake clock stands for Postgres, a SharedTransport for Redis (results go back to
 * the dispatcher that sent the attempt, `route` hands them to another one).
 */
import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { Clock } from '../../ports/clock.js';
import type { AttemptResult } from '../../ports/task-dispatcher.js';
import { SharedTransport, type SharedTransportDispatcher } from '../../testing/shared-transport.js';
import { times10OrSum, wideSum } from '../../testing/spec-builders.js';
import type { EngineEvent } from '../vocabulary/commands.js';
import { Controller } from './controller.js';

class FakeClock implements Clock {
  current = Date.parse('2030-03-01T12:00:00.000Z');
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

const LEASE_MS = 5_000;
const spec = wideSum();
const run = times10OrSum;

interface World {
  clock: FakeClock;
  store: InMemoryRunStore;
  catalog: InMemoryCacheCatalog;
  transport: SharedTransport;
  events: EngineEvent[];
  controller(options?: { route?: boolean; leaseMs?: number; isGone?: (address: string) => boolean }): { controller: Controller; dispatcher: SharedTransportDispatcher };
}

const opened: Controller[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

function world(): World {
  const clock = new FakeClock();
  const store = new InMemoryRunStore({ clock });
  const catalog = new InMemoryCacheCatalog({ clock });
  const transport = new SharedTransport(run);
  const events: EngineEvent[] = [];
  return {
    clock,
    store,
    catalog,
    transport,
    events,
    controller(options = {}) {
      const dispatcher = transport.dispatcher({ ...(options.route === undefined ? {} : { route: options.route }) });
      if (options.isGone !== undefined) dispatcher.isGone = options.isGone;
      const controller = new Controller({ catalog, runStore: store, dispatcher, clock, waitPollMs: 5, leaseMs: options.leaseMs ?? LEASE_MS, onEvent: (e) => events.push(e) });
      opened.push(controller);
      return { controller, dispatcher };
    },
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('controller: run ownership', () => {
  test('a run belongs to the controller that created it: results reaching another one are routed to it, never driven there', async () => {
    const w = world();
    const a = w.controller();
    const b = w.controller();
    w.transport.pick = () => b.dispatcher.address; // every result lands at B first
    const ids = await Promise.all([1, 2, 3].map(() => a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' })));
    for (const id of ids) expect((await a.controller.wait(id)).run.outputs).toEqual({ total: 30 });
    expect(b.dispatcher.routed).toHaveLength(9);
    expect(b.controller.drivenRuns).toBe(0);
    expect(b.controller.ownedRuns).toBe(0);
    expect(w.events.filter((e) => e.type === 'node:succeeded').length).toBe(9);
  });

  test('without a way to route, a result for a run leased elsewhere is refused as retryable, with when to try again', async () => {
    const w = world();
    const a = w.controller();
    const b = w.controller({ route: false });
    w.transport.pick = (result) => (result.nodeId === 'a' ? b.dispatcher.address : undefined);
    const id = await a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('B to refuse a result', () => w.transport.executed.length >= 2);
    const handler = (r: AttemptResult): Promise<void> => (b.controller as unknown as { deliverResults(rs: AttemptResult[]): Promise<void>[] }).deliverResults([r])[0] as Promise<void>;
    const result = { attemptId: `${id}-a-1`, runId: id, nodeId: 'a', attempt: 1, startedAt: new Date(), finishedAt: new Date(), ok: true as const, output: 10, outputHash: null };
    await expect(handler(result)).rejects.toMatchObject({ code: 'RUN_LEASED', retryable: true, retryAfterMs: LEASE_MS });
    // The transport's redelivery goes nowhere else while A holds the lease; A finishes once it gets it.
    w.transport.pick = undefined;
    expect((await a.controller.wait(id)).run.outputs).toEqual({ total: 30 });
  });

  test('an owner that closes gives its runs back at once: a sweep of another controller takes them over', async () => {
    const w = world();
    const a = w.controller();
    const b = w.controller();
    w.transport.lose.add('b'); // A saves b as dispatched but closes before it reaches the queue
    const id = await a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('a to finish', async () => (await w.store.load(id))?.nodes['a']?.phase === 'succeeded');
    expect(await b.controller.recoverUnowned()).toEqual([]); // A's lease is live
    await a.controller.close();
    expect(await b.controller.recoverUnowned()).toEqual([id]);
    expect((await b.controller.wait(id)).run.outputs).toEqual({ total: 30 });
    expect(w.events.filter((e) => e.type === 'run:taken-over').map((e) => e.runId)).toEqual([id]);
  });

  test('an owner that dies (no heartbeat) keeps its runs until the lease expires; then a result for one of them takes it over', async () => {
    const w = world();
    const a = w.controller();
    const b = w.controller();
    w.transport.lose.add('sum');
    const id = await a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('sum to be dispatched', async () => (await w.store.load(id))?.nodes['sum']?.phase === 'dispatched');
    // A dies: its dispatcher takes nothing any more and its leases are never renewed.
    await a.dispatcher.close();
    expect(await b.controller.recoverUnowned()).toEqual([]);
    w.clock.advance(LEASE_MS);
    // The sweep is one way in; a result is the other. Redeliver a's result to B by hand.
    const handler = (r: AttemptResult): Promise<void> => (b.controller as unknown as { deliverResults(rs: AttemptResult[]): Promise<void>[] }).deliverResults([r])[0] as Promise<void>;
    await handler({ attemptId: `${id}-a-1`, runId: id, nodeId: 'a', attempt: 1, startedAt: new Date(), finishedAt: new Date(), ok: true, output: 10, outputHash: null });
    expect(b.controller.ownedRuns).toBe(1);
    // Taking over repeated the dispatch A had saved but never made.
    expect((await b.controller.wait(id)).run.outputs).toEqual({ total: 30 });
    expect(w.transport.executed.filter((attempt) => attempt.endsWith('-sum-1'))).toHaveLength(1);
  });

  test('a lease held by a controller known to be gone is taken at once, without waiting for its expiry', async () => {
    const w = world();
    const a = w.controller();
    w.transport.lose.add('a');
    const id = await a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('a to be dispatched', async () => (await w.store.load(id))?.nodes['a']?.phase === 'dispatched');
    await a.dispatcher.close();
    const b = w.controller({ isGone: (address) => address === a.dispatcher.address });
    expect((await b.controller.wait(id)).run.outputs).toEqual({ total: 30 });
  });

  test('waiting on a run owned by a live controller only watches it; once its owner closes, waiting takes it over', async () => {
    const w = world();
    const a = w.controller();
    const b = w.controller();
    w.transport.lose.add('sum');
    const id = await a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('sum to be dispatched', async () => (await w.store.load(id))?.nodes['sum']?.phase === 'dispatched');
    const waiting = b.controller.wait(id);
    await new Promise((resolve) => setTimeout(resolve, 30)); // several polls of B's watcher
    expect(b.controller.ownedRuns).toBe(0);
    await a.controller.close();
    expect((await waiting).run.outputs).toEqual({ total: 30 });
  });

  test('sweeping controllers split the unleased runs: each is taken over by exactly one', async () => {
    const w = world();
    const a = w.controller();
    w.transport.lose.add('a');
    const ids = await Promise.all(Array.from({ length: 12 }, () => a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' })));
    await a.controller.close();
    await a.dispatcher.close(); // results still on their way to A go to the others
    const sweepers = [w.controller(), w.controller(), w.controller()];
    const taken = await Promise.all(sweepers.map((s) => s.controller.recoverUnowned()));
    expect(taken.flat().sort()).toEqual([...ids].sort());
    const finals = await Promise.all(ids.map((id) => (sweepers[0] as (typeof sweepers)[number]).controller.wait(id)));
    expect(finals.map((f) => f.run.outputs)).toEqual(ids.map(() => ({ total: 30 })));
    expect(w.events.filter((e) => e.type === 'run:taken-over')).toHaveLength(12);
  });

  test('a heartbeat keeps the lease while the owner lives; a lease lost in a pause is noticed and the run left to its new owner', async () => {
    const w = world();
    const a = w.controller({ leaseMs: 60 }); // heartbeat every 20 ms (real time); expiry on the fake clock
    w.transport.lose.add('sum');
    const id = await a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('sum to be dispatched', async () => (await w.store.load(id))?.nodes['sum']?.phase === 'dispatched');
    w.clock.advance(59);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a heartbeat renews it from the new now
    w.clock.advance(30);
    const b = w.controller();
    expect(await b.controller.recoverUnowned()).toEqual([]);
    // A pauses past its lease: B takes the run over (its re-dispatch of sum is lost too, so the run
    // stays open); A's next heartbeat finds the lease gone and A stops driving the run.
    w.clock.advance(1_000);
    w.transport.lose.add('sum');
    expect(await b.controller.recoverUnowned()).toEqual([id]);
    await until('A to notice', () => w.events.some((e) => e.type === 'run:lease-lost' && e.runId === id));
    expect(a.controller.ownedRuns).toBe(0);
    expect(a.controller.drivenRuns).toBe(0);
    expect(await a.controller.recover(id)).toBe(false); // B holds it now
    expect(await b.controller.recover(id)).toBe(true);
    expect((await b.controller.wait(id)).run.outputs).toEqual({ total: 30 });
  });
});
