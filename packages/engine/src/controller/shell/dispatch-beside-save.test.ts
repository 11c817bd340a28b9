/**
 * A round that must save dispatches its attempts while its save is in flight (run-driver.ts,
 * `round`), when any re-decision would dispatch the same attempts with the same inputs; a result
 * that reaches a decider before its dispatch is recorded waits for it (RESULT_EARLY); an attempt a
 * save that did not land leaves unrecorded is cancelled once the stored state shows it never runs.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { LeaseRequest, RunSaveRequest } from '../../ports/run-store.js';
import type { RunState } from '../../state/run-state.js';
import type { AttemptResult, TaskAttempt } from '../../ports/task-dispatcher.js';
import { eventually, HandOverDispatcher } from '../../testing/hand-over-dispatcher.js';
import { cacheSettings, lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { Controller } from './controller.js';

/** Holds each save and create until the test lets it go (`release`), and can run something just before a save (another writer). */
class GatedRunStore extends InMemoryRunStore {
  gated = false;
  readonly held: (() => void)[] = [];
  before: ((request: RunSaveRequest) => Promise<void>) | null = null;
  override async create(state: RunState, lease?: LeaseRequest): Promise<void> {
    if (this.gated) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.create(state, lease);
  }
  override async save(request: RunSaveRequest): Promise<boolean> {
    if (this.gated) await new Promise<void>((resolve) => this.held.push(resolve));
    const before = this.before;
    this.before = null;
    await before?.(request);
    return super.save(request);
  }
  release(): void {
    for (const resolve of this.held.splice(0)) resolve();
  }
}

function succeeded(attempt: TaskAttempt, output: number): AttemptResult {
  const now = new Date();
  return { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: now, finishedAt: now, ok: true, output, outputHash: null };
}

/** a → b → c, caching off. */
const chain = workflowSpec('wf.chain', [
  taskNode('a', 't.add', { v: lit(1) }, { cache: null }),
  taskNode('b', 't.add', { v: ref('a') }, { cache: null }),
  taskNode('c', 't.add', { v: ref('b') }, { cache: null }),
]);

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((controller) => controller.close()));
});

let runs = 0;
/** Holds each lookup until the test lets it go, while `gated`. */
class GatedCatalog extends InMemoryCacheCatalog {
  gated = false;
  readonly held: (() => void)[] = [];
  override async lookup(...args: Parameters<InMemoryCacheCatalog['lookup']>): ReturnType<InMemoryCacheCatalog['lookup']> {
    if (this.gated) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.lookup(...args);
  }
  release(): void {
    this.gated = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

function setup() {
  const catalog = new GatedCatalog();
  const dispatcher = new HandOverDispatcher();
  const store = new GatedRunStore();
  const controller = new Controller({ catalog, runStore: store, dispatcher, newRunId: () => `beside${++runs}` });
  open.push(controller);
  return { dispatcher, store, controller, catalog };
}

async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return settled;
}

describe('dispatch beside the save', () => {
  test("a chain's next attempt is dispatched while the save of the result that readied it is in flight; its result waits for that save", async () => {
    const { dispatcher, store, controller } = setup();
    const id = await controller.submit({ spec: chain, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.of('a') !== undefined, "a's dispatch");
    store.gated = true;
    const [aSaved] = dispatcher.handOver([succeeded(dispatcher.of('a') as TaskAttempt, 2)]);
    await eventually(() => dispatcher.of('b') !== undefined, "b's dispatch, before the save lands");
    expect(store.held).toHaveLength(1);
    // Not acknowledged before its save lands: a crash now must leave a's result in the transport.
    expect(await settledWithin(aSaved as Promise<void>, 20)).toBe(false);
    const stored = await store.load(id);
    expect(stored?.nodes['b']?.phase).toBe('pending'); // the store does not record b's dispatch yet
    store.gated = false;
    store.release();
    await aSaved;
    expect((await store.load(id))?.nodes['b']).toMatchObject({ phase: 'dispatched', attempts: 1 });
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('b') as TaskAttempt, 3)]));
    await eventually(() => dispatcher.of('c') !== undefined, "c's dispatch");
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('c') as TaskAttempt, 4)]));
    const state = await controller.wait(id);
    expect(state.run.status).toBe('succeeded');
    expect(dispatcher.dispatched.map((attempt) => attempt.id)).toEqual([`${id}-a-1`, `${id}-b-1`, `${id}-c-1`]);
  });

  // x (executes) and h (cached: a hit on the second run) -> c (executes, reading h's hit). Whichever
  // of x's result and h's hit comes last readies c; either way c goes out only once the hit is saved.
  const joined = workflowSpec('wf.hit-then-run', [
    taskNode('x', 't.add', { v: lit(1) }, { cache: null }),
    taskNode('h', 't.add', { v: lit(5) }, { cache: cacheSettings() }),
    taskNode('c', 't.add', { v: ref('h'), w: ref('x') }, { cache: null }),
  ]);

  async function populate(env: ReturnType<typeof setup>): Promise<void> {
    const { dispatcher, controller } = env;
    const id = await controller.submit({ spec: joined, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.of('x') !== undefined && dispatcher.of('h') !== undefined, 'x and h');
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('x') as TaskAttempt, 2), succeeded(dispatcher.of('h') as TaskAttempt, 6)]));
    await eventually(() => dispatcher.of('c') !== undefined, "c's dispatch");
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('c') as TaskAttempt, 8)]));
    expect((await controller.wait(id)).nodes['h']?.cacheStatus).toBe('POPULATED');
    dispatcher.dispatched.length = 0;
  }

  for (const last of ['the hit', "x's result"] as const) {
    test(`a round whose decision rests on a cache hit saves it before it dispatches what the hit readied (${last} readies c)`, async () => {
      const env = setup();
      const { dispatcher, store, controller, catalog } = env;
      await populate(env);
      catalog.gated = true;
      const id = await controller.submit({ spec: joined, inputs: {}, project: 'demo', domain: 'dev' });
      await eventually(() => dispatcher.of('x') !== undefined && catalog.held.length === 1, "x's dispatch and h's lookup");
      let xSaved: readonly Promise<void>[];
      if (last === 'the hit') {
        // The driver performs a round's lookups before its next round, so x's result is decided with the hit.
        store.gated = true;
        xSaved = dispatcher.handOver([succeeded(dispatcher.of('x') as TaskAttempt, 2)]);
        catalog.release(); // the hit's round readies c: it must save first
      } else {
        catalog.release(); // the hit is kept unsaved (a lookup-only round)
        await new Promise((resolve) => setTimeout(resolve, 10));
        store.gated = true;
        xSaved = dispatcher.handOver([succeeded(dispatcher.of('x') as TaskAttempt, 2)]); // readies c beside an unsaved hit
      }
      await eventually(() => store.held.length === 1, 'the save of the round that readies c');
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(dispatcher.of('c')).toBeUndefined();
      store.gated = false;
      store.release();
      await Promise.all(xSaved);
      await eventually(() => dispatcher.of('c') !== undefined, "c's dispatch, once the hit is saved");
      expect((await store.load(id))?.nodes['h']).toMatchObject({ phase: 'succeeded', cacheStatus: 'HIT' });
      await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('c') as TaskAttempt, 8)]));
      const state = await controller.wait(id);
      expect(state.run.status).toBe('succeeded');
      expect(dispatcher.of('h')).toBeUndefined();
    });
  }

  test('a round applying a lookup miss saves before it dispatches (a lookup answer is not delivered again)', async () => {
    const { dispatcher, store, controller, catalog } = setup();
    // x (executes) makes the first round create the run; m (cached, on its own) misses after that.
    const spec = workflowSpec('wf.miss-then-run', [taskNode('x', 't.add', { v: lit(1) }, { cache: null }), taskNode('m', 't.add', { v: lit(7) }, { cache: cacheSettings({ version: 'miss' }) })]);
    catalog.gated = true;
    const id = await controller.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.of('x') !== undefined && catalog.held.length === 1, "x's dispatch and m's lookup");
    store.gated = true;
    catalog.release(); // a miss: m executes, once that is saved
    await eventually(() => store.held.length === 1, 'the save of the round applying the miss');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(dispatcher.of('m')).toBeUndefined();
    store.gated = false;
    store.release();
    await eventually(() => dispatcher.of('m') !== undefined, "m's dispatch, once the miss is saved");
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('x') as TaskAttempt, 2), succeeded(dispatcher.of('m') as TaskAttempt, 8)]));
    expect((await controller.wait(id)).run.status).toBe('succeeded');
  });

  test('an attempt dispatched beside a save that lost the race to a cancel is cancelled too', async () => {
    const { dispatcher, store, controller } = setup();
    const id = await controller.submit({ spec: chain, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.of('a') !== undefined, "a's dispatch");
    // A cancel is recorded on the run (its version bumped) between the round's decision and its save.
    store.before = async (request) => {
      await store.requestCancel(request.run.id, { name: 'RunCancelled', code: 'RUN_CANCELLED', message: 'cancelled by the test', retryable: false }, new Date());
    };
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('a') as TaskAttempt, 2)]));
    const state = await controller.wait(id);
    expect(state.run.status).toBe('cancelled');
    const b = dispatcher.of('b');
    expect(b?.id).toBe(`${id}-b-1`); // it went out beside the save that lost
    expect(state.nodes['b']).toMatchObject({ phase: 'cancelled', attempts: 0 });
    await eventually(() => dispatcher.cancelled.some((attempt) => attempt.id === b?.id), "b's cancel");
    expect(dispatcher.cancelled.filter((attempt) => attempt.id === b?.id)).toHaveLength(1);
  });

  test('a result that comes before its dispatch is recorded is refused (RESULT_EARLY, retryable), then taken once its dispatch is', async () => {
    const { dispatcher, controller } = setup();
    const id = await controller.submit({ spec: chain, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.of('a') !== undefined, "a's dispatch");
    // Another controller dispatched b beside a save that never landed, and b finished: its result comes first.
    const b: TaskAttempt = { ...(dispatcher.of('a') as TaskAttempt), id: `${id}-b-1`, nodeId: 'b', inputs: { v: 2 } };
    const [early] = dispatcher.handOver([succeeded(b, 3)]);
    await expect(early).rejects.toMatchObject({ code: 'RESULT_EARLY', retryable: true });
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('a') as TaskAttempt, 2)]));
    await eventually(() => dispatcher.of('b') !== undefined, "b's dispatch");
    expect(dispatcher.of('b')?.id).toBe(b.id);
    // Handed over again by the transport: now current.
    await Promise.all(dispatcher.handOver([succeeded(b, 3)]));
    await eventually(() => dispatcher.of('c') !== undefined, "c's dispatch");
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('c') as TaskAttempt, 4)]));
    const state = await controller.wait(id);
    expect(state.run.status).toBe('succeeded');
    expect(state.nodes['b']).toMatchObject({ phase: 'succeeded', attempts: 1, output: { value: 3 } });
  });

  test('a batch holding a result and, before it, the result of the attempt it leads to applies both in one round', async () => {
    const { dispatcher, controller } = setup();
    const id = await controller.submit({ spec: chain, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.of('a') !== undefined, "a's dispatch");
    const b: TaskAttempt = { ...(dispatcher.of('a') as TaskAttempt), id: `${id}-b-1`, nodeId: 'b', inputs: { v: 2 } };
    const settlements = dispatcher.handOver([succeeded(b, 3), succeeded(dispatcher.of('a') as TaskAttempt, 2)]);
    await Promise.all(settlements);
    await eventually(() => dispatcher.of('c') !== undefined, "c's dispatch");
    await Promise.all(dispatcher.handOver([succeeded(dispatcher.of('c') as TaskAttempt, 4)]));
    const state = await controller.wait(id);
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({});
    expect(state.nodes['c']).toMatchObject({ phase: 'succeeded', output: { value: 4 } });
  });
});
