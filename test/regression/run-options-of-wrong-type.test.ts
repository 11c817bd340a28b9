/**
 * Regression (found by the fuzz suite, test/fuzz): `mf.run(wf, inputs, null)` threw "Cannot read
 * properties of null (reading 'resumeFrom')"; other run options of the wrong type were taken with
 * another meaning: options `5`, `overwriteCache: 'yes'` (no overwrite: only `true` counts),
 * `project: null` (the default project), `project: 5` or `true` (keyed as "5" and "true"). Each is
 * now refused before anything is submitted, naming the workflow and the option. Any mode would do;
 * the Postgres one opens fastest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoflowError, task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

const postgres = MODES.find((mode) => mode.name === 'postgres');

describe('run options of the wrong type are refused, naming the option', () => {
  let t: TestConnection;
  beforeAll(async () => {
    t = await (postgres as NonNullable<typeof postgres>).open();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const double = task({ name: uniqueName('reg.runopt.double'), inputs: { x: z.number() }, output: z.number() }, ({ x }) => x * 2);
  const name = uniqueName('reg.runopt');
  const flow = workflow({ name, inputs: { x: z.number() } }, ({ x }) => ({ y: double({ x }) }));

  it.each([
    ['options null', null, 'options'],
    ['options 5', 5, 'options'],
    ["options 'fast'", 'fast', 'options'],
    ["overwriteCache: 'yes'", { overwriteCache: 'yes' }, 'overwriteCache'],
    ['project: null', { project: null }, 'project'],
    ['project: 5', { project: 5 }, 'project'],
    ['domain: true', { domain: true }, 'domain'],
    ['project: a symbol', { project: Symbol('p') }, 'project'],
  ])('%s', async (_what, options, field) => {
    const error = await t.mf.run(flow, { x: 1 }, options as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).location).toEqual({ workflow: name, field });
    expect(await t.mf.runs.list()).toEqual([]);
  });

  it('good options still run', async () => {
    expect(await (await t.mf.run(flow, { x: 2 }, { project: 'p1', domain: 'd1', overwriteCache: false })).result()).toEqual({ y: 4 });
  });
});
