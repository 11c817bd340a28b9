/**
 * Regression (found by the fuzz suite, test/fuzz): mistakes in a workflow's body came out of
 * `wf.spec` and `mf.run` as whatever JavaScript made of them, naming no workflow: a body that is
 * not a function ("TypeError: body is not a function", at first use, not when defined), a body that
 * throws (its TypeError, or a bare `5n`), and a reference used as a plain value (a template string,
 * arithmetic): "workflow input 'n' is a reference..." without the workflow or node. Each is now a
 * MemoflowError naming the workflow (and the node or input of the reference).
 */
import { describe, expect, it } from 'vitest';
import { MemoflowError, task, workflow, z } from '@memoflow/sdk';
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

describe('workflow body mistakes name the workflow', () => {
  it.each([5, undefined, 'x => x', null])('a body that is not a function (%s) is refused when defined', (body) => {
    const name = uniqueName('reg.body');
    const error = refusal(() => workflow({ name, inputs: {} }, body as never));
    expect(error.location).toEqual({ workflow: name, field: 'body' });
  });

  it.each([
    ['a TypeError', () => new TypeError('rows is undefined'), /threw while it was traced: TypeError: rows is undefined/],
    ['a BigInt', () => 5n, /threw while it was traced: 5n/],
    ['an object whose toJSON throws', () => ({ toJSON: () => { throw new Error('x'); } }), /threw while it was traced: an unserialisable value/],
  ])('a body that throws %s', (_what, make: () => unknown, message) => {
    const name = uniqueName('reg.body');
    const flow = workflow({ name, inputs: {} }, () => {
      throw make();
    });
    const error = refusal(() => flow.spec);
    expect(error.location).toEqual({ workflow: name, field: 'body' });
    expect(error.message).toMatch(message);
    expect(error.cause).toBeDefined();
  });

  it('a MemoflowError from inside the body passes through as it is', () => {
    const add = task({ name: uniqueName('reg.body.add'), inputs: { a: z.number() }, output: z.number() }, ({ a }) => a);
    const name = uniqueName('reg.body');
    const flow = workflow({ name, inputs: {} }, () => ({ out: add({} as never) }));
    expect(refusal(() => flow.spec).code).toBe('UNBOUND_INPUT');
  });

  it('a workflow input used as a plain value names the workflow and the input', () => {
    const show = task({ name: uniqueName('reg.body.show'), inputs: { s: z.string() }, output: z.string() }, ({ s }) => s);
    const name = uniqueName('reg.body');
    const flow = workflow({ name, inputs: { n: z.number() } }, ({ n }) => ({ out: show({ s: `${n as unknown as string}!` }) }));
    expect(refusal(() => flow.spec).location).toEqual({ workflow: name, field: 'n' });
  });

  it("a task's output used in arithmetic names the workflow and the node", () => {
    const one = task({ name: uniqueName('reg.body.one'), inputs: {}, output: z.number() }, () => 1);
    const plus = task({ name: uniqueName('reg.body.plus'), inputs: { x: z.number() }, output: z.number() }, ({ x }) => x);
    const name = uniqueName('reg.body');
    const flow = workflow({ name, inputs: {} }, () => ({ out: plus({ x: (one({}) as unknown as number) + 1 }) }));
    expect(refusal(() => flow.spec).location).toEqual({ workflow: name, node: one.taskName.split('.').pop() });
  });
});
