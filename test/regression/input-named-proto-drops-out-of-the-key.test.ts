/**
 * Regression (found by review): an input named `__proto__` dropped out of its node's cache key, so
 * two runs giving it different values shared one cache entry (a wrong hit). Objects of inputs are
 * built by assignment (`inputs[name] = ...`), which for that name sets the prototype instead of a
 * key: in the key's input digests, and in the node's resolved inputs. A task can declare such an
 * input (a computed key, or a spec from JSON), and a workflow too. Now validateSpec refuses the
 * name wherever an input is named, saying which workflow, node and field.
 */
import { describe, expect, test } from 'vitest';
import { computeCacheKey, validateSpec, type TaskSignature } from '@memoflow/engine';
import { refusal } from '../support/refusal.js';
import { lit, taskNode, wfInput, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

/** `{ __proto__: value }` as JSON.parse makes it: an own key. */
const protoKeyed = <T>(value: T): { [name: string]: T } => Object.defineProperty({}, '__proto__', { value, enumerable: true, writable: true, configurable: true });

describe("an input named '__proto__'", () => {
  test('is why: assignment drops it from the key, so different values share one key', () => {
    const signature: TaskSignature = { inputs: protoKeyed<true>(true), output: true, outputHashed: false };
    const key = (value: number) => computeCacheKey({ project: 'p', domain: 'd', task: 't', signature, cache: { version: '1', ignoreInputs: [] }, inputs: protoKeyed({ value }) }).key;
    expect(key(1)).toBe(key(2));
  });

  test("a task's input of that name is refused, naming workflow, node and field", () => {
    const node = { ...taskNode('n1', 't', {}), signature: { inputs: protoKeyed<true>(true), output: true, outputHashed: false }, inputs: protoKeyed(lit(1)) };
    const error = refusal(() => validateSpec(workflowSpec('wf', [node], { outputs: {} })));
    expect(error.code).toBe('INVALID_SPEC');
    expect(error.message).toMatch(/cannot be named '__proto__'/);
    expect(error.location).toEqual({ workflow: 'wf', node: 'n1', field: '__proto__' });
  });

  test("a workflow's input of that name is refused too", () => {
    const spec = { ...workflowSpec('wf', [taskNode('n1', 't', { x: wfInput('x') })], { outputs: {}, inputs: { x: { type: 'number' } } }) };
    const error = refusal(() => validateSpec({ ...spec, inputs: { ...spec.inputs, ...protoKeyed({ type: 'number' }) } }));
    expect(error.code).toBe('INVALID_SPEC');
    expect(error.location).toEqual({ workflow: 'wf', field: 'inputs.__proto__' });
  });
});
