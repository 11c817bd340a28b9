/**
 * Regression (found by review): validateSpec let through names JavaScript objects treat specially.
 * - A node id `__proto__` (a task named `x.__proto__` gets it): the run's node map is built by
 *   assignment, so the node's record became the map's prototype. The node ran, but was never
 *   stored or cached, `runs show` threw a TypeError, and a run taken over by another controller
 *   hung.
 * - Names inherited from Object.prototype (`toString`, `constructor`, `hasOwnProperty`) passed the
 *   checks that used `in` or plain indexing: an input bound to an undeclared workflow input
 *   `toString` was accepted, and every round of its run then failed ("value has no JSON encoding")
 *   while the run stayed running. A workflow output named `__proto__` dropped out of the outputs.
 * - A cycle of more than ~2,000 nodes threw RangeError (graphlib names cycles recursively) instead
 *   of CYCLE_IN_WORKFLOW; its message listed every node.
 * Each is refused now, naming workflow, node and field.
 */
import { describe, expect, test } from 'vitest';
import { validateSpec, type WorkflowSpec } from '@memoflow/engine';
import { refusal } from '../support/refusal.js';
import { lit, ref, taskNode, wfInput, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

const refused = (spec: WorkflowSpec) => refusal(() => validateSpec(spec));

describe('names JavaScript objects treat specially, and very long cycles', () => {
  test("a node id '__proto__'", () => {
    const error = refused(workflowSpec('wf', [taskNode('__proto__', 't', { x: lit(1) })], { outputs: {} }));
    expect(error.code).toBe('INVALID_SPEC');
    expect(error.location).toMatchObject({ workflow: 'wf', node: '__proto__' });
  });

  test.each(['toString', 'constructor', 'hasOwnProperty'])("an input bound to an undeclared workflow input '%s'", (name) => {
    const error = refused(workflowSpec('wf', [taskNode('n1', 't', { x: wfInput(name) })], { outputs: {} }));
    expect(error.code).toBe('UNKNOWN_INPUT');
    expect(error.location).toMatchObject({ workflow: 'wf', node: 'n1', field: 'x' });
  });

  test("a node input the task does not declare, named 'constructor'", () => {
    const node = taskNode('n1', 't', { x: lit(1) }); // declares x only
    const error = refused(workflowSpec('wf', [{ ...node, inputs: { x: lit(1), constructor: lit(2) } }], { outputs: {} }));
    expect(error.code).toBe('UNKNOWN_INPUT');
    expect(error.location).toMatchObject({ node: 'n1', field: 'constructor' });
  });

  test("a declared input 'toString' left unbound", () => {
    const node = taskNode('n1', 't', { x: lit(1) });
    const error = refused(workflowSpec('wf', [{ ...node, signature: { ...node.signature, inputs: { ...node.signature.inputs, toString: true } } }], { outputs: {} }));
    expect(error.code).toBe('UNBOUND_INPUT');
    expect(error.location).toMatchObject({ node: 'n1', field: 'toString' });
  });

  test("a pin of an undeclared input 'hasOwnProperty'", () => {
    const error = refused({ ...workflowSpec('wf', [taskNode('n1', 't', { x: lit(1) })], { outputs: {} }), pinnedInputs: { hasOwnProperty: null } });
    expect(error.code).toBe('UNKNOWN_INPUT');
    expect(error.location).toMatchObject({ field: 'pinnedInputs.hasOwnProperty' });
  });

  test("a workflow output '__proto__'", () => {
    const outputs = Object.defineProperty({}, '__proto__', { value: ref('n1'), enumerable: true, writable: true, configurable: true });
    const error = refused(workflowSpec('wf', [taskNode('n1', 't', { x: lit(1) })], { outputs }));
    expect(error.code).toBe('INVALID_SPEC');
    expect(error.location).toMatchObject({ field: 'outputs.__proto__' });
  });

  test.each([3, 5_000])('a cycle of %i nodes is CYCLE_IN_WORKFLOW, its message short', (n) => {
    const nodes = Array.from({ length: n }, (_, i) => taskNode(`n${i}`, 't', { x: ref(`n${(i + 1) % n}`) }));
    const error = refused(workflowSpec('wf', nodes, { outputs: {} }));
    expect(error.code).toBe('CYCLE_IN_WORKFLOW');
    expect(error.message.length).toBeLessThan(400);
    const named = error.message.replace(/^.*a cycle: /, '').replace(/ -> \.\.\. \(\d+ nodes\)$/, '').split(' -> ');
    // Each node named is read by the next one: n(i+1) feeds n(i).
    for (let k = 1; k < named.length; k += 1) expect(Number(named[k - 1]?.slice(1))).toBe((Number(named[k]?.slice(1)) + 1) % n);
    if (n > 20) expect(error.message).toMatch(new RegExp(`\\(${n} nodes\\)$`));
  });
});
