import { describe, expect, test } from 'vitest';
import { MemoflowError, type EngineErrorCode, type ErrorLocation } from '../errors.js';
import { arr, lit, obj, ref, taskNode, wfInput, workflowSpec } from '../testing/spec-builders.js';
import { validateSpec } from './validate-spec.js';
import type { Binding, JsonSchema, WorkflowSpec } from './workflow-spec.js';

const numberArray: JsonSchema = { type: 'array', items: { type: 'number' } };

/** Runs validateSpec and returns the MemoflowError it throws (fails the test if it does not). */
function rejection(spec: WorkflowSpec): MemoflowError {
  try {
    validateSpec(spec);
  } catch (error) {
    expect(error).toBeInstanceOf(MemoflowError);
    return error as MemoflowError;
  }
  throw new Error('validateSpec accepted the spec');
}

function expectRejected(spec: WorkflowSpec, code: EngineErrorCode, location: ErrorLocation): MemoflowError {
  const error = rejection(spec);
  expect(error.code).toBe(code);
  expect(error.location).toEqual(location);
  // Every bad-input error names workflow, node and field in its message too.
  if (location.workflow !== undefined) expect(error.message).toContain(`workflow '${location.workflow}'`);
  if (location.node !== undefined) expect(error.message).toContain(`node '${location.node}'`);
  if (location.field !== undefined) expect(error.message).toContain(`field '${location.field}'`);
  return error;
}

describe('validateSpec: structure', () => {
  test('a valid spec is returned unchanged apart from node order', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't.a', { x: wfInput('x') }), taskNode('b', 't.b', { y: ref('a') })], {
      inputs: { x: true },
      outputs: { out: ref('b') },
    });
    const validated = validateSpec(spec);
    expect(validated).toEqual(spec);
    expect(validated).not.toBe(spec);
  });

  test('a cycle is CYCLE_IN_WORKFLOW naming the workflow and a node of the cycle', () => {
    const spec = workflowSpec('wf.cyclic', [
      taskNode('a', 't.a', { x: ref('c') }),
      taskNode('b', 't.b', { x: ref('a') }),
      taskNode('c', 't.c', { x: ref('b') }),
      taskNode('free', 't.free', {}),
    ]);
    const error = rejection(spec);
    expect(error.code).toBe('CYCLE_IN_WORKFLOW');
    expect(error.location.workflow).toBe('wf.cyclic');
    expect(['a', 'b', 'c']).toContain(error.location.node);
    expect(error.message).toContain("workflow 'wf.cyclic'");
    expect(error.message).toMatch(/cycle: .*(a|b|c).*->/);
  });

  test('a cycle through an array binding is found', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't', { xs: arr(ref('b')) }), taskNode('b', 't', { x: ref('a') })]);
    expect(rejection(spec).code).toBe('CYCLE_IN_WORKFLOW');
  });

  test('a node reading its own output is a cycle naming that node and field', () => {
    expectRejected(workflowSpec('wf', [taskNode('a', 't', { x: ref('a') })]), 'CYCLE_IN_WORKFLOW', { workflow: 'wf', node: 'a', field: 'x' });
  });

  test('a reference to an unknown node', () => {
    const error = expectRejected(workflowSpec('wf', [taskNode('a', 't', { x: obj({ deep: ref('ghost') }) })]), 'UNKNOWN_NODE_REFERENCE', {
      workflow: 'wf',
      node: 'a',
      field: 'x',
    });
    expect(error.message).toContain('ghost');
  });

  test('a workflow output referring to an unknown node', () => {
    expectRejected(workflowSpec('wf', [taskNode('a', 't', {})], { outputs: { total: ref('ghost') } }), 'UNKNOWN_NODE_REFERENCE', {
      workflow: 'wf',
      field: 'outputs.total',
    });
  });

  test('an unbound input is UNBOUND_INPUT with workflow, node and field', () => {
    const node = taskNode('clean', 'etl.clean', {}, { inputSchemas: { rows: numberArray } });
    const error = expectRejected(workflowSpec('etl.main', [node]), 'UNBOUND_INPUT', { workflow: 'etl.main', node: 'clean', field: 'rows' });
    expect(error.message).toContain("input 'rows'");
    expect(error.message).toContain('etl.clean');
  });

  test('an optional input (listed in optionalInputs) may be left unbound; the others may not', () => {
    const base = taskNode('greet', 't.greet', { name: lit('ada') }, { inputSchemas: { name: { type: 'string' }, greeting: { type: 'string' } } });
    const optional = { ...base, signature: { ...base.signature, optionalInputs: ['greeting'] } };
    expect(validateSpec(workflowSpec('wf', [optional])).nodes).toHaveLength(1);
    expectRejected(workflowSpec('wf', [base]), 'UNBOUND_INPUT', { workflow: 'wf', node: 'greet', field: 'greeting' });
  });

  test("a sub-workflow call may leave out its workflow's optional inputs (the call's signature does not list them), not its required ones", () => {
    const greet = taskNode('greet', 't.greet', { name: wfInput('name'), title: wfInput('title') }, { inputSchemas: { name: { type: 'string' }, title: { type: 'string' } } });
    const inner: WorkflowSpec = { ...workflowSpec('inner', [{ ...greet, signature: { ...greet.signature, optionalInputs: ['title'] } }], { inputs: { name: { type: 'string' }, title: { type: 'string' } } }), optionalInputs: ['title'] };
    const call = (inputs: { [name: string]: Binding }) => ({
      kind: 'subworkflow' as const,
      id: 'inner',
      task: 'inner',
      signature: { inputs: inner.inputs, output: true, outputHashed: false },
      cache: null,
      retries: 0,
      timeoutMs: null,
      inputs,
      workflow: inner,
    });
    expect(validateSpec({ ...workflowSpec('outer', [], { inputs: { name: { type: 'string' } } }), nodes: [call({ name: wfInput('name') })] }).nodes).toHaveLength(1);
    expectRejected({ ...workflowSpec('outer', []), nodes: [call({ title: lit('dr') })] }, 'UNBOUND_INPUT', { workflow: 'outer', node: 'inner', field: 'name' });
  });

  test("a future's pinned inputs must be inputs of it, each a digest or null", () => {
    const spec = (pinnedInputs: { [name: string]: string | null }) => ({ ...workflowSpec('dyn', [], { inputs: { rows: true } }), pinnedInputs });
    expect(validateSpec(spec({ rows: 'ab12' })).pinnedInputs).toEqual({ rows: 'ab12' });
    expect(validateSpec(spec({ rows: null })).pinnedInputs).toEqual({ rows: null });
    expectRejected(spec({ nope: 'ab12' }), 'UNKNOWN_INPUT', { workflow: 'dyn', field: 'pinnedInputs.nope' });
    expectRejected(spec({ rows: 5 as unknown as string }), 'INVALID_SPEC', { workflow: 'dyn', field: 'pinnedInputs.rows' });
  });

  test('binding an input the task does not have is UNKNOWN_INPUT', () => {
    const node = { ...taskNode('a', 't.a', {}), inputs: { nope: wfInput('x') } };
    expectRejected(workflowSpec('wf', [node], { inputs: { x: true } }), 'UNKNOWN_INPUT', { workflow: 'wf', node: 'a', field: 'nope' });
  });

  test('reading a workflow input that does not exist is UNKNOWN_INPUT', () => {
    const error = expectRejected(workflowSpec('wf', [taskNode('a', 't', { x: wfInput('missing') })]), 'UNKNOWN_INPUT', {
      workflow: 'wf',
      node: 'a',
      field: 'x',
    });
    expect(error.message).toContain("'missing'");
  });

  test('duplicate node ids, bad node ids and unknown spec versions are INVALID_SPEC', () => {
    expect(rejection(workflowSpec('wf', [taskNode('a', 't', {}), taskNode('a', 't', {})])).code).toBe('INVALID_SPEC');
    expect(rejection(workflowSpec('wf', [taskNode('a:b', 't', {})])).code).toBe('INVALID_SPEC');
    expect(rejection(workflowSpec('wf', [taskNode('a b', 't', {})])).code).toBe('INVALID_SPEC');
    const future = { ...workflowSpec('wf', []), specVersion: 2 } as unknown as WorkflowSpec;
    expect(rejection(future).code).toBe('INVALID_SPEC');
  });
});

describe('validateSpec: types of bound references', () => {
  const producer = (output: JsonSchema) => taskNode('p', 'produce', {}, { output });
  const consumer = (input: JsonSchema, binding = ref('p')) => taskNode('c', 'consume', { x: binding }, { inputSchemas: { x: input } });

  test('number[] output into a string input is TYPE_MISMATCH', () => {
    const error = expectRejected(workflowSpec('wf', [producer(numberArray), consumer({ type: 'string' })]), 'TYPE_MISMATCH', {
      workflow: 'wf',
      node: 'c',
      field: 'x',
    });
    expect(error.message).toContain("output of node 'p'");
    expect(error.message).toContain('expects string but is given array');
  });

  test('number[] into string[] names the item path', () => {
    const error = rejection(workflowSpec('wf', [producer(numberArray), consumer({ type: 'array', items: { type: 'string' } })]));
    expect(error.code).toBe('TYPE_MISMATCH');
    expect(error.message).toContain("'[]' expects string but is given number");
  });

  test('integer into number is fine; number into integer is not', () => {
    expect(() => validateSpec(workflowSpec('wf', [producer({ type: 'integer' }), consumer({ type: 'number' })]))).not.toThrow();
    expect(rejection(workflowSpec('wf', [producer({ type: 'number' }), consumer({ type: 'integer' })])).code).toBe('TYPE_MISMATCH');
  });

  test('a workflow input of the wrong type is TYPE_MISMATCH naming the input', () => {
    const spec = workflowSpec('wf', [consumer({ type: 'string' }, wfInput('n'))], { inputs: { n: { type: 'number' } } });
    const error = expectRejected(spec, 'TYPE_MISMATCH', { workflow: 'wf', node: 'c', field: 'x' });
    expect(error.message).toContain("workflow input 'n'");
  });

  test('a path into an object output is checked against the field schema', () => {
    const split = { type: 'object', properties: { train: numberArray, name: { type: 'string' } }, required: ['train', 'name'] };
    expect(() => validateSpec(workflowSpec('wf', [producer(split), consumer(numberArray, ref('p', 'train'))]))).not.toThrow();
    const error = rejection(workflowSpec('wf', [producer(split), consumer(numberArray, ref('p', 'name'))]));
    expect(error.code).toBe('TYPE_MISMATCH');
    expect(error.message).toContain("output of node 'p.name'");
  });

  test('object inputs: required fields must be required in the producer, with fitting types', () => {
    const wanted = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    const exact = { type: 'object', properties: { a: { type: 'string' }, extra: { type: 'number' } }, required: ['a', 'extra'] };
    const optional = { type: 'object', properties: { a: { type: 'string' } } };
    const wrongType = { type: 'object', properties: { a: { type: 'number' } }, required: ['a'] };
    expect(() => validateSpec(workflowSpec('wf', [producer(exact), consumer(wanted)]))).not.toThrow();
    const missing = rejection(workflowSpec('wf', [producer(optional), consumer(wanted)]));
    expect(missing.code).toBe('TYPE_MISMATCH');
    expect(missing.message).toContain("'a' is required but may be missing");
    const mistyped = rejection(workflowSpec('wf', [producer(wrongType), consumer(wanted)]));
    expect(mistyped.code).toBe('TYPE_MISMATCH');
    expect(mistyped.message).toContain("'a' expects string but is given number");
  });

  test('nullable producers only fit nullable consumers (anyOf and type arrays)', () => {
    const nullableString = { anyOf: [{ type: 'string' }, { type: 'null' }] };
    expect(() => validateSpec(workflowSpec('wf', [producer({ type: 'string' }), consumer(nullableString)]))).not.toThrow();
    expect(() => validateSpec(workflowSpec('wf', [producer({ type: ['string', 'null'] }), consumer(nullableString)]))).not.toThrow();
    expect(rejection(workflowSpec('wf', [producer(nullableString), consumer({ type: 'string' })])).code).toBe('TYPE_MISMATCH');
  });

  test('schemas it cannot judge are accepted (the worker validates values)', () => {
    expect(() => validateSpec(workflowSpec('wf', [producer(true), consumer({ type: 'string' })]))).not.toThrow();
    expect(() => validateSpec(workflowSpec('wf', [producer({ description: 'anything' }), consumer({ type: 'string' })]))).not.toThrow();
  });
});

describe('validateSpec: cache settings', () => {
  test.each(['v 1', 'a/b', '', 'ver:1', 'ü'])('cache.version %j is INVALID_CACHE_VERSION', (version) => {
    const node = taskNode('a', 't', {}, { cache: { version } });
    const error = expectRejected(workflowSpec('wf', [node]), 'INVALID_CACHE_VERSION', { workflow: 'wf', node: 'a', field: 'cache.version' });
    expect(error.message).toContain(JSON.stringify(version));
  });

  test.each(['1', 'v2.1', '2024-06-01', 'A_b-C.9'])('cache.version %j is valid', (version) => {
    expect(() => validateSpec(workflowSpec('wf', [taskNode('a', 't', {}, { cache: { version } })]))).not.toThrow();
  });

  test('ignoreInputs naming a missing input is INVALID_IGNORE_INPUTS', () => {
    const node = taskNode('a', 't', { x: wfInput('x') }, { cache: { ignoreInputs: ['y'] } });
    const error = expectRejected(workflowSpec('wf', [node], { inputs: { x: true } }), 'INVALID_IGNORE_INPUTS', {
      workflow: 'wf',
      node: 'a',
      field: 'cache.ignoreInputs',
    });
    expect(error.message).toContain("'y'");
  });

  test('a disabled cache is not checked', () => {
    expect(() => validateSpec(workflowSpec('wf', [taskNode('a', 't', {}, { cache: null })]))).not.toThrow();
  });
});

describe('validateSpec: order', () => {
  test('nodes come back in topological order', () => {
    const spec = workflowSpec('wf', [
      taskNode('report', 't', { total: ref('total'), rows: ref('clean') }),
      taskNode('total', 't', { rows: ref('clean') }),
      taskNode('clean', 't', { rows: ref('load') }),
      taskNode('load', 't', {}),
    ]);
    expect(validateSpec(spec).nodes.map((node) => node.id)).toEqual(['load', 'clean', 'total', 'report']);
  });

  test('every node comes after all its dependencies (fan-in, paths, objects)', () => {
    const spec = workflowSpec('wf', [
      taskNode('sink', 't', { xs: arr(ref('m1'), ref('m2', 'a')), o: obj({ k: ref('m3') }) }),
      taskNode('m3', 't', { x: ref('m2') }),
      taskNode('m2', 't', { x: ref('src') }),
      taskNode('m1', 't', { x: ref('src') }),
      taskNode('src', 't', {}),
    ]);
    const order = validateSpec(spec).nodes.map((node) => node.id);
    const position = (id: string) => order.indexOf(id);
    expect(order).toHaveLength(5);
    expect(position('src')).toBeLessThan(position('m1'));
    expect(position('src')).toBeLessThan(position('m2'));
    expect(position('m2')).toBeLessThan(position('m3'));
    for (const dep of ['m1', 'm2', 'm3']) expect(position(dep)).toBeLessThan(position('sink'));
  });
});
