/**
 * Regression: a sparse array (`[1, , 3]`) under `z.any()` passed every check, but JSON turns its
 * hole into null, so what was stored differed from what was checksummed and the node missed on
 * every run, forever. JSON has no holes, so a value cannot be kept exactly: it is refused where it
 * enters (a run input, a task output, a literal), naming the index; a dense array is cached.
 */
import { describe, expect, it } from 'vitest';
import { MemoflowError } from '@memoflow/engine';
import { task, workflow, z } from '@memoflow/sdk';
import { uniqueName, useEmbedded } from '../support/modes.js';

// eslint-disable-next-line no-sparse-arrays
const sparse = (): unknown[] => [1, , 3];

describe('sparse arrays', () => {
  const t = useEmbedded();

  it('a task output with a hole fails its node, naming the index; nothing is cached', async () => {
    const holey = task({ name: uniqueName('reg.sparse'), inputs: {}, output: z.any(), cache: { version: '1' } }, () => ({ xs: sparse() }));
    const flow = workflow({ name: uniqueName('reg.sparse.flow'), inputs: {} }, () => ({ out: holey({}) }));
    const run = await t.mf.run(flow, {});
    await expect(run.result()).rejects.toThrow();
    const [node] = await run.nodes();
    expect(node?.error?.message).toContain("field 'output.xs[1]'");
    expect(node?.error?.message).toMatch(/hole at index 1/);
    expect(await t.mf.cache.list({ task: holey.taskName })).toEqual([]);
  });

  it('a run input with a hole is refused before the run starts', async () => {
    const sum = task({ name: uniqueName('reg.sparse.sum'), inputs: { xs: z.any() }, output: z.number(), cache: { version: '1' } }, ({ xs }) => (xs as number[]).length);
    const name = uniqueName('reg.sparse.flow');
    const flow = workflow({ name, inputs: { xs: z.any() } }, ({ xs }) => ({ n: sum({ xs }) }));
    const error = await t.mf.run(flow, { xs: sparse() }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).location).toEqual({ workflow: name, field: 'xs[1]' });
  });

  it('a literal with a hole is refused when the workflow is traced', () => {
    const sum = task({ name: uniqueName('reg.sparse.sum'), inputs: { xs: z.any() }, output: z.number() }, ({ xs }) => (xs as number[]).length);
    const flow = workflow({ name: uniqueName('reg.sparse.flow'), inputs: {} }, () => ({ n: sum({ xs: sparse() }) }));
    expect(() => flow.spec).toThrow(/hole at index 1/);
  });

  it('the dense array is cached: the second run hits', async () => {
    const dense = task({ name: uniqueName('reg.dense'), inputs: {}, output: z.any(), cache: { version: '1' } }, () => ({ xs: [1, null, 3] }));
    const flow = workflow({ name: uniqueName('reg.dense.flow'), inputs: {} }, () => ({ out: dense({}) }));
    expect(await (await t.mf.run(flow, {})).result()).toEqual({ out: { xs: [1, null, 3] } });
    const again = await t.mf.run(flow, {});
    expect(await again.result()).toEqual({ out: { xs: [1, null, 3] } });
    expect((await again.nodes())[0]?.cacheStatus).toBe('HIT');
  });
});
