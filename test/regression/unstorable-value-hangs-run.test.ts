/**
 * Regression: a task output or an Error message holding U+0000 or a lone surrogate (a string cut
 * inside an emoji) made every save of the run fail; the round was retried every 500 ms forever, the
 * run never ended, and in the embedded mode every later run in the process waited behind it. Now
 * the node fails with a clear error naming where the bad value is (or, for an error message, the
 * message is repaired and recorded), the run ends, and the next run works.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

const emoji = '😀';
const nul = task({ name: 'reg.unstorable.nul', inputs: { n: z.number() }, output: z.object({ rows: z.array(z.string()) }) }, async ({ n }) => ({ rows: ['fine', `bad\u0000${n}`] }));
const cut = task({ name: 'reg.unstorable.cut', inputs: { n: z.number() }, output: z.string() }, async ({ n }) => `${n} ${emoji.slice(0, 1)}`);
const throws = task({ name: 'reg.unstorable.throws', inputs: { n: z.number() }, output: z.number(), retries: 1 }, async ({ n }) => {
  throw new Error(`broke at ${n}: ${emoji.slice(1)}\u0000`);
});
const fine = task({ name: 'reg.unstorable.fine', inputs: { n: z.number() }, output: z.number() }, async ({ n }) => n + 1);

const outputs = workflow({ name: 'reg.unstorable.outputs', inputs: { n: z.number() } }, ({ n }) => ({ a: nul({ n }) }));
const cutOutput = workflow({ name: 'reg.unstorable.cut-output', inputs: { n: z.number() } }, ({ n }) => ({ a: cut({ n }) }));
const thrown = workflow({ name: 'reg.unstorable.thrown', inputs: { n: z.number() } }, ({ n }) => ({ a: throws({ n }) }));
const echo = task({ name: 'reg.unstorable.echo', inputs: { s: z.string() }, output: z.string() }, async ({ s }) => s);
const echoing = workflow({ name: 'reg.unstorable.input', inputs: { s: z.string() } }, ({ s }) => ({ s: echo({ s }) }));
const after = workflow({ name: 'reg.unstorable.after', inputs: { n: z.number() } }, ({ n }) => ({ a: fine({ n }) }));

describe.each(MODES)('regression: unstorable values fail their node, never the run loop ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('an output with U+0000 fails its node, naming the field; the next run works', async () => {
    const run = await t.mf.run(outputs, { n: 1 });
    await expect(run.result()).rejects.toThrow(/cannot be stored: output\.rows\[1\] contains U\+0000/);
    const [node] = await run.nodes();
    expect(node?.status).toBe('failed');
    expect(await (await t.mf.run(after, { n: 1 })).result()).toEqual({ a: 2 });
  });

  it('an output with a lone surrogate fails its node', async () => {
    const run = await t.mf.run(cutOutput, { n: 2 });
    await expect(run.result()).rejects.toThrow(/output contains a lone UTF-16 surrogate/);
  });

  it('an error message with a lone surrogate and U+0000 is recorded repaired, retries are used, the run ends', async () => {
    const run = await t.mf.run(thrown, { n: 3 });
    await expect(run.result()).rejects.toThrow(/broke at 3: \uFFFD\uFFFD/);
    const [node] = await run.nodes();
    expect(node?.attempts).toBe(2);
  });

  it('a run input with U+0000 is refused before anything runs, naming the input', async () => {
    await expect(t.mf.run(echoing, { s: 'a\u0000' })).rejects.toThrow(/workflow 'reg.unstorable.input', field 's'.*U\+0000/);
    expect(await t.mf.runs.list()).toEqual([]);
  });
});
