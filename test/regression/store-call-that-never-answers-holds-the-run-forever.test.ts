/**
 * Regression (found by the controllers-under-chaos property test once its store could hang): a run
 * store call that never answered (a query on a connection that died without a word: the kernel's
 * keepalive gives up only after minutes) held its run's round forever. The controller's heartbeat,
 * on another call, kept the run's lease, so no other controller took it over; the run never ended,
 * and `Controller.close()` waited for the round. Now every store and catalog call but a create has
 * a deadline (`callTimeoutMs`): one that does not answer is given up on (CALL_TIMEOUT, its outcome
 * unknown, as for a lost answer) and tried again.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, MemoflowError, type RunSaveRequest } from '@memoflow/engine';
import { SharedTransport } from '../../packages/engine/src/testing/shared-transport.js';
import { times10OrSum, wideSum } from '../../packages/engine/src/testing/spec-builders.js';

const controllers: Controller[] = [];
afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
});

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);
}

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
    const state = await within(5_000, 'the run to end', controller.wait(id));
    expect(hung()).toBe(2);
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ total: 30 });
    await within(2_000, 'close', controller.close());
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
});
