import { describe, expect, test } from 'vitest';
import { dynamicNode, ref, subworkflowNode, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { runState, withChild, withNode } from '../handlers/testing/run-fixtures.js';
import { entryDurationMs } from './compute.js';

/** A run whose node `d` is an expanded container (a dynamic node, or a sub-workflow) of children x and y. */
function container(kind: 'dynamic' | 'subworkflow', own: Partial<NodeExecution>, x: Partial<NodeExecution>, y: Partial<NodeExecution>): RunState {
  const sub = workflowSpec('sub', [taskNode('x', 't.x', { v: wfInput('v') }), taskNode('y', 't.y', { v: ref('x') })], { inputs: { v: true }, outputs: { y: ref('y') } });
  const d = kind === 'dynamic' ? dynamicNode('d', 't.dyn', { v: wfInput('v') }) : subworkflowNode('d', sub, { v: wfInput('v') });
  const state = runState(workflowSpec('wf', [d], { inputs: { v: true }, outputs: { out: ref('d') } }), { v: { value: 1 } });
  withNode(state, 'd', { phase: 'writing', subWorkflow: sub, attempts: kind === 'dynamic' ? 1 : 0, ...own });
  withChild(state, 'd.x', 't.x', { phase: 'succeeded', ...x });
  withChild(state, 'd.y', 't.y', { phase: 'succeeded', ...y });
  return state;
}

describe('what an entry records as its compute', () => {
  test("a dynamic node's future: its compile; its output: the compile plus each child's (a hit child counts what it saved)", () => {
    const state = container('dynamic', { computeMs: 800 }, { computeMs: 300 }, { cacheStatus: 'HIT', savedMs: 200 });
    expect(entryDurationMs(state, 'd', 'future')).toBe(800);
    expect(entryDurationMs(state, 'd', 'output')).toBe(1300);
  });

  test('a sub-workflow runs nothing of its own: its output is its children\'s sum', () => {
    expect(entryDurationMs(container('subworkflow', {}, { computeMs: 5 }, { computeMs: 7 }), 'd', 'output')).toBe(12);
  });

  test("a FUTURE_HIT compiled nothing: its own part is the compile its future recorded, unknown if that was", () => {
    expect(entryDurationMs(container('dynamic', { cacheStatus: 'FUTURE_HIT', savedMs: 50, attempts: 0 }, { computeMs: 1 }, { computeMs: 2 }), 'd', 'output')).toBe(53);
    expect(entryDurationMs(container('dynamic', { cacheStatus: 'FUTURE_HIT', savedMs: null, attempts: 0 }, { computeMs: 1 }, { computeMs: 2 }), 'd', 'output')).toBeNull();
  });

  test('any unknown part (a hit on an entry without a duration, a recovered child) makes the sum unknown, not smaller', () => {
    expect(entryDurationMs(container('dynamic', { computeMs: 800 }, { computeMs: 300 }, { cacheStatus: 'HIT', savedMs: null }), 'd', 'output')).toBeNull();
    expect(entryDurationMs(container('dynamic', { computeMs: 800 }, { cacheStatus: 'RECOVERED' }, { computeMs: 1 }), 'd', 'output')).toBeNull();
    expect(entryDurationMs(container('dynamic', {}, { computeMs: 1 }, { computeMs: 1 }), 'd', 'output')).toBeNull();
  });

  test('a huge sum stays a safe integer; an unknown node has no duration', () => {
    const big = Number.MAX_SAFE_INTEGER - 1;
    expect(entryDurationMs(container('dynamic', { computeMs: big }, { computeMs: big }, { computeMs: big }), 'd', 'output')).toBe(Number.MAX_SAFE_INTEGER);
    expect(entryDurationMs(container('dynamic', {}, {}, {}), 'nope', 'output')).toBeNull();
  });
});
