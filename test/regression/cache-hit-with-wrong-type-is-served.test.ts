import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entryChecksum } from '@memoflow/engine';
import { task, workflow, z } from '@memoflow/sdk';
import { uniqueName } from '../support/modes.js';
import { SQL_MODES, type SqlBacked } from '../support/sql-backed.js';

/*
 * A cache hit was served whatever its value: "garbage" stored (with a valid checksum) for a
 * z.number() output came back as the run's result, or failed the next node forever. Now a hit is
 * checked against the task's output schema (the node spec's outputSchema, zod io 'output'): a
 * value of the wrong type is a miss with a warning, the node reruns and the entry is repaired.
 */
function pipeline() {
  const ran = { score: 0, report: 0 };
  const score = task({ name: uniqueName('reg.score'), inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => {
    ran.score += 1;
    return x + 0.5;
  });
  // Its output has a transform: the stored value is the transformed one, which io 'input' would reject.
  const label = task(
    { name: uniqueName('reg.label'), inputs: { s: z.number() }, output: z.string().transform((text) => text.length), cache: { version: '1' } },
    async ({ s }) => {
      ran.report += 1;
      return `score ${s}`;
    },
  );
  const wf = workflow({ name: uniqueName('reg.typed'), inputs: { x: z.number() } }, ({ x }) => {
    const s = score({ x });
    return { s, n: label({ s }) };
  });
  return { wf, ran };
}

describe.each(SQL_MODES)('a cache hit of the wrong type ($name)', (mode) => {
  let t: SqlBacked;
  // PGlite's start-up is slow on a loaded machine: generous hook time.
  beforeEach(async () => {
    t = await mode.open();
  }, 120_000);
  afterEach(async () => {
    await t.cleanup();
  });

  it('is a miss with a warning; the rerun returns the right result and repairs the entry', async () => {
    const { wf, ran } = pipeline();
    const first = await t.mf().run(wf, { x: 1 });
    expect(await first.result()).toEqual({ s: 1.5, n: 9 });
    // A hit of an output with a transform is served (its stored value is the transformed number).
    const second = await t.mf().run(wf, { x: 1 });
    expect(await second.result()).toEqual({ s: 1.5, n: 9 });
    expect((await second.nodes()).map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT']);

    const key = (await first.nodes()).find((n) => n.task.startsWith('reg.score'))?.cacheKey ?? '';
    // "garbage" with a checksum that is valid for it: only the schema check can catch it.
    const forged = await t.sql(`UPDATE cache_entries SET value = '"garbage"'::json, checksum = $1 WHERE kind = 'output' AND key = $2 RETURNING key`, [
      entryChecksum({ key, kind: 'output', value: 'garbage', valueHash: null }),
      key,
    ]);
    expect(forged).toHaveLength(1);

    const before = { ...ran };
    const third = await t.mf().run(wf, { x: 1 });
    expect(await third.result()).toEqual({ s: 1.5, n: 9 });
    expect(ran.score).toBe(before.score + 1);
    const [scoreNode, labelNode] = await third.nodes();
    expect(scoreNode).toMatchObject({ status: 'succeeded', cacheStatus: 'POPULATED', cacheReason: expect.stringContaining("does not match the task's output schema") });
    expect(labelNode?.cacheStatus).toBe('SKIPPED'); // the cascade: its upstream reran
    const warnings = t.events.filter((e) => e.runId === third.id && e.type === 'node:cache-corrupt');
    expect(warnings).toMatchObject([{ level: 'warn', cacheStatus: 'MISS', nodeId: scoreNode?.id }]);

    const fourth = await t.mf().run(wf, { x: 1 });
    expect(await fourth.result()).toEqual({ s: 1.5, n: 9 });
    expect((await fourth.nodes()).map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT']);
  });
}, 120_000);
