/**
 * Regression (found by the fuzz suite, test/fuzz): a literal in a workflow body holding what no
 * store keeps (U+0000, a lone surrogate, in a value or a key), or an input or output named with
 * one, was accepted when traced and refused only when the run was saved, naming a path inside the
 * spec ("the workflow spec.nodes[0].inputs.v.value contains U+0000"): no node, no field, and no
 * task name for an input named so. Each is now refused when traced, naming the node and field.
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

const cut = '😀'.slice(0, 1);

describe('unstorable literals and names are refused where they are written', () => {
  const echo = task({ name: uniqueName('reg.literal.echo'), inputs: { v: z.any() }, output: z.any() }, ({ v }) => v);
  const node = echo.taskName.split('.').pop();

  it.each([
    ['U+0000 in a string', { rows: ['ok', 'a\u0000'] }, 'v.rows[1]', /U\+0000/],
    ['a lone surrogate', [`cut ${cut}`], 'v[0]', /lone UTF-16 surrogate/],
    ['U+0000 in a key', { 'k\u0000': 1 }, 'v', /key "k\\u0000".*U\+0000/],
  ])('a task input literal with %s names workflow, node and field', (_what, literal, field, message) => {
    const name = uniqueName('reg.literal');
    const flow = workflow({ name, inputs: {} }, () => ({ out: echo({ v: literal }) }));
    const error = refusal(() => flow.spec);
    expect(error.location).toEqual({ workflow: name, node, field });
    expect(error.message).toMatch(message);
  });

  it('a workflow output literal with U+0000 names the output', () => {
    const name = uniqueName('reg.literal');
    const flow = workflow({ name, inputs: {} }, () => ({ out: 'a\u0000' as never }));
    expect(refusal(() => flow.spec).location).toEqual({ workflow: name, field: 'outputs.out' });
  });

  it('inputs and outputs named with U+0000 or a lone surrogate are refused when defined', () => {
    const taskName = uniqueName('reg.literal.t');
    expect(refusal(() => task({ name: taskName, inputs: { 'i\u0000': z.number() } }, () => undefined)).location).toEqual({ node: taskName, field: 'inputs' });
    const name = uniqueName('reg.literal');
    expect(refusal(() => workflow({ name, inputs: { [`i${cut}`]: z.number() } }, () => ({}))).location).toEqual({ workflow: name, field: 'inputs' });
    const flow = workflow({ name, inputs: {} }, () => ({ ['o\u0000']: 1 as never }));
    expect(refusal(() => flow.spec).location).toEqual({ workflow: name, field: 'outputs' });
  });
});
