import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashJson } from '@memoflow/engine';
import { task, workflow, z } from '@memoflow/sdk';
import { uniqueName } from '../support/modes.js';
import { SQL_MODES, type SqlBacked } from '../support/sql-backed.js';

/*
 * The catalog's checksum covered the value only: an entry whose value and checksum were copied from
 * another key of the same task (a manual edit, a bad restore) was served, so x=2 returned x=1's
 * result. Now the checksum binds key, kind, value and valueHash: such an entry is a miss with a
 * warning, the node reruns and its entry is repaired. An entry of the previous release (value-only
 * checksum) is treated the same way.
 */
function pipeline() {
  let executions = 0;
  const double = task({ name: uniqueName('reg.double'), inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => {
    executions += 1;
    return x * 2;
  });
  const wf = workflow({ name: uniqueName('reg.copied'), inputs: { x: z.number() } }, ({ x }) => ({ y: double({ x }) }));
  return { wf, executions: () => executions };
}

describe.each(SQL_MODES)('a cache entry copied from another key ($name)', (mode) => {
  let t: SqlBacked;
  // PGlite's start-up is slow on a loaded machine: generous hook time.
  beforeEach(async () => {
    t = await mode.open();
  }, 120_000);
  afterEach(async () => {
    await t.cleanup();
  });

  it('is a miss with a warning, the run returns the right result, and the entry is repaired', async () => {
    const { wf, executions } = pipeline();
    const one = await t.mf().run(wf, { x: 1 });
    expect(await one.result()).toEqual({ y: 2 });
    const two = await t.mf().run(wf, { x: 2 });
    expect(await two.result()).toEqual({ y: 4 });
    const keyOne = (await one.nodes())[0]?.cacheKey;
    const keyTwo = (await two.nodes())[0]?.cacheKey;
    expect(keyOne).not.toBe(keyTwo);

    const copied = await t.sql(
      `UPDATE cache_entries AS t SET value = s.value, value_hash = s.value_hash, checksum = s.checksum
       FROM cache_entries AS s WHERE t.kind = 'output' AND s.kind = 'output' AND t.key = $1 AND s.key = $2 RETURNING t.key`,
      [keyTwo, keyOne],
    );
    expect(copied).toHaveLength(1);

    const before = executions();
    const again = await t.mf().run(wf, { x: 2 });
    expect(await again.result()).toEqual({ y: 4 });
    expect(executions()).toBe(before + 1);
    const [node] = await again.nodes();
    expect(node).toMatchObject({ cacheStatus: 'POPULATED', cacheReason: expect.stringContaining('corrupt entry: checksum mismatch') });
    const warnings = t.events.filter((e) => e.runId === again.id && e.type === 'node:cache-corrupt');
    expect(warnings).toMatchObject([{ level: 'warn', cacheStatus: 'MISS' }]); // the event says how the node goes on

    const repaired = await t.mf().run(wf, { x: 2 });
    expect(await repaired.result()).toEqual({ y: 4 });
    expect((await repaired.nodes())[0]?.cacheStatus).toBe('HIT');
    expect(executions()).toBe(before + 1);
  });

  it("an entry of the previous release (value-only checksum) is a miss with a warning saying so, then rewritten", async () => {
    const { wf, executions } = pipeline();
    const first = await t.mf().run(wf, { x: 3 });
    await first.result();
    const key = (await first.nodes())[0]?.cacheKey;
    // What the previous release stored: the SHA-256 of the value's canonical JSON.
    expect(await t.sql(`UPDATE cache_entries SET checksum = $1 WHERE kind = 'output' AND key = $2 RETURNING key`, [hashJson(6), key])).toHaveLength(1);
    const before = executions();
    const upgraded = await t.mf().run(wf, { x: 3 });
    expect(await upgraded.result()).toEqual({ y: 6 });
    expect(executions()).toBe(before + 1);
    expect((await upgraded.nodes())[0]).toMatchObject({ cacheStatus: 'POPULATED', cacheReason: expect.stringContaining('written by an earlier release, not bound to its key') });
    const next = await t.mf().run(wf, { x: 3 });
    await next.result();
    expect((await next.nodes())[0]?.cacheStatus).toBe('HIT');
  });
}, 120_000);
