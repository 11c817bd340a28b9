/**
 * Attempts no stored state records (dispatched beside a save that never landed: run-driver.ts
 * `round`) and their results, when the controller that sent them went away: results more than one
 * attempt ahead are kept (decide.ts `earlyResult`), and a cancel read from the store stops the
 * attempts by the ids they would have (core/cancel.ts `cancelUnrecorded`). Found in review.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { RunStore } from '../../ports/run-store.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import { eventually, HandOverDispatcher } from '../../testing/hand-over-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { decide } from '../core/decide.js';
import { failedResult, okResult, runState, withNode } from '../handlers/testing/run-fixtures.js';
import { Controller } from './controller.js';

describe('early results more than one attempt ahead', () => {
  // A node with retries. The store records attempt 1 (dispatched). Deciders whose saves never landed
  // dispatched attempt 2 (beside a save: a-1's failure) and then attempt 3 (beside a save holding
  // a-1's and a-2's failures, a-2 applied as an "early result of this round"). All three results
  // are in the transport, unacknowledged.
  const spec = workflowSpec('wf.retry', [taskNode('a', 't.flaky', { v: lit(1) }, { cache: null, retries: 3 })]);
  function stored() {
    const state = runState(spec);
    withNode(state, 'a', { phase: 'dispatched', attempts: 1, inputs: { v: { value: 1 } }, startedAt: state.run.createdAt, cacheStatus: 'DISABLED' });
    return state;
  }
  const at = (state: ReturnType<typeof stored>, attempt: number) => ({ ...state, nodes: { ...state.nodes, a: { ...state.nodes['a']!, attempts: attempt } } });

  test('a batch [a-3 ok, a-1 failed, a-2 failed] applies a-3 (the batch itself dispatches attempt 3)', () => {
    const state = stored();
    const a1 = failedResult(state, 'a');
    const a2 = failedResult(at(state, 2), 'a');
    const a3 = okResult(at(state, 3), 'a', 42);
    const decision = decide(state, [a3, a1, a2].map((result) => ({ type: 'attempt:finished' as const, result })), new Date());
    // Were a-3 dropped as stale, the shell would acknowledge it while the same decision dispatches
    // attempt 3, whose re-dispatch is a no-op (its job finished): node a would wait forever.
    const node = decision.state.nodes['a']!;
    const appliedOrKept = node.phase === 'succeeded' || decision.early.includes(a3.attemptId);
    expect({ phase: node.phase, attempts: node.attempts, early: decision.early }).toMatchObject({ attempts: 3 });
    expect(appliedOrKept).toBe(true);
  });

  test('a-3 arriving alone (before the redelivered a-1 and a-2) is kept, not acknowledged as stale', () => {
    const state = stored();
    const a3 = okResult(at(state, 3), 'a', 42);
    const decision = decide(state, [{ type: 'attempt:finished', result: a3 }], new Date());
    // Not early would mean: the driver resolves its promise, the transport acknowledges and deletes it.
    expect(decision.early).toContain(a3.attemptId);
  });
});

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
