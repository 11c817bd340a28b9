import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { connect, dynamic, task, workflow, z } from '@memoflow/sdk';
import { openPgliteStorage } from '@memoflow/catalog';

/**
 * A future copied the dynamic's input into every child that received it: `rows.map((_, i) =>
 * work({ rows, i }))` over 1,000 numbers (about 5 KB) stored a 5.7 MB future. Children now refer to
 * the input, so the future grows with the number of children only.
 */
let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'memoflow-future-size-'));
}, 180_000);
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
}, 180_000);

it('the stored future of a 1,000-child fan-out over a 5 KB input is O(children): under 200 KB, not 5.7 MB', async () => {
  const work = task({ name: 'size.work', inputs: { rows: z.array(z.number()), i: z.number().int() }, output: z.number(), cache: { version: '1' } }, async ({ rows, i }) => rows[i] ?? -1);
  const fan = dynamic(
    { name: 'size.fan', inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' }, tasks: [work] },
    ({ rows }) => rows.map((_, i) => work({ rows, i })),
  );
  const main = workflow({ name: 'size.main', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ out: fan({ rows }) }));
  const rows = Array.from({ length: 1000 }, (_, i) => 1000 + i * 3);
  expect(JSON.stringify(rows).length).toBeGreaterThan(4900);

  const mf = await connect({ dataDir, log: 'silent' });
  const run = await mf.run(main, { rows });
  expect((await run.result()).out).toEqual(rows);
  const key = (await run.nodes()).find((node) => node.id === 'fan')?.cacheKey;
  await mf.close();

  const storage = await openPgliteStorage({ dataDir });
  try {
    const stored = (await storage.catalog.lookup('future', [key as string])).hits.get(key as string);
    const bytes = Buffer.byteLength(JSON.stringify(stored?.value));
    // A child is its id, task, two bindings and its place in the result (about 170 bytes; the
    // signature and settings its task's children share are stored once); copying rows into each
    // child made it 1,000 x 5 KB (the bench's (d4): 173 KB now, 5.5 MB in the previous format).
    expect(bytes).toBeGreaterThan(1000 * 50);
    expect(bytes).toBeLessThan(200 * 1024);
  } finally {
    await storage.close();
  }
}, 180_000);
