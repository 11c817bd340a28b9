/**
 * Regression (found by the fuzz suite, test/fuzz): names every object inherits were taken for
 * inputs, because the check was `name in inputs`: `mf.run(wf, { n: 1, toString: 1 })`, an own
 * `__proto__` or `constructor` key (what JSON.parse makes), or `t({ x, toString: 1 })` in a workflow
 * body were accepted and the value dropped without a word. A workflow output named `__proto__`
 * vanished too (`outputs[name] = ...` set the prototype). Each is now refused, naming it.
 */
import { describe, expect, it } from 'vitest';
import { MemoflowError, task, workflow, z } from '@memoflow/sdk';
import { uniqueName } from '../support/modes.js';

function refusal(action: () => unknown): MemoflowError {
  try {
    action();
  } catch (error) {
    if (!(error instanceof MemoflowError)) throw error;
    return error;
  }
  throw new Error('it was accepted');
}

/** An object with `name` as an own, enumerable key, as JSON.parse or a spread would make it. */
function withOwn(base: object, name: string): object {
  const value = { ...base };
  Object.defineProperty(value, name, { value: 1, enumerable: true });
  return value;
}

const INHERITED = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'];

describe('inherited names are no inputs', () => {
  const double = task({ name: uniqueName('reg.inherited.double'), inputs: { x: z.number() }, output: z.number() }, ({ x }) => x * 2);

  it.each(INHERITED)('a run input named %s is UNKNOWN_INPUT', (name) => {
    const flowName = uniqueName('reg.inherited');
    const flow = workflow({ name: flowName, inputs: { n: z.number() } }, ({ n }) => ({ y: double({ x: n }) }));
    const error = refusal(() => flow.prepareInputs(withOwn({ n: 1 }, name)));
    expect(error.code).toBe('UNKNOWN_INPUT');
    expect(error.location).toEqual({ workflow: flowName, field: name });
  });

  it.each(INHERITED)('a task call binding %s is UNKNOWN_INPUT', (name) => {
    const flowName = uniqueName('reg.inherited');
    const flow = workflow({ name: flowName, inputs: { n: z.number() } }, ({ n }) => ({ y: double(withOwn({ x: n }, name) as never) }));
    const error = refusal(() => flow.spec);
    expect(error.code).toBe('UNKNOWN_INPUT');
    expect(error.location).toEqual({ workflow: flowName, node: double.taskName.split('.').pop(), field: name });
  });

  it('a workflow output named __proto__ is refused, not dropped', () => {
    const flowName = uniqueName('reg.inherited');
    const flow = workflow({ name: flowName, inputs: {} }, () => JSON.parse('{"__proto__": 1}') as { [name: string]: never });
    expect(refusal(() => flow.spec).location).toEqual({ workflow: flowName, field: 'outputs.__proto__' });
  });
});
