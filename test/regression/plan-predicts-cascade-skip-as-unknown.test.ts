import { afterEach, describe, expect, it } from 'vitest';
import type { Json, NodeValue, WorkflowPlan } from '@memoflow/engine';
import { PlanWorld } from '../../packages/engine/src/plan/testing/plan-world.js';
import { lit, ref, taskNode, wfInput, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

/**
 * The early-cutoff report makes every node the cascade reruns ask for a shadow lookup of its own
 * key. The planner answered those like real lookups: a shadow key computed from an upstream that
 * runs (a stand-in) marked the node UNKNOWN, so `mf.plan` predicted UNKNOWN for every
 * `SKIPPED(upstream-reran)` node the run then gets; and a shadow key that is known (the rerun input
 * is ignored) was looked up, one key more than the plan's levels need.
 */
const tasks = {
  a: (inputs: { [name: string]: Json }) => ({ from: 'a', inputs }),
  b: (inputs: { [name: string]: Json }) => ({ from: 'b', inputs }),
};
const value = (v: Json): NodeValue => ({ value: v });
const predictions = (plan: WorkflowPlan) => Object.fromEntries(plan.nodes.map((n) => [n.node, n.prediction === 'SKIPPED' ? `SKIPPED(${n.skipReason ?? ''})` : n.prediction]));

let world: PlanWorld;
afterEach(async () => world.close());

describe('plan: a node the cascade reruns', () => {
  it('is predicted SKIPPED(upstream-reran), as the run gets it', async () => {
    world = new PlanWorld(tasks);
    const spec = workflowSpec('r.chain', [taskNode('a', 'a', { x: wfInput('x') }), taskNode('b', 'b', { v: ref('a') })], { inputs: { x: true } });
    const plan = await world.plan(spec, { x: value(1) });
    expect(predictions(plan)).toEqual({ a: 'MISS', b: 'SKIPPED(upstream-reran)' });
    const run = await world.run(spec, { x: value(1) });
    expect(run.nodes['b']?.cacheStatus).toBe('SKIPPED');
  });

  it('whose key ignores the rerun input: SKIPPED, and no lookup beyond the first level', async () => {
    world = new PlanWorld(tasks);
    const spec = workflowSpec('r.ignored', [taskNode('a', 'a', { x: wfInput('x') }), taskNode('b', 'b', { v: ref('a'), k: lit(1) }, { cache: { ignoreInputs: ['v'] } })], { inputs: { x: true } });
    await world.run(spec, { x: value(1) });
    const plan = await world.plan(spec, { x: value(2) });
    expect(predictions(plan)).toEqual({ a: 'MISS', b: 'SKIPPED(upstream-reran)' });
    expect(plan.lookups).toEqual({ batches: 1, queries: 1, keys: 1 });
  });
});
