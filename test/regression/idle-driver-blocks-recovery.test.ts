/**
 * Regression: a controller kept an idle driver for every run whose result it ever handled, and
 * `recoverStale` and `wait()` skipped runs that had one, so with two controllers a run whose owner
 * died after saving "dispatched" hung, and memory grew with every run; and a client that could only
 * read a run "recovered" it with its own dispatcher and failed it.
 *
 * Which controller drives a run: by what the store says (the run's lease, and the worker pool it
 * records), never by what a controller happens to hold in memory (robustness issue, items 4 and 5;
 * ownership issue, item 5). A shared in-memory store on a fake clock stands for Postgres; the
 * engine's SharedTransport stands for the queue: results go back to the dispatcher that sent the
 * attempt, and `route` hands them to another one.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type Clock } from '@memoflow/engine';
import { SharedTransport } from '../../packages/engine/src/testing/shared-transport.js';
import { times10OrSum, wideSum } from '../../packages/engine/src/testing/spec-builders.js';

const LEASE_MS = 5_000;

class FakeClock implements Clock {
  current = Date.parse('2030-06-01T00:00:00.000Z');
  now(): Date {
    return new Date(this.current);
  }
}

const spec = wideSum();
const run = times10OrSum;

const controllers: Controller[] = [];
afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
});

function world() {
  const clock = new FakeClock();
  const store = new InMemoryRunStore({ clock });
  const catalog = new InMemoryCacheCatalog({ clock });
  const transport = new SharedTransport(run);
  const controller = (pool?: string, own: SharedTransport = transport): Controller => {
    const c = new Controller({ catalog, runStore: store, clock, dispatcher: own.dispatcher(pool === undefined ? {} : { pool }), waitPollMs: 20, leaseMs: LEASE_MS });
    controllers.push(c);
    return c;
  };
  return { clock, store, transport, controller };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('controller: run ownership', () => {
  test('a run whose lease lapsed after a dispatch was lost is taken over by a sweep, even by the controller holding an idle driver for it', async () => {
    const w = world();
    const a = w.controller();
    w.transport.lose.add('b'); // A saves b as dispatched, but the dispatch never reaches the queue
    const runId = await a.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('a to succeed', async () => (await w.store.load(runId))?.nodes['a']?.phase === 'succeeded');
    expect(a.drivenRuns).toBe(1); // idle: it waits for b, which never comes
    // A stalls past its lease (a long pause: its heartbeat never ran).
    w.clock.current += LEASE_MS;

    // Before: the sweep skipped runs with a driver in memory, so nobody repeated the lost dispatch.
    expect(await a.recoverUnowned()).toEqual([runId]);
    const final = await a.wait(runId);
    expect(final.run.status).toBe('succeeded');
    expect(final.run.outputs).toEqual({ total: 30 });
  });

  test('idle drivers are dropped: memory follows the runs in flight, while the runs stay owned', async () => {
    const w = world();
    const a = w.controller();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      w.transport.lose.add('sum'); // each run's sum is saved as dispatched and lost
      ids.push(await a.submit({ spec, inputs: {}, project: 'p', domain: 'd' }));
      await until('sum to be dispatched', async () => (await w.store.load(ids[i] as string))?.nodes['sum']?.phase === 'dispatched');
    }
    expect(a.drivenRuns).toBe(5);
    a.evictIdleDrivers(0);
    expect(a.drivenRuns).toBe(0);
    expect(a.ownedRuns).toBe(5);
    // Another controller cannot take them: they are still A's.
    const b = w.controller();
    expect(await b.recoverUnowned()).toEqual([]);
    for (const id of ids) {
      expect(await a.recover(id)).toBe(true); // repeats the lost dispatch
      expect((await a.wait(id)).run.outputs).toEqual({ total: 30 });
    }
    expect(a.drivenRuns).toBe(0);
  });

  test('a controller that cannot reach the run\'s worker pool only reads it: waiting never takes it over', async () => {
    const w = world();
    const owner = w.controller('queue:shared');
    const reader = w.controller('in-process:elsewhere', new SharedTransport(run));
    w.transport.lose.add('sum');
    const id = await owner.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('sum to be dispatched', async () => (await w.store.load(id))?.nodes['sum']?.phase === 'dispatched');
    await owner.close(); // the run is free now, but not the reader's to drive
    expect(await reader.recoverUnowned()).toEqual([]);
    const waiting = reader.wait(id);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(reader.drivenRuns).toBe(0);
    expect(reader.ownedRuns).toBe(0);
    const next = w.controller('queue:shared');
    expect(await next.recoverUnowned()).toEqual([id]);
    const read = await waiting;
    expect(read.run.status).toBe('succeeded');
    expect(read.run.outputs).toEqual({ total: 30 });
  });
});
