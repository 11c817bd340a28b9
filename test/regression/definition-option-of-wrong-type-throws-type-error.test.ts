/**
 * Regression (found by the fuzz suite, test/fuzz): a definition option of a type TypeScript would
 * refuse, from a JavaScript caller or a cast, ended in a TypeError from whatever read it first,
 * naming neither the task nor the field: `task(null, ...)` ("Cannot read properties of null"), a
 * BigInt or cyclic name or cache.version (JSON.stringify in the error message threw "Do not know
 * how to serialize a BigInt"), `timeout: {}` or `cache.ttl: true` ("value.trim is not a
 * function"), `cache.ignoreInputs: 5` ("is not iterable"), `dynamic({ tasks: 5 })`,
 * `.withOverrides(null)`, a hashWith function returning a BigInt. Others were silently
 * accepted with another meaning: `cache.ignoreInputs: 'xy'` (spread into 'x', 'y'),
 * `cache.enabled: 'no'` (caching stayed on), a misspelt `cache.versoin` (a derived version), a Date
 * as `cache` or `inputs`, a workflow input no JSON value satisfies (z.date(); a task's is refused),
 * a 400-digit timeout (Infinity, which the spec's JSON turns into "no timeout"). Each is now a
 * MemoflowError naming the task (or workflow) and the field.
 */
import { describe, expect, it } from 'vitest';
import { MemoflowError, dynamic, hashWith, task, workflow, z } from '@memoflow/sdk';
import { uniqueName } from '../support/modes.js';

function refusal(define: () => unknown): MemoflowError {
  try {
    define();
  } catch (error) {
    if (!(error instanceof MemoflowError)) throw error;
    return error;
  }
  throw new Error('the definition was accepted');
}

const body = ({ x }: { x: number }) => x;
const cyclic = (): unknown => {
  const value: { [key: string]: unknown } = {};
  value['self'] = value;
  return value;
};

type Options = { [key: string]: unknown };
const CASES: { what: string; options: (name: string) => Options; field: string }[] = [
  { what: 'a BigInt name', options: () => ({ name: 5n, inputs: {} }), field: 'name' },
  { what: 'a cyclic name', options: () => ({ name: cyclic(), inputs: {} }), field: 'name' },
  { what: 'a BigInt cache.version', options: (name) => ({ name, inputs: {}, cache: { version: 5n } }), field: 'cache.version' },
  { what: 'a cyclic cache.version', options: (name) => ({ name, inputs: {}, cache: { version: cyclic() } }), field: 'cache.version' },
  { what: 'timeout: {}', options: (name) => ({ name, inputs: {}, timeout: {} }), field: 'timeout' },
  { what: 'timeout: null', options: (name) => ({ name, inputs: {}, timeout: null }), field: 'timeout' },
  { what: 'timeout: 5n', options: (name) => ({ name, inputs: {}, timeout: 5n }), field: 'timeout' },
  { what: 'a 400-digit timeout (Infinity)', options: (name) => ({ name, inputs: {}, timeout: `${'9'.repeat(400)}ms` }), field: 'timeout' },
  { what: 'cache.ttl: true', options: (name) => ({ name, inputs: {}, cache: { version: '1', ttl: true } }), field: 'cache.ttl' },
  { what: 'cache.ignoreInputs: 5', options: (name) => ({ name, inputs: { x: z.number() }, cache: { version: '1', ignoreInputs: 5 } }), field: 'cache.ignoreInputs' },
  { what: "cache.ignoreInputs: 'x' (spread into its characters)", options: (name) => ({ name, inputs: { x: z.number() }, cache: { version: '1', ignoreInputs: 'x' } }), field: 'cache.ignoreInputs' },
  { what: "cache.enabled: 'no' (caching stayed on)", options: (name) => ({ name, inputs: {}, cache: { version: '1', enabled: 'no' } }), field: 'cache.enabled' },
  { what: 'cache.serialize: 1', options: (name) => ({ name, inputs: {}, cache: { version: '1', serialize: 1 } }), field: 'cache.serialize' },
  { what: 'a misspelt cache.versoin', options: (name) => ({ name, inputs: {}, cache: { versoin: '1' } }), field: 'cache.versoin' },
  { what: 'a Date as cache', options: (name) => ({ name, inputs: {}, cache: new Date(0) }), field: 'cache' },
  { what: 'a Map as inputs', options: (name) => ({ name, inputs: new Map() }), field: 'inputs' },
  { what: 'an input named with U+0000', options: (name) => ({ name, inputs: { 'x\u0000': z.number() } }), field: 'inputs' },
];

describe('a definition option of the wrong type names the task and the field', () => {
  it.each(CASES)('task(): $what', ({ options, field }) => {
    const name = uniqueName('reg.opt');
    const error = refusal(() => task(options(name) as never, body as never));
    expect(error.location).toEqual(field === 'name' ? { field } : { node: name, field });
    expect(error.message).not.toMatch(/how to serialize|circular structure|is not a function|is not iterable|Cannot read/);
  });

  it.each([null, undefined, 5, 'etl.clean', [], () => ({})])('task(%s, body), dynamic() and workflow() with options that are no object', (options) => {
    for (const define of [() => task(options as never, body as never), () => dynamic(options as never, body as never), () => workflow(options as never, () => ({}))]) {
      const error = refusal(define);
      expect(error.location).toEqual({ field: 'options' });
      expect(error.message).toMatch(/takes an object of options/);
    }
  });

  it.each([5, 'fuzz.child', [5], [null], [{ kind: 'task' }]])('dynamic({ tasks: %s })', (tasks) => {
    const name = uniqueName('reg.opt.dyn');
    const error = refusal(() => dynamic({ name, inputs: {}, output: z.number(), tasks: tasks as never }, () => 1));
    expect(error.location).toEqual({ node: name, field: 'tasks' });
  });

  it.each([null, 5, 'cache'])('withOverrides(%s)', (overrides) => {
    const double = task({ name: uniqueName('reg.opt.double'), inputs: { x: z.number() }, output: z.number() }, body);
    const name = uniqueName('reg.opt.flow');
    const flow = workflow({ name, inputs: {} }, () => ({ y: double({ x: 1 }).withOverrides(overrides as never) }));
    const error = refusal(() => flow.spec);
    expect(error.location).toEqual({ workflow: name, node: double.taskName.split('.').pop(), field: 'overrides' });
  });

  it('withOverrides({ timeout: {} })', () => {
    const double = task({ name: uniqueName('reg.opt.double'), inputs: { x: z.number() }, output: z.number() }, body);
    const flow = workflow({ name: uniqueName('reg.opt.flow'), inputs: {} }, () => ({ y: double({ x: 1 }).withOverrides({ timeout: {} as never }) }));
    expect(refusal(() => flow.spec).location.field).toBe('timeout');
  });

  it('a workflow input only a Date satisfies is refused like a task input', () => {
    const name = uniqueName('reg.opt.flow');
    const error = refusal(() => workflow({ name, inputs: { when: z.date() } }, () => ({})));
    expect(error.location).toEqual({ workflow: name, field: 'inputs.when' });
    expect(error.message).toMatch(/Date is not JSON/);
  });

  it.each([
    ['returns a BigInt', () => 5n, /must return a non-empty string, got a BigInt \(5n\)/],
    ['throws', () => { throw new Error('hash broke'); }, /threw: hash broke/],
  ])('a run input whose hashWith function %s', (_how, hash, message) => {
    const name = uniqueName('reg.opt.flow');
    const flow = workflow({ name, inputs: { h: hashWith(z.string(), hash as unknown as () => string) } }, () => ({}));
    const error = refusal(() => flow.prepareInputs({ h: 'x' }));
    expect(error.location).toEqual({ workflow: name, field: 'h' });
    expect(error.message).toMatch(message);
  });
});
