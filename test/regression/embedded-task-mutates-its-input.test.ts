/**
 * Regression: in the embedded mode a task's inputs were the controller's own objects, so a body
 * that sorted its input in place changed what a later consumer of the same value saw (and the key
 * computed from it), while the store kept the original. Each attempt now gets its own copy of its
 * inputs, and the controller keeps its own copy of the output.
 */
import { describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { uniqueName, useEmbedded } from '../support/modes.js';

describe('embedded: a task cannot change another node\'s data', () => {
  const t = useEmbedded({ each: true });

  function pipeline() {
    const n = uniqueName('reg.mut');
    const make = task({ name: `${n}.make`, inputs: {}, output: z.array(z.number()), cache: { version: '1' } }, () => [3, 1, 2]);
    // `z.any()`: zod hands the value through as is (a typed z.array would copy it while parsing).
    const sortInPlace = task({ name: `${n}.sort`, inputs: { xs: z.any(), rows: z.any() }, output: z.number(), cache: { version: '1' } }, ({ xs, rows }) => {
      const list = xs as number[];
      list.sort((a, b) => a - b); // mutates its input: must not reach anyone else
      (rows as number[]).reverse();
      list.push(100);
      return list.length;
    });
    const firstOf = task(
      { name: `${n}.first`, inputs: { xs: z.any(), rows: z.any(), after: z.number() }, output: z.object({ first: z.number(), xs: z.array(z.number()), rows: z.array(z.number()) }), cache: { version: '1' } },
      ({ xs, rows }) => ({ first: (xs as number[])[0] ?? -1, xs: xs as number[], rows: rows as number[] }),
    );
    const flow = workflow({ name: `${n}.flow`, inputs: { rows: z.array(z.number()) } }, ({ rows }) => {
      const made = make({});
      const sorted = sortInPlace({ xs: made, rows });
      return { seen: firstOf({ xs: made, rows, after: sorted }), sorted };
    });
    return { flow };
  }

  it('a later consumer sees the producer\'s output and the workflow input as stored, and a second run hits every node', async () => {
    const { flow } = pipeline();
    const run = await t.mf.run(flow, { rows: [1, 2, 3] });
    expect(await run.result()).toEqual({ seen: { first: 3, xs: [3, 1, 2], rows: [1, 2, 3] }, sorted: 4 });
    const nodes = await run.nodes();
    expect(nodes.find((node) => node.id === 'make')?.output).toEqual([3, 1, 2]);

    // Keys are computed from the stored values, so a repeat hits everywhere (a mutated value would miss).
    const again = await t.mf.run(flow, { rows: [1, 2, 3] });
    expect(await again.result()).toEqual({ seen: { first: 3, xs: [3, 1, 2], rows: [1, 2, 3] }, sorted: 4 });
    expect((await again.nodes()).map((node) => [node.id, node.cacheStatus])).toEqual([
      ['make', 'HIT'],
      ['sort', 'HIT'],
      ['first', 'HIT'],
    ]);
  });
});
