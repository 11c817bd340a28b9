import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoflowError, task, workflow, z } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

/** Asserts a MemoflowError with the code and the workflow/node/field it must name. */
async function expectBadInput(action: () => unknown, code: string, location: { workflow?: string; node?: string; field?: string }): Promise<MemoflowError> {
  let caught: unknown;
  try {
    await action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(MemoflowError);
  const error = caught as MemoflowError;
  expect(error.code).toBe(code);
  expect(error.location).toMatchObject(location);
  for (const [part, value] of Object.entries(location)) expect(error.message, `message names the ${part}`).toContain(`'${value}'`);
  return error;
}

describe('bad input at definition time', () => {
  it('an invalid cache.version names the task and the field', async () => {
    await expectBadInput(
      () => task({ name: 'bad.version', inputs: { x: z.number() }, output: z.number(), cache: { version: 'v 1/2' } }, async ({ x }) => x),
      'INVALID_CACHE_VERSION',
      { node: 'bad.version', field: 'cache.version' },
    );
  });

  it('ignoreInputs naming an input that does not exist', async () => {
    await expectBadInput(
      () => task({ name: 'bad.ignore', inputs: { x: z.number() }, output: z.number(), cache: { version: '1', ignoreInputs: ['y' as 'x'] } }, async ({ x }) => x),
      'INVALID_IGNORE_INPUTS',
      { node: 'bad.ignore', field: 'cache.ignoreInputs' },
    );
  });

  it('an invalid version given through withOverrides names workflow and node', async () => {
    const t1 = task({ name: 'bad.ovr', inputs: { x: z.number() }, output: z.number() }, async ({ x }) => x);
    const wf = workflow({ name: 'bad.ovr.main', inputs: { x: z.number() } }, ({ x }) => ({ y: t1({ x }).withOverrides({ cache: { version: 'no spaces allowed' } }) }));
    await expectBadInput(() => wf.spec, 'INVALID_CACHE_VERSION', { workflow: 'bad.ovr.main', node: 'ovr', field: 'cache.version' });
  });

  it('a task name used twice with different definitions in one workflow', async () => {
    const one = task({ name: 'dup.same', inputs: { x: z.number() }, output: z.number() }, async ({ x }) => x);
    const two = task({ name: 'dup.same', inputs: { x: z.number() }, output: z.number() }, async ({ x }) => x + 1);
    const wf = workflow({ name: 'dup.main', inputs: { x: z.number() } }, ({ x }) => ({ a: one({ x }), b: two({ x }) }));
    await expectBadInput(() => wf.spec, 'DUPLICATE_TASK_NAME', { workflow: 'dup.main', node: 'dup.same', field: 'name' });
  });

  it('an unbound input (TypeScript would catch it; JavaScript callers get this)', async () => {
    const add = task({ name: 'unbound.add', inputs: { a: z.number(), b: z.number() }, output: z.number() }, async ({ a, b }) => a + b);
    const wf = workflow({ name: 'unbound.main', inputs: { a: z.number() } }, ({ a }) => ({ s: add({ a } as never) }));
    await expectBadInput(() => wf.spec, 'UNBOUND_INPUT', { workflow: 'unbound.main', node: 'add', field: 'b' });
  });

  it('a reference whose type does not fit the input', async () => {
    const words = task({ name: 'tm.words', inputs: { s: z.string() }, output: z.array(z.string()) }, async ({ s }) => s.split(' '));
    const shout = task({ name: 'tm.shout', inputs: { s: z.string() }, output: z.string() }, async ({ s }) => s.toUpperCase());
    // The cast hides the mismatch from TypeScript, as an untyped caller would.
    const wf = workflow({ name: 'tm.main', inputs: { s: z.string() } }, ({ s }) => ({ out: shout({ s: words({ s }) as never }) }));
    const error = await expectBadInput(() => wf.spec, 'TYPE_MISMATCH', { workflow: 'tm.main', node: 'shout', field: 's' });
    expect(error.message).toMatch(/expects string but is given array/);
  });

  it('a literal that fails the input schema', async () => {
    const pos = task({ name: 'lit.pos', inputs: { n: z.number().int().positive() }, output: z.number() }, async ({ n }) => n);
    const wf = workflow({ name: 'lit.main', inputs: {} }, () => ({ out: pos({ n: -3 }) }));
    await expectBadInput(() => wf.spec, 'INPUT_SCHEMA_MISMATCH', { workflow: 'lit.main', node: 'pos', field: 'n' });
  });

  it('reading a field an output does not have', async () => {
    const pair = task({ name: 'field.pair', inputs: {}, output: z.object({ a: z.number() }) }, async () => ({ a: 1 }));
    const id = task({ name: 'field.id', inputs: { x: z.number() }, output: z.number() }, async ({ x }) => x);
    const wf = workflow({ name: 'field.main', inputs: {} }, () => ({ out: id({ x: (pair({}) as unknown as { b: never }).b }) }));
    await expectBadInput(() => wf.spec, 'TYPE_MISMATCH', { workflow: 'field.main', node: 'id', field: 'x' });
  });
});

describe.each(MODES)('bad run input ($name)', (mode) => {
  let t: TestConnection;
  let ran = 0;
  const double = task({ name: 'in.double', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => {
    ran++;
    return x * 2;
  });
  const wf = workflow({ name: 'in.main', inputs: { x: z.number().int(), label: z.string() } }, ({ x }) => ({ y: double({ x }) }));

  beforeEach(async () => {
    t = await mode.open();
    ran = 0;
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('an input that fails its schema is rejected before anything runs', async () => {
    await expectBadInput(() => t.mf.run(wf, { x: 1.5, label: 'a' }), 'INPUT_SCHEMA_MISMATCH', { workflow: 'in.main', field: 'x' });
    await expectBadInput(() => t.mf.run(wf, { x: 'one' as never, label: 'a' }), 'INPUT_SCHEMA_MISMATCH', { workflow: 'in.main', field: 'x' });
    expect(ran).toBe(0);
    expect(await t.mf.runs.list()).toHaveLength(0);
  });

  it('a missing input is rejected before anything runs', async () => {
    await expectBadInput(() => t.mf.run(wf, { x: 1 } as never), 'MISSING_INPUT', { workflow: 'in.main', field: 'label' });
    expect(ran).toBe(0);
    expect(await t.mf.runs.list()).toHaveLength(0);
  });

  it('resumeFrom a run that does not exist is refused before anything runs', async () => {
    await expectBadInput(() => t.mf.run(wf, { x: 1, label: 'a' }, { resumeFrom: { run: 'r1', node: 'double' } }), 'RUN_NOT_FOUND', { workflow: 'in.main', field: 'run' });
    expect(await t.mf.runs.list()).toHaveLength(0);
  });

  it('an unknown input is rejected', async () => {
    await expectBadInput(() => t.mf.run(wf, { x: 1, label: 'a', extra: true } as never), 'UNKNOWN_INPUT', { workflow: 'in.main', field: 'extra' });
  });
});
