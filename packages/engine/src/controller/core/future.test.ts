import { describe, expect, test } from 'vitest';
import type { Json } from '../../json.js';
import { validateSpec } from '../../spec/validate-spec.js';
import type { NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import { arr, lit, ref, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import { DYNAMIC_RESULT } from './expand.js';
import { compactFuture, parseFuture } from './future.js';

function fanOut(n: number, tweak: (node: NodeSpec, i: number) => NodeSpec = (node) => node): WorkflowSpec {
  const nodes = Array.from({ length: n }, (_, i) => tweak(taskNode(i === 0 ? 'work' : `work-${i + 1}`, 't.work', { rows: wfInput('rows'), i: lit(i) }, { inputSchemas: { rows: { type: 'array' }, i: { type: 'integer' } } }), i));
  return { ...workflowSpec('t.dyn', [], { inputs: { rows: { type: 'array' } }, outputs: { [DYNAMIC_RESULT]: arr(...nodes.map((node) => ref(node.id))) } }), nodes, pinnedInputs: { rows: null } };
}

describe('a future as the catalog stores it', () => {
  test("stores each task's shared node fields once and reads back the same sub-workflow", () => {
    const sub = validateSpec(fanOut(100));
    const stored = compactFuture(sub);
    expect(parseFuture(JSON.parse(JSON.stringify(stored)) as Json)).toEqual(sub);
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(sub).length / 2.5);
  });

  test('a node whose settings differ from its task\'s first (an override) keeps them', () => {
    const sub = validateSpec(fanOut(3, (node, i) => (i === 2 ? { ...node, retries: 4, cache: null } : node)));
    expect(parseFuture(compactFuture(sub))).toEqual(sub);
  });

  test('nodes of one task with different fields (a malformed mix of kinds) are stored in full', () => {
    const sub = fanOut(2, (node, i) => (i === 1 ? ({ ...node, kind: 'subworkflow', workflow: workflowSpec('w', []) }) : node));
    expect(parseFuture(compactFuture(sub))).toEqual(validateSpec(sub));
  });

  test('a future stored before (nodes in full, literals, no inputs) is read as it is', () => {
    const old = workflowSpec('t.dyn', [taskNode('work', 't.work', { rows: lit([1, 2]) })], { outputs: { [DYNAMIC_RESULT]: ref('work') } });
    expect(parseFuture(old as unknown as Json)).toEqual(validateSpec(old));
  });

  test('a damaged stored future is a miss, not a crash', () => {
    const stored = compactFuture(validateSpec(fanOut(2))) as { [field: string]: Json };
    expect(parseFuture({ ...stored, sharedNodeFields: 5 })).toBeNull();
    expect(parseFuture({ ...stored, sharedNodeFields: {} })).toBeNull();
    expect(parseFuture({ ...stored, nodes: [7] })).toBeNull();
  });
});
