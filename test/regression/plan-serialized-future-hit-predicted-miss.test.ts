import { afterEach, describe, expect, it } from 'vitest';
import type { Json, WorkflowPlan } from '@memoflow/engine';
import { PlanWorld } from '../../packages/engine/src/plan/testing/plan-world.js';
import { arr, dynamicNode, lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

/**
 * A serialized dynamic node whose output entry is gone but whose future is stored is MISS while it
 * takes its key's reservation, then replays the future: the run reports FUTURE_HIT. The planner kept
 * the first status it saw, so `mf.plan` predicted MISS ("its body runs") and planned the children
 * anyway. Found by running the plan property with every cached node serialized.
 */
const tasks = {
  c: (inputs: { [name: string]: Json }) => ({ from: 'c', inputs }),
  fan: (inputs: { [name: string]: Json }) =>
    workflowSpec('fan.body', (inputs['xs'] as number[]).map((x, i) => taskNode(`c${i}`, 'c', { x: lit(x) })), { outputs: { result: arr(...(inputs['xs'] as number[]).map((_, i) => ref(`c${i}`))) } }) as unknown as Json,
};
const predictions = (plan: WorkflowPlan) => Object.fromEntries(plan.nodes.map((n) => [n.node, n.prediction]));

let world: PlanWorld;
afterEach(async () => world.close());

describe('plan: a serialized dynamic node with only its future stored', () => {
  it('is predicted FUTURE_HIT, as the run reports it', async () => {
    world = new PlanWorld(tasks);
    const spec = workflowSpec('r.serialized-dynamic', [dynamicNode('d', 'fan', { xs: lit([1, 2]) }, { cache: { serialize: true } })]);
    await world.run(spec, {});
    await world.catalog.evict({ kind: 'output', task: 'fan' });
    const plan = await world.plan(spec, {});
    const run = await world.run(spec, {});
    expect(run.nodes['d']?.cacheStatus).toBe('FUTURE_HIT');
    expect(predictions(plan)).toEqual({ d: 'FUTURE_HIT', 'd.c0': 'HIT', 'd.c1': 'HIT' });
    expect(run.nodes['d.c0']?.cacheStatus).toBe('HIT');
  });
});
