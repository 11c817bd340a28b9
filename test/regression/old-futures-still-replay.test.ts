import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Json } from '@memoflow/engine';
import { connect, dynamic, NonRetryableError, task, workflow, z } from '@memoflow/sdk';
import { openPgliteStorage } from '@memoflow/catalog';

/**
 * Futures written before they referred to the dynamic's inputs hold every value as a literal,
 * declare no inputs and store nodes in full. Catalogs keep them for up to 28 days: an upgraded
 * controller must still replay them (FUTURE_HIT), as they are.
 */
let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'memoflow-old-future-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** A future as the previous format stored it: children's input references replaced by the values. */
function toOldFormat(stored: { [field: string]: Json }, inputs: { [name: string]: Json }): Json {
  const shared = stored['sharedNodeFields'] as { [task: string]: { [field: string]: Json } };
  const inline = (binding: Json): Json => {
    const b = binding as { kind: string; name?: string; items?: Json[]; fields?: { [name: string]: Json } };
    if (b.kind === 'input') return { kind: 'literal', value: inputs[b.name as string] as Json };
    if (b.kind === 'array') return { kind: 'array', items: (b.items ?? []).map(inline) };
    if (b.kind === 'object') return { kind: 'object', fields: Object.fromEntries(Object.entries(b.fields ?? {}).map(([k, v]) => [k, inline(v)])) };
    return binding;
  };
  const nodes = (stored['nodes'] as Array<{ [field: string]: Json }>).map((node) => {
    const full = { ...shared[node['task'] as string], ...node };
    return { ...full, inputs: Object.fromEntries(Object.entries(full['inputs'] as { [name: string]: Json }).map(([k, v]) => [k, inline(v)])) };
  });
  return { specVersion: stored['specVersion'] as Json, name: stored['name'] as Json, inputs: {}, hashedInputs: [], nodes, outputs: stored['outputs'] as Json };
}

it('a future in the previous format (literals, no inputs, nodes in full) is still replayed', async () => {
  const state = { failing: true, bodies: 0, seen: [] as number[][] };
  const work = task({ name: 'old.work', inputs: { rows: z.array(z.number()), i: z.number().int() }, output: z.number(), cache: { version: '1' } }, async ({ rows, i }) => {
    state.seen.push(rows);
    if (state.failing && i === 1) throw new NonRetryableError('child 1 fails');
    return rows[i] ?? -1;
  });
  const fan = dynamic(
    { name: 'old.fan', inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' }, tasks: [work] },
    ({ rows }) => {
      state.bodies++;
      return rows.map((_, i) => work({ rows, i }));
    },
  );
  const main = workflow({ name: 'old.main', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ out: fan({ rows }) }));

  let mf = await connect({ dataDir, log: 'silent' });
  const first = await mf.run(main, { rows: [5, 6, 7] });
  await expect(first.result()).rejects.toThrow(/child 1 fails/);
  const key = (await first.nodes()).find((node) => node.id === 'fan')?.cacheKey as string;
  await mf.close();

  const storage = await openPgliteStorage({ dataDir });
  try {
    const entry = (await storage.catalog.lookup('future', [key])).hits.get(key);
    expect(entry).toBeDefined();
    const { createdAt: _, ...rest } = entry as NonNullable<typeof entry>;
    await storage.catalog.put([{ ...rest, value: toOldFormat(entry?.value as { [field: string]: Json }, { rows: [5, 6, 7] }) }]);
    const rewritten = (await storage.catalog.lookup('future', [key])).hits.get(key)?.value as { inputs: Json; nodes: Array<{ inputs: { rows: Json } }> };
    expect(rewritten.inputs).toEqual({});
    expect(rewritten.nodes[0]?.inputs.rows).toEqual({ kind: 'literal', value: [5, 6, 7] });
  } finally {
    await storage.close();
  }

  state.failing = false;
  state.seen = [];
  mf = await connect({ dataDir, log: 'silent' });
  try {
    const second = await mf.run(main, { rows: [5, 6, 7] });
    expect(await second.result()).toEqual({ out: [5, 6, 7] });
    expect((await second.nodes()).find((node) => node.id === 'fan')?.cacheStatus).toBe('FUTURE_HIT');
    expect(state.bodies).toBe(1);
    expect(state.seen).toEqual([[5, 6, 7]]); // only the failed child ran; the others hit
  } finally {
    await mf.close();
  }
}, 180_000);
