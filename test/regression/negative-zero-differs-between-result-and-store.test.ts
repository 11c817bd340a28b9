/**
 * Regression (found by the fuzz suite, test/fuzz): -0 as a run input (or in a task's output) came
 * back as -0 from `run.result()`, which reads the controller's state in memory, but as 0 from the
 * same run read from the store (`mf.runs.show`), from a cache hit, or in the distributed mode: JSON
 * has no -0. Values are now made JSON as they enter, so -0 is 0 everywhere from the start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

const postgres = MODES.find((mode) => mode.name === 'postgres');

describe('-0 is 0 in a fresh result and in the store alike', () => {
  let t: TestConnection;
  beforeAll(async () => {
    t = await (postgres as NonNullable<typeof postgres>).open();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('a -0 input and a -0 output', async () => {
    let seen: number | undefined;
    const echo = task({ name: uniqueName('reg.zero.echo'), inputs: { n: z.number() }, output: z.object({ same: z.number(), made: z.number() }), cache: { version: '1' } }, ({ n }) => {
      seen = n;
      return { same: n, made: -0 };
    });
    const flow = workflow({ name: uniqueName('reg.zero'), inputs: { n: z.number() } }, ({ n }) => ({ out: echo({ n }) }));
    const run = await t.mf.run(flow, { n: -0 });
    const fresh = await run.result();
    const stored = (await t.mf.runs.show(run.id)).outputs as { out: { same: number; made: number } };
    expect(Object.is(seen, 0)).toBe(true);
    expect(Object.is(fresh.out.same, 0) && Object.is(fresh.out.made, 0)).toBe(true);
    expect(Object.is(stored.out.same, 0) && Object.is(stored.out.made, 0)).toBe(true);
  });
});
