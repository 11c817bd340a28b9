// Regression (issue 8, item 12, non-zod schema and mf.run({}) parts): a non-zod schema in `inputs`
// or `output` gave zod's "TypeError: Cannot use 'in' operator to search for '_idmap'" and
// `mf.run({})` gave "workflow.prepareInputs is not a function". Each is now a MemoflowError naming
// the workflow or task and the field.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, dynamic, MemoflowError, task, workflow, z } from '@memoflow/sdk';

function caught(make: () => unknown): MemoflowError {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(MemoflowError);
    return error as MemoflowError;
  }
  throw new Error('expected an error');
}

describe('a schema that is not zod', () => {
  it.each([
    ['a JSON Schema input of a task', () => task({ name: 'nz.t1', inputs: { n: { type: 'number' } as never }, output: z.number() }, async () => 1), /node 'nz\.t1', field 'inputs\.n'.*must be a zod schema/],
    ['a JSON Schema output of a task', () => task({ name: 'nz.t2', inputs: { n: z.number() }, output: { type: 'number' } as never }, (async () => 1) as never), /node 'nz\.t2', field 'output'/],
    ['a plain value as a workflow input', () => workflow({ name: 'nz.w1', inputs: { n: 5 as never } }, () => ({})), /workflow 'nz\.w1', field 'inputs\.n'/],
    ['a string as the inputs of a task', () => task({ name: 'nz.t3', inputs: 'n' as never, output: z.number() }, async () => 1), /node 'nz\.t3', field 'inputs'/],
    ['a JSON Schema input of a dynamic', () => dynamic({ name: 'nz.d1', inputs: { n: { type: 'number' } as never }, output: z.array(z.number()), tasks: [] }, () => []), /node 'nz\.d1', field 'inputs\.n'/],
  ])('%s is a MemoflowError naming it', (_name, make, expected) => {
    const error = caught(make);
    expect(error.code).toBe('INVALID_SPEC');
    expect(error.message).toMatch(expected);
  });
});

describe('mf.run with something that is not a workflow', () => {
  it.each([
    ['an empty object', {}],
    ['null', null],
    ['a task', task({ name: 'nz.t4', inputs: { n: z.number() }, output: z.number() }, async ({ n }) => n)],
  ])('%s is a MemoflowError naming the argument', async (_name, value) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'memoflow-nz-'));
    const mf = await connect({ dataDir, log: 'silent' });
    try {
      const error = await mf.run(value as never, {} as never).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(MemoflowError);
      expect((error as MemoflowError).message).toMatch(/field 'workflow'.*mf\.run needs a workflow/);
    } finally {
      await mf.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
