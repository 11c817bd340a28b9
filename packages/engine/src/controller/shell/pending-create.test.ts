/**
 * A submitted run is created by its driver's first round that must save (PendingCreate in
 * run-driver.ts): its lookups come first, so a fully cached run is written once. What that must not
 * cost: a submit that says "created" for a run the store lacks, events for a run that never came to
 * exist, a run that stays invisible for long, or a dispatch before the run is in the store.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { MemoflowError } from '../../errors.js';
import type { Json } from '../../json.js';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { CacheEntry, CacheEntryKind, CacheLookupResult } from '../../ports/cache-catalog.js';
import type { Clock } from '../../ports/clock.js';
import type { LeaseRequest } from '../../ports/run-store.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import type { RunState } from '../../state/run-state.js';
import { InlineDispatcher } from '../../testing/inline-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import type { EngineEvent } from '../vocabulary/commands.js';
import { Controller, createDeferMs } from './controller.js';

class FakeClock implements Clock {
  current = Date.parse('2026-03-01T12:00:00.000Z');
  now(): Date {
    return new Date(this.current);
  }
}

/** A chain of `length` nodes (cached unless `cached` is false), each adding one to the one before. */
const chain = (length: number, cached = true) =>
  workflowSpec(
    `pending.chain-${length}${cached ? '' : '-uncached'}`,
    Array.from({ length }, (_, i) => taskNode(`n${i}`, 't.inc', { x: i === 0 ? lit(0) : ref(`n${i - 1}`) }, cached ? {} : { cache: null })),
    { outputs: { out: ref(`n${length - 1}`) } },
  );

/** Records what the store held, and how many events had been emitted, at each create. */
class WatchedRunStore extends InMemoryRunStore {
  /** withStatus: nodes with a cache status (decided) when the run was created. */
  readonly creates: { status: string; withStatus: number; leased: boolean; eventsBefore: number }[] = [];
  failCreates = false;
  constructor(private readonly events: EngineEvent[]) {
    super();
  }
  override async create(state: RunState, lease?: LeaseRequest): Promise<void> {
    const withStatus = Object.values(state.nodes).filter((n) => n.cacheStatus !== null).length;
    this.creates.push({ status: state.run.status, withStatus, leased: lease !== undefined, eventsBefore: this.events.filter((e) => e.runId === state.run.id).length });
    if (this.failCreates) throw new MemoflowError('CATALOG_ERROR', 'runStore.create failed: connect ECONNREFUSED');
    return super.create(state, lease);
  }
}

/** Each lookup moves the clock on by `stepMs` (a slow catalog, in the clock's time). */
class SlowCatalog extends InMemoryCacheCatalog {
  stepMs = 0;
  constructor(private readonly clock: FakeClock) {
    super({ clock });
  }
  override async lookup(kind: CacheEntryKind, keys: readonly string[]): Promise<CacheLookupResult> {
    this.clock.current += this.stepMs;
    return super.lookup(kind, keys);
  }
}

const opened: Controller[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

function setup(options: { catalog?: InMemoryCacheCatalog; clock?: FakeClock } = {}) {
  const clock = options.clock ?? new FakeClock();
  const catalog = options.catalog ?? new InMemoryCacheCatalog({ clock });
  const events: EngineEvent[] = [];
  const store = new WatchedRunStore(events);
  let executions = 0;
  const dispatcher = new InlineDispatcher({
    't.inc': (inputs: { [name: string]: Json }, _attempt: TaskAttempt) => {
      executions += 1;
      return (inputs['x'] as number) + 1;
    },
  });
  const controller = new Controller({ catalog, runStore: store, dispatcher, clock, onEvent: (event) => events.push(event) });
  opened.push(controller);
  const submit = (length: number, cached = true) => controller.submit({ spec: chain(length, cached), inputs: {}, project: 'demo', domain: 'dev' });
  return { controller, store, catalog, events, submit, executions: () => executions };
}

describe('a submitted run is created by its first round that saves', () => {
  test('cache off: created by its first round, leased, before it dispatches anything', async () => {
    const { controller, store, submit, executions } = setup();
    const id = await submit(3, false);
    expect(store.creates).toEqual([{ status: 'running', withStatus: 1, leased: true, eventsBefore: 0 }]); // n0: DISABLED, dispatched
    expect((await controller.wait(id)).run.outputs).toEqual({ out: 3 });
    expect(executions()).toBe(3);
  });

  test('fully cached: created once, finished, unleased, and its events come after the create', async () => {
    const catalog = new InMemoryCacheCatalog();
    const warm = setup({ catalog });
    await warm.controller.wait(await warm.submit(5));
    const { controller, store, events, submit, executions } = setup({ catalog });
    const id = await submit(5);
    expect(store.creates).toEqual([{ status: 'succeeded', withStatus: 5, leased: false, eventsBefore: 0 }]);
    const state = await controller.wait(id);
    expect(state.run.outputs).toEqual({ out: 5 });
    expect(executions()).toBe(0);
    // Every node's HIT was told, after the run existed.
    expect(events.filter((e) => e.runId === id && e.type === 'node:cache-hit').length).toBe(5);
    expect((await store.load(id))?.run.status).toBe('succeeded');
  });

  test('a long cached prefix does not keep the run out of the store past its deferral (createDeferMs)', async () => {
    const clock = new FakeClock();
    const catalog = new SlowCatalog(clock);
    const warm = setup({ catalog, clock });
    await warm.controller.wait(await warm.submit(10));
    // Now each lookup takes a third of the deferral: the run is created in the round after the third.
    catalog.stepMs = Math.ceil(createDeferMs(10) / 3);
    const { controller, store, submit } = setup({ catalog, clock });
    const id = await submit(10);
    expect(store.creates).toEqual([{ status: 'running', withStatus: 3, leased: true, eventsBefore: 0 }]);
    expect((await controller.wait(id)).run.outputs).toEqual({ out: 10 });
  });

  test('a cache miss: created by the round that dispatches, after its lookup', async () => {
    const { controller, store, submit, executions } = setup();
    const id = await submit(3);
    expect(store.creates).toEqual([{ status: 'running', withStatus: 1, leased: true, eventsBefore: 0 }]); // n0: MISS, dispatched
    expect((await controller.wait(id)).run.outputs).toEqual({ out: 3 });
    expect(executions()).toBe(3);
  });

  test('a create that fails fails the submit: nothing dispatched, no event told, no run left behind', async () => {
    const { controller, store, events, submit, executions } = setup();
    store.failCreates = true;
    await expect(submit(3)).rejects.toThrow('connect ECONNREFUSED');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(executions()).toBe(0);
    expect(events.filter((e) => e.type.startsWith('node:'))).toEqual([]);
    expect(controller.drivenRuns).toBe(0);
    expect(await store.list()).toEqual([]);
  });

  test('a controller closed while the run looks up, before its create, fails the submit (STALE_STATE): nothing of it exists', async () => {
    const clock = new FakeClock();
    const catalog = new SlowCatalog(clock);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const lookup = catalog.lookup.bind(catalog);
    catalog.lookup = async (kind, keys) => {
      await gate;
      return lookup(kind, keys);
    };
    const { controller, store, submit, events } = setup({ catalog, clock });
    const submitted = submit(2).then((id) => ({ id }), (error: unknown) => ({ error }));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const closing = controller.close();
    release();
    await closing;
    expect(await submitted).toMatchObject({ error: { code: 'STALE_STATE' } });
    expect(store.creates).toEqual([]);
    expect(events.filter((e) => e.type.startsWith('node:'))).toEqual([]);
  });

  test('a controller closed while the create is under way: the submit tells the create’s outcome', async () => {
    const { controller, store, submit } = setup();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const create = store.create.bind(store);
    store.create = async (state, lease) => {
      await gate;
      return create(state, lease);
    };
    const submitted = submit(2);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const closing = controller.close();
    release();
    await closing;
    // The create was already under way: it finishes, and the submit says so (the run is in the store, for a sweeper to take over).
    const id = await submitted;
    expect((await store.load(id))?.run.status).toBe('running');
  });

  test('a submit to a closed controller fails (STALE_STATE) and creates nothing (found in review: it ran the run)', async () => {
    const { controller, store, submit, executions } = setup();
    await controller.close();
    await expect(submit(2, false)).rejects.toMatchObject({ code: 'STALE_STATE' });
    expect(store.creates).toEqual([]);
    expect(executions()).toBe(0);
    expect(controller.drivenRuns).toBe(0);
  });

  test('a lookup that does not answer within the deferral: the run is created without it, and its late answer comes as an ordinary event (found in review: submit hung)', async () => {
    const clock = new FakeClock();
    const catalog = new SlowCatalog(clock);
    let answer: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const lookup = catalog.lookup.bind(catalog);
    catalog.lookup = async (kind, keys) => {
      clock.current += createDeferMs(2) - 20; // the deferral is nearly up: 20 ms of real time remain
      await answered;
      return lookup(kind, keys);
    };
    const { controller, store, submit, events, executions } = setup({ catalog, clock });
    const started = Date.now();
    const id = await submit(2);
    expect(Date.now() - started).toBeLessThan(createDeferMs(2));
    expect(store.creates).toEqual([{ status: 'running', withStatus: 0, leased: true, eventsBefore: 0 }]);
    expect((await store.load(id))?.nodes['n0']?.phase).toBe('looking-up');
    expect(executions()).toBe(0);
    answer();
    expect((await controller.wait(id)).run.outputs).toEqual({ out: 2 });
    expect(executions()).toBe(2);
    expect(events.some((e) => e.runId === id && e.type.startsWith('node:'))).toBe(true);
  });

  test('the deferral grows with the run: 2 s, and 0.05 ms more per node', () => {
    expect(createDeferMs(0)).toBe(2_000);
    expect(createDeferMs(100_000)).toBe(7_000);
  });

  test('a decision that fails before the run exists does not fail the submit: the run is created as submitted and goes on (found in review)', async () => {
    const clock = new FakeClock();
    const catalog = new SlowCatalog(clock);
    const lookup = catalog.lookup.bind(catalog);
    let poisoned = 0;
    catalog.lookup = async (kind, keys) => {
      // The first answer is one the decision cannot apply (a hit without an entry).
      if (poisoned++ === 0) return { hits: new Map(keys.map((key) => [key, null as unknown as CacheEntry])), corrupt: new Map() };
      return lookup(kind, keys);
    };
    const { controller, store, submit, events, executions } = setup({ catalog, clock });
    const id = await submit(2);
    expect(store.creates).toEqual([{ status: 'running', withStatus: 0, leased: true, eventsBefore: 0 }]); // as submitted
    expect((await controller.wait(id)).run.outputs).toEqual({ out: 2 });
    expect(executions()).toBe(2);
    expect(events.some((e) => e.type === 'controller:round-failed' && e.runId === id && /decision function threw/.test(e.message ?? ""))).toBe(true);
  });
});
