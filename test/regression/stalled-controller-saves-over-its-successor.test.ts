/**
 * Regression (found by the controllers-under-chaos property test): a controller stalled past its
 * lease (a long GC pause, a stopped process, a partition) came back and landed the save it had
 * been making: the version still matched, because its successor had only read the run so far. The
 * store then held a decision whose effects nobody performed: the stalled controller noticed it had
 * lost the run and stopped driving it, and the successor had recovered the state before that save.
 * A node it left `writing` waited forever for a write confirmation.
 *
 * Now a save names its controller and is fenced by the run's lease (RunSaveRequest.owner): while
 * another controller holds a live lease, it writes nothing and fails with RUN_LEASED.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type Clock, type RunSaveRequest, type RunStore, type TaskAttempt } from '@memoflow/engine';
import { SharedTransport } from '../../packages/engine/src/testing/shared-transport.js';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

class FakeClock implements Clock {
  current = Date.parse('2030-06-01T00:00:00.000Z');
  now(): Date {
    return new Date(this.current);
  }
}

const LEASE_MS = 5_000;
const spec = workflowSpec('stall.chain', [taskNode('a', 'times', { x: lit(1) }, { cache: null }), taskNode('b', 'times', { x: ref('a') }, { cache: null })], { outputs: { b: ref('b') } });
const run = (attempt: TaskAttempt) => (attempt.inputs['x'] as number) * 10;

const controllers: Controller[] = [];
afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
});

/** The shared store as one controller sees it: its saves can be held (the controller stalls mid-save) and are recorded with how they ended. */
function stallable(store: InMemoryRunStore) {
  const held: (() => void)[] = [];
  const outcomes: string[] = [];
  let stalled = false;
  const view = new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'save') {
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      }
      return async (request: RunSaveRequest) => {
        if (stalled) await new Promise<void>((resolve) => held.push(resolve));
        try {
          const saved = await target.save(request);
          outcomes.push(saved ? 'saved' : 'lost race');
          return saved;
        } catch (error) {
          outcomes.push((error as { code?: string }).code ?? 'error');
          throw error;
        }
      };
    },
  }) as RunStore;
  return {
    view,
    outcomes,
    stall: () => (stalled = true),
    resume: () => {
      stalled = false;
      for (const resolve of held.splice(0)) resolve();
    },
    holding: () => held.length,
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a controller stalled past its lease', () => {
  test('cannot land its save over the run its successor took over; the successor finishes the run', async () => {
    const clock = new FakeClock();
    const store = new InMemoryRunStore({ clock });
    const catalog = new InMemoryCacheCatalog({ clock });
    const transport = new SharedTransport(run);
    const aStore = stallable(store);
    const aDispatcher = transport.dispatcher();
    const a = new Controller({ catalog, runStore: aStore.view, dispatcher: aDispatcher, clock, leaseMs: LEASE_MS, waitPollMs: 10 });
    controllers.push(a);
    transport.lose.add('a'); // a's job is lost: A's result round is driven by hand below
    const id = await a.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('a to be dispatched', async () => (await store.load(id))?.nodes['a']?.phase === 'dispatched');

    // A applies a's result, and stalls in the middle of saving it.
    aStore.stall();
    const result = { attemptId: `${id}-a-1`, runId: id, nodeId: 'a', attempt: 1, startedAt: new Date(), finishedAt: new Date(), ok: true as const, output: 10, outputHash: null };
    const deliverToA = (a as unknown as { deliverResults(rs: unknown[]): Promise<void>[] }).deliverResults([result])[0] as Promise<void>;
    deliverToA.catch(() => undefined);
    await until('A to be saving', () => aStore.holding() === 1);

    // Its lease runs out; B takes the run over from the store (a still dispatched) and re-dispatches a.
    clock.current += LEASE_MS;
    const b = new Controller({ catalog, runStore: store, dispatcher: transport.dispatcher(), clock, leaseMs: LEASE_MS, waitPollMs: 10 });
    controllers.push(b);
    expect(await b.recoverUnowned()).toEqual([id]);
    const taken = await store.load(id);

    // A comes back: its save is refused, and the store keeps what B holds.
    aStore.resume();
    await until("A's save to end", () => aStore.outcomes.length > 0);
    expect(aStore.outcomes).toEqual(['RUN_LEASED']);
    expect(taken?.nodes['a']?.phase).toBe('dispatched');

    await a.close();
    await aDispatcher.close();
    expect((await b.wait(id)).run.outputs).toEqual({ b: 100 });
  });
});
