import { afterEach, describe, expect, it } from 'vitest';
import type { Json, RunState, WorkflowPlan } from '@memoflow/engine';
import { PlanWorld } from '../../packages/engine/src/plan/testing/plan-world.js';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

/**
 * Two calls of one serialized task with the same inputs are looked up in the run's first round,
 * so the planner took both lookups to come before any write and predicted both MISS (and what
 * reads the second, SKIPPED). But a serialized node looks up again once it holds its reservation:
 * the second call waits for the first, then HITs its entry, and what reads it is looked up. Which
 * of the two runs depends on who reserves first, so the plan now says UNKNOWN for both.
 */
const tasks = {
  a: (inputs: { [name: string]: Json }) => ({ from: 'a', inputs }),
  b: (inputs: { [name: string]: Json }) => ({ from: 'b', inputs }),
};
const predictions = (plan: WorkflowPlan) => Object.fromEntries(plan.nodes.map((n) => [n.node, n.prediction]));
const statuses = (state: RunState) => Object.fromEntries(Object.values(state.nodes).map((n) => [n.nodeId, n.cacheStatus]));

let world: PlanWorld;
afterEach(async () => world.close());

describe('plan: two serialized calls with one key', () => {
  it('predicts no status the run does not get', async () => {
    world = new PlanWorld(tasks);
    const serialized = { cache: { serialize: true } };
    const spec = workflowSpec('r.serialized', [taskNode('a1', 'a', { x: lit(1) }, serialized), taskNode('a2', 'a', { x: lit(1) }, serialized), taskNode('r1', 'b', { v: ref('a1') }), taskNode('r2', 'b', { v: ref('a2') })]);
    const plan = await world.plan(spec, {});
    const run = statuses(await world.run(spec, {}));
    expect(Object.values(run).sort()).toEqual(['HIT', 'POPULATED', 'POPULATED', 'SKIPPED']);
    const asRun = (p: string) => (p === 'MISS' ? 'POPULATED' : p);
    for (const [node, prediction] of Object.entries(predictions(plan))) if (prediction !== 'UNKNOWN') expect(run[node], node).toBe(asRun(prediction));
    expect(predictions(plan)).toEqual({ a1: 'UNKNOWN', a2: 'UNKNOWN', r1: 'UNKNOWN', r2: 'UNKNOWN' });
  });
});
