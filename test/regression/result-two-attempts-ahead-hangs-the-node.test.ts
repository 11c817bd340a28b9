// Regression (found by review of dispatch beside the save): a node with retries can be two attempts
// ahead of the stored state once deciders whose saves never landed chained retries (a-2 sent beside
// a save holding a-1's failure, a-3 beside one holding a-1's and a-2's). a-3's result, arriving
// alone or first, was acknowledged as stale (only one attempt ahead counted as early), and the
// redelivered a-1 and a-2 then dispatched a-3 again, a no-op (its job finished): the node waited
// forever. Now any attempt ahead within the node's retries is early; and an attempt goes out beside
// a save only one step ahead of the store (run-driver.ts, mayGoAhead), so the chain cannot form.
import { describe, expect, test } from 'vitest';
import { lit, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';
import { decide } from '../../packages/engine/src/controller/core/decide.js';
import { failedResult, okResult, runState, withNode } from '../../packages/engine/src/controller/handlers/testing/run-fixtures.js';

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
