/**
 * Regression (issue 9, item 7): `wait()` on a run this controller drives, called while its attempts
 * ran (its driver idle), "recovered" the run: a full read of it, its in-flight attempts dispatched
 * again, and a full read for each duplicate result (3 reads of a two-node chain, every task body
 * run twice under an at-least-once transport). Now an idle driver is only checked against the
 * store (one read) and left alone when it is current.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type AttemptResultsHandler, type RunStore, type TaskAttempt, type TaskDispatcher } from '@memoflow/engine';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

const spec = workflowSpec('wait.chain', [taskNode('a', 'add', { v: lit(1) }, { cache: null }), taskNode('b', 'add', { v: ref('a') }, { cache: null })], { outputs: { b: ref('b') } });

/** An at-least-once transport whose worker is busy until `release()`: it runs every attempt it is handed. */
function gatedTransport() {
  let release: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (release = resolve));
  const executed: string[] = [];
  let handler: AttemptResultsHandler | undefined;
  const run = async (attempt: TaskAttempt) => {
    await opened;
    executed.push(attempt.id);
    const now = new Date();
    const output = (attempt.inputs['v'] as number) + 1;
    const [saved] = handler?.([{ attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: now, finishedAt: now, ok: true, output, outputHash: null }]) ?? [];
    await saved?.catch(() => undefined);
  };
  const dispatcher: TaskDispatcher = {
    pool: 'gated',
    dispatch: async (attempts) => {
      for (const attempt of attempts) setImmediate(() => void run(attempt));
    },
    onResults: (h) => void (handler = h),
    cancel: async () => undefined,
    close: async () => undefined,
  };
  return { dispatcher, executed, release: () => release() };
}

/** The run store with its full reads counted. */
function countingLoads(store: RunStore): { store: RunStore; loads: () => number } {
  let loads = 0;
  const counted = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop !== 'load') return value.bind(target);
      return (runId: string) => {
        loads += 1;
        return store.load(runId);
      };
    },
  });
  return { store: counted, loads: () => loads };
}

let controller: Controller | undefined;
afterEach(async () => {
  await controller?.close();
});

describe('regression: waiting on a running run repeats its attempts', () => {
  it('wait() while the tasks run reads the run once and runs each attempt once', async () => {
    const stored = new InMemoryRunStore();
    const { store, loads } = countingLoads(stored);
    const transport = gatedTransport();
    controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher: transport.dispatcher, waitPollMs: 5 });
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    for (let i = 0; i < 400 && (await stored.load(id))?.nodes['a']?.phase !== 'dispatched'; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the driver is idle: a's attempt is with the worker
    const before = loads();
    const waited = controller.wait(id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    transport.release();
    const state = await waited;
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ b: 3 });
    expect(transport.executed).toEqual([`${id}-a-1`, `${id}-b-1`]);
    expect(loads() - before).toBe(1);
  });
});
