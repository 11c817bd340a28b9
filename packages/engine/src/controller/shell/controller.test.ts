import { afterEach, describe, expect, test, vi } from 'vitest';
import { toErrorInfo } from '../../errors.js';
import type { Json, NodeValue } from '../../json.js';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { Clock } from '../../ports/clock.js';
import type { LeaseRequest, RunSaveRequest } from '../../ports/run-store.js';
import type { AttemptResult, AttemptResultsHandler, TaskAttempt, TaskDispatcher } from '../../ports/task-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import type { RunState } from '../../state/run-state.js';
import { arr, ref, taskNode, wfInput, workflowSpec, lit } from '../../testing/spec-builders.js';
import type { EngineEvent } from '../vocabulary/commands.js';
import { Controller, DEFAULT_LEASE_MS } from './controller.js';

// --- test doubles --------------------------------------------------------------------------------

class FakeClock implements Clock {
  current = new Date('2025-03-01T12:00:00.000Z');
  now(): Date {
    return new Date(this.current.getTime());
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

type TaskFn = (inputs: { [name: string]: Json }, attempt: TaskAttempt) => Json | Promise<Json>;

/**
 * A TaskDispatcher that runs functions from a Map in this process, asynchronously (results arrive
 * after `dispatch` resolves, as with a queue). Idempotent per attempt id, like the real ones.
 * `blackHole` accepts attempts and never runs them: a worker pool that died with the controller.
 */
class MapTaskDispatcher implements TaskDispatcher {
  readonly pool = 'test-map';
  /** Every attempt id handed to `dispatch`, duplicates included. */
  readonly dispatched: string[] = [];
  /** Attempt ids actually run. */
  readonly executed: string[] = [];
  readonly #seen = new Set<string>();
  readonly #running = new Set<Promise<void>>();
  #handler: AttemptResultsHandler | undefined;

  constructor(
    private readonly tasks: Map<string, TaskFn>,
    private readonly options: { blackHole?: boolean; hold?: boolean; deliverTwice?: boolean } = {},
  ) {}

  /** With `hold`: finished results, not yet delivered (the test delivers them with `deliver`). */
  readonly held: AttemptResult[] = [];
  /** Every handler call's promise: a transport acknowledges (or retries) a result when it settles. */
  readonly deliveries: Promise<void>[] = [];

  /** Hands a result to the controller, as the transport would (a batch of one). */
  deliver(result: AttemptResult): Promise<void> {
    const handler = this.#handler;
    if (handler === undefined) throw new Error('no handler');
    const [delivery] = handler([result]);
    if (delivery === undefined) throw new Error('no settlement for the result');
    this.deliveries.push(delivery);
    return delivery;
  }

  async dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    await Promise.resolve();
    for (const attempt of attempts) {
      this.dispatched.push(attempt.id);
      if (this.#seen.has(attempt.id)) continue;
      this.#seen.add(attempt.id);
      if (this.options.blackHole === true) continue;
      const running = this.#run(attempt).finally(() => this.#running.delete(running));
      this.#running.add(running);
    }
  }

  onResults(handler: AttemptResultsHandler): void {
    this.#handler = handler;
  }

  /** Attempt ids the controller asked to cancel. */
  readonly cancelled: string[] = [];
  cancel(attempts: readonly { id: string }[]): Promise<void> {
    this.cancelled.push(...attempts.map((a) => a.id));
    return Promise.resolve();
  }

  async close(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  async #run(attempt: TaskAttempt): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.executed.push(attempt.id);
    const startedAt = new Date();
    const base = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt };
    let result: AttemptResult;
    try {
      const fn = this.tasks.get(attempt.task);
      if (fn === undefined) throw new Error(`task ${attempt.task} is not registered`);
      const output = await fn(attempt.inputs, attempt);
      result = { ...base, finishedAt: new Date(), ok: true, output, outputHash: null };
    } catch (error) {
      result = { ...base, finishedAt: new Date(), ok: false, error: toErrorInfo(error) };
    }
    if (this.options.hold === true) {
      this.held.push(result);
      return;
    }
    // At-least-once transports may deliver a result twice, concurrently.
    const first = this.deliver(result);
    if (this.options.deliverTwice === true) await Promise.all([first, this.deliver(result)]).catch(() => undefined);
    else await first.catch(() => undefined);
  }
}

/** Counts the ids of dispatched attempts that occur more than once. */
function duplicates(ids: readonly string[]): string[] {
  return ids.filter((id, i) => ids.indexOf(id) !== i);
}

// --- fixtures ------------------------------------------------------------------------------------

const numbers = (value: Json): number[] => (Array.isArray(value) ? value.filter((v): v is number => typeof v === 'number') : []);

const etlTasks = (): Map<string, TaskFn> =>
  new Map<string, TaskFn>([
    ['etl.clean', ({ rows }) => numbers(rows ?? null).filter((r) => r >= 0)],
    ['etl.total', ({ rows }) => numbers(rows ?? null).reduce((a, b) => a + b, 0)],
  ]);

const etl: WorkflowSpec = workflowSpec(
  'etl.main',
  [taskNode('clean', 'etl.clean', { rows: wfInput('rows') }), taskNode('total', 'etl.total', { rows: ref('clean') })],
  { inputs: { rows: { type: 'array', items: { type: 'number' } } }, outputs: { total: ref('total') } },
);

/** Three levels: a1, a2 -> b1(a1, a2), b2(a2) -> c([b1, b2]). */
const levels: WorkflowSpec = workflowSpec(
  'wf.levels',
  [
    taskNode('a1', 't.value', { v: lit(1) }),
    taskNode('a2', 't.value', { v: lit(2) }),
    taskNode('b1', 't.sum', { x: ref('a1'), y: ref('a2') }),
    taskNode('b2', 't.sum', { x: ref('a2') }),
    taskNode('c', 't.sum', { xs: arr(ref('b1'), ref('b2')) }),
  ],
  { outputs: { c: ref('c'), b1: ref('b1') } },
);

const levelTasks = (): Map<string, TaskFn> =>
  new Map<string, TaskFn>([
    ['t.value', ({ v }) => v ?? null],
    ['t.sum', (inputs) => Object.values(inputs).flatMap((v) => (Array.isArray(v) ? numbers(v) : typeof v === 'number' ? [v] : [])).reduce((a, b) => a + b, 0)],
  ]);

interface Setup {
  controller: Controller;
  catalog: InMemoryCacheCatalog;
  store: InMemoryRunStore;
  dispatcher: MapTaskDispatcher;
  clock: FakeClock;
  events: EngineEvent[];
  run(spec: WorkflowSpec, inputs?: { [name: string]: NodeValue }, options?: { overwriteCache?: boolean }): Promise<RunState>;
}

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((controller) => controller.close()));
});

let runCounter = 0;

function setup(
  tasks: Map<string, TaskFn>,
  shared: { catalog?: InMemoryCacheCatalog; store?: InMemoryRunStore; clock?: FakeClock; dispatcher?: MapTaskDispatcher } = {},
): Setup {
  const clock = shared.clock ?? new FakeClock();
  const catalog = shared.catalog ?? new InMemoryCacheCatalog({ clock });
  const store = shared.store ?? new InMemoryRunStore();
  const dispatcher = shared.dispatcher ?? new MapTaskDispatcher(tasks);
  const events: EngineEvent[] = [];
  const controller = new Controller({
    catalog,
    runStore: store,
    dispatcher,
    clock,
    newRunId: () => `run${++runCounter}`,
    onEvent: (event) => events.push(event),
  });
  open.push(controller);
  return {
    controller,
    catalog,
    store,
    dispatcher,
    clock,
    events,
    async run(spec, inputs = {}, options = {}) {
      const id = await controller.submit({ spec, inputs, project: 'demo', domain: 'dev', options });
      return controller.wait(id);
    },
  };
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const statuses = (state: RunState) => Object.fromEntries(Object.values(state.nodes).map((n) => [n.nodeId, `${n.phase}/${n.cacheStatus ?? '-'}${n.cacheReason === null ? '' : `/${n.cacheReason}`}`]));

// --- tests ---------------------------------------------------------------------------------------

describe('Controller with in-memory ports', () => {
  test('a run completes with its outputs, recorded in the store', async () => {
    const env = setup(etlTasks());
    const state = await env.run(etl, { rows: { value: [1, -2, 3] } });
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ total: 4 });
    expect(statuses(state)).toEqual({ clean: 'succeeded/POPULATED', total: 'succeeded/SKIPPED/upstream-reran' });
    expect(env.dispatcher.executed.sort()).toEqual([`${state.run.id}-clean-1`, `${state.run.id}-total-1`]);
    const stored = await env.store.load(state.run.id);
    expect(stored?.run).toMatchObject({ status: 'succeeded', outputs: { total: 4 } });
    expect(stored?.nodes['clean']?.output).toEqual({ value: [1, 3] });
    expect(env.events.filter((e) => e.type === 'run:succeeded')).toHaveLength(1);
    expect(await env.catalog.list()).toHaveLength(2);
  });

  test('a second identical run hits every node and dispatches nothing', async () => {
    const env = setup(etlTasks());
    const first = await env.run(etl, { rows: { value: [1, -2, 3] } });
    const dispatchedBefore = env.dispatcher.dispatched.length;
    const second = await env.run(etl, { rows: { value: [1, -2, 3] } });
    expect(second.run.id).not.toBe(first.run.id);
    expect(second.run.status).toBe('succeeded');
    expect(second.run.outputs).toEqual({ total: 4 });
    expect(statuses(second)).toEqual({ clean: `succeeded/HIT/from run ${first.run.id}`, total: `succeeded/HIT/from run ${first.run.id}` });
    expect(env.dispatcher.dispatched.length).toBe(dispatchedBefore);
    // Different inputs miss.
    const third = await env.run(etl, { rows: { value: [5] } });
    expect(third.run.outputs).toEqual({ total: 5 });
    expect(third.nodes['clean']?.cacheStatus).toBe('POPULATED');
  });

  test('one batched catalog lookup per DAG level', async () => {
    const env = setup(levelTasks());
    const lookup = vi.spyOn(env.catalog, 'lookup');
    const first = await env.run(levels);
    expect(first.run.outputs).toEqual({ c: 5, b1: 3 });
    // First run: level 1 is looked up (one call, both keys); everything below cascades. Its only
    // lookups are the early-cutoff report's shadow lookups (core/cutoff.ts): still one call per level.
    expect(lookup.mock.calls.map(([, keys]) => keys.length)).toEqual([2, 2, 1]);
    expect(Object.values(first.nodes).every((n) => n.cutoffHint == null)).toBe(true); // nothing to find in an empty catalog

    lookup.mockClear();
    const second = await env.run(levels);
    expect(second.run.outputs).toEqual({ c: 5, b1: 3 });
    expect(Object.values(second.nodes).every((n) => n.cacheStatus === 'HIT')).toBe(true);
    expect(lookup.mock.calls.map(([kind, keys]) => `${kind}:${keys.length}`)).toEqual(['output:2', 'output:2', 'output:1']);
  });

  test('early cutoff: a rerun upstream with the same output leaves a hint on each cascaded node that found its entry, one lookup per level', async () => {
    const env = setup(levelTasks());
    const first = await env.run(levels);
    await env.catalog.evict({ keys: [first.nodes['a1']?.cacheKey ?? ''] }); // a1 reruns (same output)
    const lookup = vi.spyOn(env.catalog, 'lookup');
    const second = await env.run(levels);
    expect(second.run.outputs).toEqual({ c: 5, b1: 3 });
    // One call per round that starts nodes: level 1; b2 (ready once a2 hits); b1's shadow lookup
    // (ready only once a1 has rerun); c's shadow lookup. Each is the round's one call.
    const key = (id: string) => second.nodes[id]?.cacheKey;
    expect(lookup.mock.calls.map(([, keys]) => [...keys])).toEqual([[key('a1'), key('a2')], [key('b2')], [key('b1')], [key('c')]]);
    const status = (id: string) => [second.nodes[id]?.cacheStatus, second.nodes[id]?.cacheReason];
    expect(status('b1')).toEqual(['SKIPPED', 'upstream-reran']); // the hint changes nothing: it still reran
    expect(status('c')).toEqual(['SKIPPED', 'upstream-reran']);
    expect(second.nodes['b1']?.cutoffHint).toEqual({ upstream: 'a1', savedMs: first.nodes['b1']?.computeMs, entry: { runId: first.run.id, nodeId: 'b1' } });
    expect(second.nodes['c']?.cutoffHint).toEqual({ upstream: 'b1', savedMs: first.nodes['c']?.computeMs, entry: { runId: first.run.id, nodeId: 'c' } });
    expect(second.nodes['b2']).toMatchObject({ cacheStatus: 'HIT', savedMs: first.nodes['b2']?.computeMs });
    expect(second.nodes['a1']?.cutoffHint ?? null).toBeNull();
    // The cascaded nodes rewrote their entries: a third run hits them (the hint's entry is gone, and none is needed).
    const third = await env.run(levels);
    expect(Object.values(third.nodes).map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT', 'HIT', 'HIT', 'HIT']);
  });

  test('a lost save (another writer bumped the version) is re-read and the run completes, dispatching nothing twice', async () => {
    class RacingRunStore extends InMemoryRunStore {
      saves = 0;
      lost = 0;
      override async save(request: RunSaveRequest): Promise<boolean> {
        this.saves += 1;
        if (this.saves % 2 === 0) {
          // Another controller writes the run between our load and our save.
          const current = await super.load(request.run.id);
          if (current !== undefined) await super.save({ run: current.run, nodes: [], expectedVersion: current.run.version });
        }
        const saved = await super.save(request);
        if (!saved) this.lost += 1;
        return saved;
      }
    }
    const store = new RacingRunStore();
    const env = setup(levelTasks(), { store });
    const state = await env.run(levels);
    expect(store.lost).toBeGreaterThan(2);
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ c: 5, b1: 3 });
    expect(duplicates(env.dispatcher.dispatched)).toEqual([]);
    expect(env.dispatcher.executed).toHaveLength(5);
    expect(Object.values(state.nodes).every((n) => n.attempts === 1)).toBe(true);
    const stored = await store.load(state.run.id);
    expect(stored?.run.status).toBe('succeeded');
  });

  // Regression: rounds that only start lookups are not saved first (a lookup is a read). A round
  // that applied a task result must be, even when its only effects are lookups: the result is
  // acknowledged to the transport once the round is done, and an unsaved result would be lost.
  test('a task result is saved before it is acknowledged, even when its round only starts lookups', async () => {
    const store = new InMemoryRunStore();
    const dispatcher = new MapTaskDispatcher(etlTasks(), { hold: true });
    const env = setup(etlTasks(), { store, dispatcher });
    // clean is not cached, so its success starts total's lookup and nothing else.
    const spec = workflowSpec(
      'etl.uncached-clean',
      [taskNode('clean', 'etl.clean', { rows: wfInput('rows') }, { cache: null }), taskNode('total', 'etl.total', { rows: ref('clean') })],
      { inputs: { rows: { type: 'array', items: { type: 'number' } } }, outputs: { total: ref('total') } },
    );
    const runId = await env.controller.submit({ spec, inputs: { rows: { value: [1, 2] } }, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.held.length === 1, 'clean to finish');
    await dispatcher.deliver(dispatcher.held.shift() as AttemptResult);
    const stored = await store.load(runId);
    expect(stored?.nodes['clean']).toMatchObject({ phase: 'succeeded', output: { value: [1, 2] } });
  });

  test('a fully cached run is written once, by its create, in its final state: no save per level, none at the end', async () => {
    class CountingRunStore extends InMemoryRunStore {
      saves = 0;
      created: string[] = [];
      override async create(state: RunState, lease?: LeaseRequest): Promise<void> {
        this.created.push(`${state.run.status}, lease ${lease === undefined ? 'none' : 'held'}`);
        return super.create(state, lease);
      }
      override async save(request: RunSaveRequest): Promise<boolean> {
        this.saves += 1;
        return super.save(request);
      }
    }
    const catalog = new InMemoryCacheCatalog();
    await setup(levelTasks(), { catalog }).run(levels);
    const store = new CountingRunStore();
    const env = setup(levelTasks(), { catalog, store });
    const state = await env.run(levels);
    expect(Object.values(state.nodes).map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT', 'HIT', 'HIT', 'HIT']);
    expect(store.created).toEqual(['succeeded, lease none']); // finished when created: nobody holds it
    expect(store.saves).toBe(0);
    const stored = await store.load(state.run.id);
    expect(stored?.nodes['c']?.cacheStatus).toBe('HIT');
  });

  test('recover() after a crash re-dispatches the same attempt id and completes', async () => {
    const store = new InMemoryRunStore();
    const clock = new FakeClock();
    const catalog = new InMemoryCacheCatalog({ clock });
    // Controller A's workers take the attempt and die with it.
    const dead = new MapTaskDispatcher(etlTasks(), { blackHole: true });
    const a = setup(etlTasks(), { store, clock, catalog, dispatcher: dead });
    const runId = await a.controller.submit({ spec: etl, inputs: { rows: { value: [1, -2, 3] } }, project: 'demo', domain: 'dev' });
    await eventually(async () => (await store.load(runId))?.nodes['clean']?.phase === 'dispatched', 'clean to be dispatched');
    await a.controller.close();
    expect(dead.dispatched).toEqual([`${runId}-clean-1`]);

    const b = setup(etlTasks(), { store, clock, catalog });
    await b.controller.recover(runId);
    const state = await b.controller.wait(runId);
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ total: 4 });
    expect(b.dispatcher.dispatched[0]).toBe(`${runId}-clean-1`);
    expect(b.dispatcher.executed).toEqual([`${runId}-clean-1`, `${runId}-total-1`]);
    expect(state.nodes['clean']?.attempts).toBe(1);
  });

  test('an entry the catalog refuses does not take the rest of its batch down', async () => {
    const tasks = new Map<string, TaskFn>([
      ['t.fine', () => 'fine'],
      ['t.poison', () => 'poison'],
    ]);
    const clock = new FakeClock();
    const catalog = new InMemoryCacheCatalog({ clock });
    const dispatcher = new MapTaskDispatcher(tasks, { hold: true });
    const batches: number[] = [];
    const put = catalog.put.bind(catalog);
    vi.spyOn(catalog, 'put').mockImplementation(async (entries) => {
      batches.push(entries.length);
      if (entries.some((entry) => entry.value === 'poison')) throw new Error('refused: poison');
      return put(entries);
    });
    const env = setup(tasks, { catalog, clock, dispatcher });
    const spec = workflowSpec('wf.poison', [taskNode('z', 't.fine', { v: lit(0) }), taskNode('a', 't.fine', { v: lit(1) }), taskNode('b', 't.poison', { v: lit(2) })], {
      outputs: { a: ref('a'), b: ref('b') },
    });
    const ticker = setInterval(() => clock.advance(1000), 5);
    try {
      const runId = await env.controller.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
      await eventually(() => dispatcher.held.length === 3, 'all results');
      // z's result starts a round; a's and b's arrive while it runs, so the next round has both.
      const byNode = (id: string) => dispatcher.held.find((result) => result.nodeId === id) as AttemptResult;
      await Promise.all(['z', 'a', 'b'].map((id) => dispatcher.deliver(byNode(id))));
      const state = await env.controller.wait(runId);
      expect(batches.slice(0, 4)).toEqual([1, 2, 1, 1]); // z; a and b together; then each alone
      expect(state.nodes['a']?.cacheStatus).toBe('POPULATED');
      expect(state.nodes['b']).toMatchObject({ cacheStatus: 'PUT_FAILURE', cacheReason: expect.stringContaining('refused: poison') });
      expect(env.events.find((e) => e.type === 'run:succeeded')?.message).toContain('b (t.poison)');
    } finally {
      clearInterval(ticker);
    }
  });

  test('a controller taking over a run continues its failed cache write retries', async () => {
    const store = new InMemoryRunStore();
    const clock = new FakeClock(); // frozen while A drives: A's retry never falls due
    const catalog = new InMemoryCacheCatalog({ clock });
    catalog.failNext('put', new Error('connection reset'));
    const a = setup(etlTasks(), { store, clock, catalog });
    const runId = await a.controller.submit({ spec: etl, inputs: { rows: { value: [5] } }, project: 'demo', domain: 'dev' });
    await eventually(async () => (await store.load(runId))?.nodes['clean']?.cacheWriteRetry?.retryAtMs != null, 'a scheduled retry of clean');
    await a.controller.close();
    expect((await catalog.lookup('output', [(await store.load(runId))?.nodes['clean']?.cacheKey ?? ''])).hits.size).toBe(0);

    const b = setup(etlTasks(), { store, clock, catalog });
    const ticker = setInterval(() => clock.advance(1000), 5);
    try {
      await b.controller.recover(runId);
      const state = await b.controller.wait(runId);
      expect(state.run.status).toBe('succeeded');
      expect(state.nodes['clean']).toMatchObject({ phase: 'succeeded', cacheStatus: 'POPULATED' });
      expect(state.nodes['clean']?.cacheWriteRetry ?? null).toBeNull();
      expect((await catalog.lookup('output', [state.nodes['clean']?.cacheKey ?? ''])).hits.size).toBe(1);
    } finally {
      clearInterval(ticker);
    }
  });

  test('recover() of a run that crashed while writing repeats the write', async () => {
    const clock = new FakeClock();
    const store = new InMemoryRunStore({ clock });
    const catalog = new InMemoryCacheCatalog({ clock });
    const a = setup(etlTasks(), { store, clock, catalog });
    // The catalog write hangs (the controller dies before it completes).
    let release: () => void = () => undefined;
    const put = vi.spyOn(catalog, 'put').mockImplementationOnce(() => new Promise<void>((resolve) => (release = resolve)));
    const runId = await a.controller.submit({ spec: etl, inputs: { rows: { value: [2] } }, project: 'demo', domain: 'dev' });
    await eventually(async () => (await store.load(runId))?.nodes['clean']?.phase === 'writing', 'clean to be writing');
    a.controller.close().catch(() => undefined); // hangs in the write: A never gives its lease back
    put.mockRestore();
    clock.advance(DEFAULT_LEASE_MS); // A's lease expires, as a dead controller's does

    const b = setup(etlTasks(), { store, clock, catalog });
    await b.controller.recover(runId);
    const state = await b.controller.wait(runId);
    release();
    expect(state.run.outputs).toEqual({ total: 2 });
    expect(state.nodes['clean']?.cacheStatus).toBe('POPULATED');
    expect((await catalog.list({ runId })).map((e) => e.nodeId).sort()).toEqual(['clean', 'total']);
  });

  test('wait() on a finished run returns its stored state; recover() of it is a no-op', async () => {
    const env = setup(etlTasks());
    const done = await env.run(etl, { rows: { value: [1] } });
    const executed = env.dispatcher.executed.length;
    await env.controller.recover(done.run.id);
    const again = await env.controller.wait(done.run.id);
    expect(again.run).toMatchObject({ status: 'succeeded', outputs: { total: 1 } });
    expect(env.dispatcher.executed.length).toBe(executed);
    await expect(env.controller.wait('nope')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
  });

  test('catalog failures: LOOKUP_FAILURE does not fail the run; a failed put is retried until it lands', async () => {
    const env = setup(etlTasks());
    env.catalog.failNext('lookup', new Error('catalog down'));
    // Two failed puts (one per batch): whichever writes they hit are put again and land.
    for (let i = 0; i < 2; i++) env.catalog.failNext('put', new Error('disk full'));
    // The run's (fake) clock moves on by itself, so retries fall due; the wake-up timers are real.
    const ticker = setInterval(() => env.clock.advance(1000), 5);
    try {
      const state = await env.run(etl, { rows: { value: [1, 2] } });
      expect(state.run.status).toBe('succeeded');
      expect(state.run.outputs).toEqual({ total: 3 });
      expect(statuses(state)).toEqual({ clean: 'succeeded/LOOKUP_FAILURE/catalog down', total: 'succeeded/SKIPPED/upstream-reran' });
      const retried = env.events.filter((e) => e.type === 'node:cache-written' && e.level === 'warn');
      // At least the first failure is reported; a failed batch is put again entry by entry at once, so a
      // later failure may be absorbed without a retry.
      expect(retried.length).toBeGreaterThanOrEqual(1);
      expect(retried.every((e) => e.message?.includes('retrying in'))).toBe(true);
      expect(env.events.find((e) => e.type === 'run:succeeded')?.message).toBeUndefined();
      // Both entries landed: the next run is all hits.
      const again = await env.run(etl, { rows: { value: [1, 2] } });
      expect(statuses(again)).toEqual({ clean: 'succeeded/HIT/from run ' + state.run.id, total: 'succeeded/HIT/from run ' + state.run.id });
    } finally {
      clearInterval(ticker);
    }
  });

  test('a put that keeps failing is lost only after its last try at the end; the run names it', async () => {
    const env = setup(etlTasks());
    for (let i = 0; i < 100; i++) env.catalog.failNext('put', new Error('disk full'));
    const ticker = setInterval(() => env.clock.advance(1000), 5);
    try {
      const state = await env.run(etl, { rows: { value: [1, 2] } });
      expect(state.run.status).toBe('succeeded');
      expect(state.nodes['clean']).toMatchObject({ cacheStatus: 'PUT_FAILURE', cacheReason: expect.stringMatching(/^cache write lost after \d+ attempt\(s\): disk full$/) });
      expect(state.nodes['total']?.cacheStatus).toBe('PUT_FAILURE');
      const end = env.events.find((e) => e.type === 'run:succeeded');
      expect(end).toMatchObject({ level: 'warn', message: expect.stringContaining('2 cache write(s) lost') });
      expect(end?.message).toContain('clean (etl.clean)');
    } finally {
      clearInterval(ticker);
    }
  });

  test('a corrupt entry is a miss with a warning and is repaired by the rerun', async () => {
    const env = setup(etlTasks());
    const first = await env.run(etl, { rows: { value: [1, 2] } });
    const key = first.nodes['clean']?.cacheKey;
    expect(key).toBeTruthy();
    expect(env.catalog.corrupt('output', key ?? '', 'undecodable')).toBe(true);
    const second = await env.run(etl, { rows: { value: [1, 2] } });
    expect(second.run.outputs).toEqual({ total: 3 });
    expect(second.nodes['clean']).toMatchObject({ cacheStatus: 'POPULATED', cacheReason: expect.stringContaining('corrupt entry') });
    expect(env.events.filter((e) => e.type === 'node:cache-corrupt' && e.runId === second.run.id)).toMatchObject([{ level: 'warn', nodeId: 'clean' }]);
    const third = await env.run(etl, { rows: { value: [1, 2] } });
    expect(third.nodes['clean']?.cacheStatus).toBe('HIT');
  });

  test('an expired entry (fake clock past the TTL) is a miss and is replaced', async () => {
    const spec = workflowSpec('wf.ttl', [taskNode('v', 't.value', { v: lit(7) }, { cache: { ttlMs: 60_000 } })], { outputs: { v: ref('v') } });
    const env = setup(levelTasks());
    await env.run(spec);
    env.clock.advance(59_999);
    expect((await env.run(spec)).nodes['v']?.cacheStatus).toBe('HIT');
    env.clock.advance(1);
    const expired = await env.run(spec);
    expect(expired.nodes['v']).toMatchObject({ cacheStatus: 'POPULATED', cacheReason: 'entry expired (older than 60000 ms)' });
    expect((await env.run(spec)).nodes['v']?.cacheStatus).toBe('HIT');
  });

  test('a failing task with retries: the retry succeeds and is cached; exhausted retries fail the run', async () => {
    let calls = 0;
    const tasks = new Map<string, TaskFn>([
      ['t.flaky', (_inputs, attempt) => {
        calls += 1;
        if (attempt.attempt < 2) throw new Error('flaky');
        return 'ok';
      }],
      ['t.broken', () => {
        throw new Error('always broken');
      }],
      ['t.value', ({ v }) => v ?? null],
    ]);
    const env = setup(tasks);
    const flaky = workflowSpec('wf.flaky', [taskNode('f', 't.flaky', {}, { retries: 1 })], { outputs: { f: ref('f') } });
    const state = await env.run(flaky);
    expect(state.run.outputs).toEqual({ f: 'ok' });
    expect(state.nodes['f']).toMatchObject({ attempts: 2, cacheStatus: 'POPULATED' });
    expect((await env.run(flaky)).nodes['f']?.cacheStatus).toBe('HIT');
    expect(calls).toBe(2);

    const broken = workflowSpec('wf.broken', [taskNode('x', 't.broken', {}, { retries: 2 }), taskNode('after', 't.value', { v: ref('x') })]);
    const failed = await env.run(broken);
    expect(failed.run.status).toBe('failed');
    expect(failed.run.error?.message).toContain("node 'x' (t.broken) failed: always broken");
    expect(statuses(failed)).toEqual({ x: 'failed/MISS', after: 'aborted/-' });
    expect(failed.nodes['x']?.attempts).toBe(3);
    expect(await env.catalog.list({ task: 't.broken' })).toEqual([]);
  });

  test('an invalid spec is rejected at submit, before anything is stored or dispatched', async () => {
    const env = setup(etlTasks());
    const bad = workflowSpec('wf.bad', [taskNode('a', 't', {}, { cache: { version: 'v 1' } })]);
    await expect(env.controller.submit({ spec: bad, inputs: {}, project: 'demo', domain: 'dev' })).rejects.toMatchObject({ code: 'INVALID_CACHE_VERSION' });
    expect(await env.store.list()).toEqual([]);
    expect(env.dispatcher.dispatched).toEqual([]);
  });

  describe('every delivered result is settled (a transport acks or redelivers on it)', () => {
    /** Whether each promise settled within `ms`. */
    async function settledWithin(promises: readonly Promise<unknown>[], ms: number): Promise<boolean[]> {
      const flags = promises.map(() => false);
      promises.forEach((promise, i) => {
        promise.then(
          () => (flags[i] = true),
          () => (flags[i] = true),
        );
      });
      await new Promise((resolve) => setTimeout(resolve, ms));
      return flags;
    }

    test('a duplicate of the last result, arriving during the final round, is acknowledged', async () => {
      const dispatcher = new MapTaskDispatcher(levelTasks(), { deliverTwice: true });
      const env = setup(levelTasks(), { dispatcher });
      const spec = workflowSpec('wf.one', [taskNode('v', 't.value', { v: lit(1) }, { cache: null })], { outputs: { v: ref('v') } });
      const state = await env.run(spec);
      expect(state.run.outputs).toEqual({ v: 1 });
      expect(dispatcher.deliveries).toHaveLength(2);
      expect(await settledWithin(dispatcher.deliveries, 100)).toEqual([true, true]);
      await expect(Promise.all(dispatcher.deliveries)).resolves.toBeDefined();
    });

    test('close(): a result queued behind a running round is rejected as retryable, not left pending', async () => {
      class GatedRunStore extends InMemoryRunStore {
        gate: Promise<void> | null = null;
        override async save(request: RunSaveRequest): Promise<boolean> {
          if (this.gate !== null) await this.gate;
          return super.save(request);
        }
      }
      const store = new GatedRunStore();
      const dispatcher = new MapTaskDispatcher(levelTasks(), { hold: true });
      const env = setup(levelTasks(), { store, dispatcher });
      const spec = workflowSpec('wf.two', [taskNode('a', 't.value', { v: lit(1) }, { cache: null }), taskNode('b', 't.value', { v: lit(2) }, { cache: null })]);
      const runId = await env.controller.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
      await eventually(() => dispatcher.held.length === 2, 'both attempts to finish');
      let open: () => void = () => undefined;
      store.gate = new Promise<void>((resolve) => (open = resolve));
      const [resultA, resultB] = dispatcher.held;
      if (resultA === undefined || resultB === undefined) throw new Error('no results');
      const first = dispatcher.deliver(resultA); // its round blocks in save
      await new Promise((resolve) => setTimeout(resolve, 5));
      const second = dispatcher.deliver(resultB); // queued behind that round
      const closing = env.controller.close();
      open();
      await closing;
      expect(await settledWithin([first, second], 100)).toEqual([true, true]);
      await expect(first).resolves.toBeUndefined();
      await expect(second).rejects.toMatchObject({ code: 'STALE_STATE', retryable: true });
      // Nothing was lost: the run is in the store and another controller finishes it.
      const stored = await store.load(runId);
      expect(stored?.nodes['a']?.phase).toBe('succeeded');
      expect(stored?.nodes['b']?.phase).toBe('dispatched');
      const other = setup(levelTasks(), { store });
      await other.controller.recover(runId);
      expect((await other.controller.wait(runId)).run.status).toBe('succeeded');
      expect(other.dispatcher.dispatched).toEqual([`${runId}-b-1`]);
    });
  });

  test('close() while wait() is recovering a run: no unhandled rejection, the run stays recoverable', async () => {
    const store = new InMemoryRunStore();
    const clock = new FakeClock();
    const catalog = new InMemoryCacheCatalog({ clock });
    const a = setup(etlTasks(), { store, clock, catalog, dispatcher: new MapTaskDispatcher(etlTasks(), { blackHole: true }) });
    const runId = await a.controller.submit({ spec: etl, inputs: { rows: { value: [3] } }, project: 'demo', domain: 'dev' });
    await eventually(async () => (await store.load(runId))?.nodes['clean']?.phase === 'dispatched', 'clean to be dispatched');
    await a.controller.close();

    // B's transport is slow to accept the re-dispatch; B is closed meanwhile.
    const slow = new MapTaskDispatcher(etlTasks());
    let accept: () => void = () => undefined;
    const accepted = new Promise<void>((resolve) => (accept = resolve));
    const dispatch = slow.dispatch.bind(slow);
    vi.spyOn(slow, 'dispatch').mockImplementation(async (attempts) => {
      await accepted;
      return dispatch(attempts);
    });
    const b = setup(etlTasks(), { store, clock, catalog, dispatcher: slow });
    const waiting = b.controller.wait(runId); // not driven here: wait() recovers it
    await eventually(() => vi.mocked(slow.dispatch).mock.calls.length > 0, 'the re-dispatch');
    await b.controller.close();
    // A pending wait settles on close, naming the run; the run itself stays recoverable.
    await expect(waiting).rejects.toMatchObject({ code: 'STALE_STATE', retryable: true, message: expect.stringContaining(runId) });
    accept();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await slow.close();

    const c = setup(etlTasks(), { store, clock, catalog });
    await c.controller.recover(runId);
    expect((await c.controller.wait(runId)).run.outputs).toEqual({ total: 3 });
  });

  test('two controllers on one run: a result delivered to the one holding an outdated state is refused there (its save is fenced by the lease) and not lost', async () => {
    const clock = new FakeClock();
    const store = new InMemoryRunStore({ clock });
    const catalog = new InMemoryCacheCatalog({ clock });
    const tasks = new Map<string, TaskFn>([
      ['t.flaky', (_inputs, attempt) => {
        if (attempt.attempt === 1) throw new Error('flaky');
        return 'ok';
      }],
    ]);
    const spec = workflowSpec('wf.shared', [taskNode('x', 't.flaky', {}, { cache: null, retries: 1 })], { outputs: { x: ref('x') } });
    // Results wait in each transport until the test hands them to a controller (a shared queue).
    const toA = new MapTaskDispatcher(tasks, { hold: true });
    const a = setup(tasks, { store, clock, catalog, dispatcher: toA });
    const runId = await a.controller.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => toA.held.length === 1, 'attempt 1 on A');

    // A stalls past its lease (a long pause); controller B takes the run over and moves it on:
    // attempt 1 failed, attempt 2 dispatched. A has not noticed (no heartbeat since).
    clock.advance(DEFAULT_LEASE_MS);
    const toB = new MapTaskDispatcher(tasks, { hold: true });
    const b = setup(tasks, { store, clock, catalog, dispatcher: toB });
    await b.controller.recover(runId);
    await eventually(() => toB.held.length === 1, 'attempt 1 on B');
    const [failedAttempt] = toB.held;
    if (failedAttempt === undefined) throw new Error('no result');
    await toB.deliver(failedAttempt);
    await eventually(() => toB.held.length === 2, 'attempt 2 on B');
    expect((await store.load(runId))?.nodes['x']).toMatchObject({ phase: 'dispatched', attempts: 2 });

    // The queue hands attempt 2's result to A, whose last known state still says attempt 1. A's
    // save of it is fenced (B holds the lease): refused, not acknowledged, and A stops driving the
    // run. The queue hands it over again (here: to B, as a claim or A's routing would).
    const secondAttempt = toB.held[1];
    if (secondAttempt === undefined) throw new Error('no result');
    await expect(toA.deliver(secondAttempt)).rejects.toMatchObject({ retryable: true });
    expect(a.controller.ownedRuns).toBe(0);
    expect((await store.load(runId))?.nodes['x']).toMatchObject({ phase: 'dispatched', attempts: 2 });
    await toB.deliver(secondAttempt);
    await eventually(async () => (await store.load(runId))?.run.status !== 'running', 'the run to finish');
    const stored = await store.load(runId);
    expect(stored?.run).toMatchObject({ status: 'succeeded', outputs: { x: 'ok' } });
    expect(stored?.nodes['x']).toMatchObject({ phase: 'succeeded', attempts: 2 });
  });
});

