import { describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { useEmbedded } from '../support/modes.js';

/**
 * `mf.explain` compared a missed node with the nearest entry of its task that exists *now*, newest
 * first among equals. So a fan-out on a fresh cache explained each call's MISS by a sibling's entry,
 * written by the same run after the call looked up ("input x: was 2, now 0"), and a MISS explained
 * after a later run named that later run's value as what "was". A miss is explained by what was
 * there when the node looked up: entries written after it started are not candidates.
 */
const square = task({ name: 'later.square', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return x * x;
});
const fan = workflow({ name: 'later.fan', inputs: { n: z.number() } }, ({ n }) => ({ a: square({ x: n }), b: square({ x: 10 }), c: square({ x: 20 }) }));
const one = workflow({ name: 'later.one', inputs: { x: z.number() } }, ({ x }) => ({ y: square({ x }) }));

describe('explain: the nearest entry of a MISS', () => {
  const t = useEmbedded({ each: true });

  it("on a fresh cache is none, not a sibling's entry the same run wrote afterwards", async () => {
    const run = await t.mf.run(fan, { n: 1 });
    await run.result();
    const ids = (await run.nodes()).map((n) => n.id);
    for (const id of ids) {
      const explained = await t.mf.explain(run.id, id);
      expect(explained.status, id).toBe('POPULATED');
      expect(explained.nearest, id).toBeNull();
      expect(explained.differences, id).toEqual([]);
    }
  });

  it('is an entry written before it looked up, not one a later run wrote', async () => {
    await (await t.mf.run(one, { x: 1 })).result();
    const second = await t.mf.run(one, { x: 2 });
    await second.result();
    await (await t.mf.run(one, { x: 3 })).result();
    const explained = await t.mf.explain(second.id, 'square');
    expect(explained.differences).toEqual([{ part: 'input', name: 'x', change: 'changed', was: 1, now: 2 }]);
  });
});
