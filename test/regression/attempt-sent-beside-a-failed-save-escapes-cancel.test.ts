// Regression (found by review of dispatch beside the save): an attempt sent beside a save that never
// landed lived only in the memory of the controller that sent it. Once that controller went away
// (crash, kill, lease lost), a cancel taken by another controller stopped only the attempts the
// store recorded as dispatched, and the unrecorded one ran on. Now a cancel read from the store
// also cancels, by the ids they would have, the attempts that may have gone out unrecorded
// (core/cancel.ts, cancelUnrecorded).
import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../packages/engine/src/memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../packages/engine/src/memory/in-memory-run-store.js';
import type { RunStore } from '../../packages/engine/src/ports/run-store.js';
import type { TaskAttempt } from '../../packages/engine/src/ports/task-dispatcher.js';
import { eventually, HandOverDispatcher } from '../../packages/engine/src/testing/hand-over-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';
import { Controller } from '../../packages/engine/src/controller/shell/controller.js';

/** One store seen by two controllers; `failSaves` makes only this view's saves throw (a controller cut off from Postgres). */
function viewOf(base: InMemoryRunStore): { store: RunStore; failSaves: (on: boolean) => void } {
  let failing = false;
  const store = new Proxy(base, {
    get(target, prop) {
      if (prop === 'save' && failing) return () => Promise.reject(new Error('Connection terminated unexpectedly'));
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as RunStore;
  return { store, failSaves: (on) => (failing = on) };
}

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((controller) => controller.close()));
});

describe('attempts sent beside a save that never landed, by a controller that went away', () => {
  test('an attempt sent beside a save that never landed is stopped when the run is cancelled after its controller went away', async () => {
    const chain = workflowSpec('wf.chain', [
      taskNode('a', 't.add', { v: lit(1) }, { cache: null }),
      taskNode('b', 't.add', { v: ref('a') }, { cache: null }),
    ]);
    const base = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const viewA = viewOf(base);
    const dispatcherA = new HandOverDispatcher();
    const controllerA = new Controller({ catalog, runStore: viewA.store, dispatcher: dispatcherA, newRunId: () => 'orphan-run' });
    const id = await controllerA.submit({ spec: chain, inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcherA.of('a') !== undefined, "a's dispatch");
    const a = dispatcherA.of('a') as TaskAttempt;

    // A's database connection drops: a's result is decided, b goes out beside the save, the save throws.
    viewA.failSaves(true);
    const now = new Date();
    const [aSettled] = dispatcherA.handOver([{ attemptId: a.id, runId: id, nodeId: 'a', attempt: 1, startedAt: now, finishedAt: now, ok: true, output: 2, outputHash: null }]);
    void aSettled?.catch(() => undefined);
    await eventually(() => dispatcherA.of('b') !== undefined, "b's dispatch beside the failing save");
    // A goes away (stands in for a crash, an OOM kill, or the driver closed on run:lease-lost).
    await controllerA.close();

    // The user cancels; another controller takes the run over to cancel it.
    const dispatcherB = new HandOverDispatcher();
    const controllerB = new Controller({ catalog, runStore: base, dispatcher: dispatcherB, newRunId: () => 'unused' });
    open.push(controllerB);
    await controllerB.cancel(id);
    const state = await controllerB.wait(id);
    expect(state.run.status).toBe('cancelled');
    expect(state.nodes['b']).toMatchObject({ phase: 'cancelled', attempts: 0 }); // the store never recorded b-1
    await new Promise((resolve) => setTimeout(resolve, 50));
    const b = dispatcherA.of('b') as TaskAttempt;
    const stopped = [...dispatcherA.cancelled, ...dispatcherB.cancelled].map((attempt) => attempt.id);
    // B's store records only a-1 as dispatched; b-1 is cancelled by the id it would have.
    expect(stopped).toContain(b.id);
  });
});
