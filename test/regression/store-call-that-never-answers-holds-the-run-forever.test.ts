/**
 * Regression (found by the controllers-under-chaos property test once its store could hang): a run
 * store call that never answered (a query on a connection that died without a word: the kernel's
 * keepalive gives up only after minutes) held its run's round forever. The controller's heartbeat,
 * on another call, kept the run's lease, so no other controller took it over; the run never ended,
 * and `Controller.close()` waited for the round. Now every store and catalog call has a deadline
 * (`callTimeoutMs`; a create's grows with its run): one that does not answer is given up on
 * (CALL_TIMEOUT, its outcome unknown, as for a lost answer) and tried again. A review then found
 * the first version's gaps: a create (exempt) that committed and never answered still held its
 * run; a subscription to reservation releases that never answered hung every serialized node; and
 * a call merely slower than the deadline never got through (each try is given up on and goes on,
 * the next queues behind it): a deadline hit now doubles for that method's next calls.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { within } from '../fuzz/fuzz-settings.js';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, MemoflowError, type RunSaveRequest, type TaskDispatcher } from '@memoflow/engine';
import { SharedTransport } from '../../packages/engine/src/testing/shared-transport.js';
import { lit, ref, taskNode, times10OrSum, wideSum, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

const never = <T>() => new Promise<T>(() => undefined);

const controllers: Controller[] = [];
afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
});


/** A store whose `hang` next saves never answer (half of them after taking effect, as a commit whose answer was lost). */
function hangingStore(hang: number): { store: InMemoryRunStore; hung: () => number } {
  const store = new InMemoryRunStore();
  const save = store.save.bind(store);
  let left = hang;
  let hung = 0;
  store.save = async (request: RunSaveRequest) => {
    if (left <= 0) return save(request);
    left -= 1;
    hung += 1;
    if (hung % 2 === 0) await save(request);
    return new Promise<boolean>(() => undefined);
  };
  return { store, hung: () => hung };
}

describe('a store call that never answers', () => {
  test('the run still ends, with what its DAG computes, and the controller closes', async () => {
    const { store, hung } = hangingStore(2);
    const transport = new SharedTransport(times10OrSum);
    const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher: transport.dispatcher(), waitPollMs: 10, leaseMs: 300, callTimeoutMs: 50 });
    controllers.push(controller);
    const id = await controller.submit({ spec: wideSum(), inputs: {}, project: 'p', domain: 'd' });
    const state = await within(controller.wait(id), 5_000, 'the run to end');
    expect(hung()).toBe(2);
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ total: 30 });
    await within(controller.close(), 2_000, 'close');
  });

  test('a call given up on rejects with CALL_TIMEOUT (retryable), naming the call; a bad callTimeoutMs is refused', async () => {
    const store = new InMemoryRunStore();
    store.load = () => new Promise(() => undefined);
    const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher: new SharedTransport(times10OrSum).dispatcher(), callTimeoutMs: 30 });
    controllers.push(controller);
    const error: unknown = await controller.recover('r-missing').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemoflowError);
    expect(error).toMatchObject({ code: 'CALL_TIMEOUT', retryable: true, message: expect.stringContaining('runStore.load did not answer within 30 ms') });
    expect(() => new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher: new SharedTransport(times10OrSum).dispatcher(), callTimeoutMs: 0 })).toThrow(/callTimeoutMs must be a positive number/);
  });

  test('a create that committed and never answered: the submit goes on, the run ends, the controller closes', async () => {
    const store = new InMemoryRunStore();
    const create = store.create.bind(store);
    let hung = 0;
    store.create = async (state, lease) => {
      if (hung > 0) return create(state, lease);
      hung += 1;
      await create(state, lease); // took effect, and the answer never comes
      return never();
    };
    const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher: new SharedTransport(times10OrSum).dispatcher(), leaseMs: 150, waitPollMs: 10, callTimeoutMs: 50 });
    controllers.push(controller);
    const id = await within(controller.submit({ spec: wideSum(), inputs: {}, project: 'p', domain: 'd' }), 2_000, 'the submit');
    expect((await within(controller.wait(id), 3_000, 'the run to end')).run.outputs).toEqual({ total: 30 });
    expect((await store.list()).map((r) => r.id)).toEqual([id]); // created once
    await within(controller.close(), 2_000, 'close');
  });

  test('a subscription to reservation releases that never answers: a serialized node runs (its waiters poll), and the controller closes', async () => {
    const catalog = new InMemoryCacheCatalog();
    catalog.watchReleases = () => never();
    const spec = workflowSpec('serialized', [taskNode('a', 'times', { x: lit(1) }, { cache: { serialize: true } })], { outputs: { out: ref('a') } });
    const controller = new Controller({ catalog, runStore: new InMemoryRunStore(), dispatcher: new SharedTransport(times10OrSum).dispatcher(), waitPollMs: 10, callTimeoutMs: 50 });
    controllers.push(controller);
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    expect((await within(controller.wait(id), 3_000, 'the run to end')).run.outputs).toEqual({ out: 10 });
    await within(controller.close(), 2_000, 'close');
  });

  test('a load slower than the deadline, on a store that runs one call at a time: the run is still taken over and ends', async () => {
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const swallow: TaskDispatcher = { pool: 'queue:shared', dispatch: async () => undefined, cancel: async () => undefined, onResults: () => undefined, close: async () => undefined };
    const first = new Controller({ catalog, runStore: store, dispatcher: swallow, leaseMs: 150, newRunId: () => 'big' });
    await first.submit({ spec: wideSum(), inputs: {}, project: 'p', domain: 'd' });
    await first.close();
    // Each load takes 80 ms, one after the other (PGlite's one connection); the deadline is 50 ms.
    let queue = Promise.resolve();
    const load = store.load.bind(store);
    store.load = (runId) => {
      const answer = queue.then(async () => {
        await new Promise((resolve) => setTimeout(resolve, 80));
        return load(runId);
      });
      queue = answer.then(() => undefined);
      return answer;
    };
    const next = new Controller({ catalog, runStore: store, dispatcher: new SharedTransport(times10OrSum).dispatcher(), leaseMs: 150, waitPollMs: 10, callTimeoutMs: 50 });
    controllers.push(next);
    next.startSweeper({ intervalMs: 40 });
    for (let i = 0; i < 300 && (await store.status('big')) === 'running'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await store.status('big')).toBe('succeeded');
  });
});
