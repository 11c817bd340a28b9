import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamic, hashWith, task, workflow, z, MemoflowError, type Memoflow, type NodeReport, type WorkflowPlan } from '@memoflow/sdk';
import { runCli, scratchFolder } from '../support/cli.js';
import { MODES, useEmbedded, type TestConnection } from '../support/modes.js';

/**
 * `mf.plan` / `memoflow plan` against a real catalog (embedded: PGlite): predictions for a fresh
 * cache, after a run, with a changed input, behind a content-hashed upstream, with overwriteCache,
 * for a dynamic node whose future is stored; each checked against the run that follows, and the
 * plan itself leaves no trace (no run, no entry).
 */
function flows() {
  const calls = { load: 0, parse: 0, body: 0 };
  const load = task({ name: 'pl.load', inputs: { day: z.string() }, output: z.array(z.number()), cache: { version: '1' } }, async ({ day }) => {
    calls.load++;
    return [day.length, -2, 3];
  });
  const clean = task({ name: 'pl.clean', inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' } }, async ({ rows }) => rows.filter((r) => r >= 0));
  const total = task({ name: 'pl.total', inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ rows }) => rows.reduce((a, b) => a + b, 0));
  const rates = task({ name: 'pl.rates', inputs: { currency: z.string() }, output: z.number(), cache: { version: '1' } }, async ({ currency }) => currency.length / 2);
  const report = task({ name: 'pl.report', inputs: { total: z.number(), rate: z.number() }, output: z.string(), cache: { version: '1' } }, async ({ total, rate }) => `${total * rate}`);
  const etl = workflow({ name: 'pl.etl', inputs: { day: z.string(), currency: z.string() } }, ({ day, currency }) => ({
    report: report({ total: total({ rows: clean({ rows: load({ day }) }) }), rate: rates({ currency }) }),
  }));

  // Content-hashed: the parsed rows are hashed by their sorted content, so `count` is keyed by it.
  const Rows = hashWith(z.array(z.number()), (rows) => JSON.stringify([...rows].sort((a, b) => a - b)));
  const parse = task({ name: 'pl.parse', inputs: { text: z.string() }, output: Rows, cache: { version: '1' } }, async ({ text }) => {
    calls.parse++;
    return text.split(',').map(Number);
  });
  const count = task({ name: 'pl.count', inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ rows }) => rows.length);
  const hashed = workflow({ name: 'pl.hashed', inputs: { text: z.string() } }, ({ text }) => ({ n: count({ rows: parse({ text }) }) }));

  const square = task({ name: 'pl.square', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x * x);
  const squares = dynamic({ name: 'pl.squares', inputs: { n: z.number().int() }, output: z.array(z.number()), cache: { version: '1' }, tasks: [square] }, ({ n }) => {
    calls.body++;
    return Array.from({ length: n }, (_, x) => square({ x }));
  });
  const sum = task({ name: 'pl.sum', inputs: { xs: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ xs }) => xs.reduce((a, b) => a + b, 0));
  const fan = workflow({ name: 'pl.fan', inputs: { n: z.number().int() } }, ({ n }) => ({ sum: sum({ xs: squares({ n }) }) }));
  return { calls, etl, hashed, fan };
}

const predicted = (plan: WorkflowPlan) => Object.fromEntries(plan.nodes.map((n) => [n.node, n.prediction === 'SKIPPED' ? `SKIPPED(${n.skipReason ?? ''})` : n.prediction]));
const ran = (nodes: readonly NodeReport[]) => Object.fromEntries(nodes.map((n) => [n.id, n.cacheStatus === 'SKIPPED' ? `SKIPPED(${n.cacheReason ?? ''})` : n.cacheStatus]));

/** What a MISS prediction becomes once the run wrote the entry. */
const asRun = (prediction: { [node: string]: string }) => Object.fromEntries(Object.entries(prediction).map(([node, p]) => [node, p === 'MISS' ? 'POPULATED' : p]));

describe('plan (embedded)', () => {
  const t = useEmbedded({ each: true });

  async function traces(mf: Memoflow) {
    return { runs: (await mf.runs.list()).length, entries: JSON.stringify(await mf.cache.list({ limit: 1000 })) };
  }

  it('a fresh cache: MISS and SKIPPED; after the run: all HIT; the plan leaves no run and no entry', async () => {
    const f = flows();
    const inputs = { day: '2026-12-01', currency: 'EUR' };
    const before = await traces(t.mf);
    const fresh = await t.mf.plan(f.etl, inputs);
    expect(predicted(fresh)).toEqual({ load: 'MISS', clean: 'SKIPPED(upstream-reran)', total: 'SKIPPED(upstream-reran)', rates: 'MISS', report: 'SKIPPED(upstream-reran)' });
    expect(fresh.lookups).toEqual({ batches: 1, queries: 1, keys: 2 });
    expect(await traces(t.mf)).toEqual(before);
    expect(f.calls.load).toBe(0);

    const first = await t.mf.run(f.etl, inputs);
    await first.result();
    expect(ran(await first.nodes())).toEqual(asRun(predicted(fresh)));

    const warm = await t.mf.plan(f.etl, inputs);
    expect(predicted(warm)).toEqual({ load: 'HIT', clean: 'HIT', total: 'HIT', rates: 'HIT', report: 'HIT' });
    // Levels: {load, rates}, clean, total, report.
    expect(warm.lookups).toEqual({ batches: 4, queries: 4, keys: 5 });
    const keys = Object.fromEntries((await first.nodes()).map((n) => [n.id, n.cacheKey]));
    for (const node of warm.nodes) {
      expect(node.key).toBe(keys[node.node]);
      expect(node.entry?.runId).toBe(first.id);
      expect(node.reason).toContain(`entry written by run ${first.id} at`);
    }
    const again = await t.mf.run(f.etl, inputs);
    await again.result();
    expect(ran(await again.nodes())).toEqual(predicted(warm));
  });

  it('a changed input: its node MISSes, its downstream is SKIPPED naming it, the rest HITs; the run agrees', async () => {
    const f = flows();
    await (await t.mf.run(f.etl, { day: '2026-12-01', currency: 'EUR' })).result();
    const plan = await t.mf.plan(f.etl, { day: '2026-12-02', currency: 'EUR' });
    expect(predicted(plan)).toEqual({ load: 'MISS', clean: 'SKIPPED(upstream-reran)', total: 'SKIPPED(upstream-reran)', rates: 'HIT', report: 'SKIPPED(upstream-reran)' });
    expect(plan.nodes.find((n) => n.node === 'clean')).toMatchObject({ upstream: 'load', key: null, reason: "upstream 'load' runs (MISS): the cascade runs this without a lookup" });
    const run = await t.mf.run(f.etl, { day: '2026-12-02', currency: 'EUR' });
    await run.result();
    expect(ran(await run.nodes())).toEqual(asRun(predicted(plan)));
  });

  it('behind a content-hashed upstream that runs, the reader is UNKNOWN: here the run then hits', async () => {
    const f = flows();
    await (await t.mf.run(f.hashed, { text: '3,1,2' })).result();
    const plan = await t.mf.plan(f.hashed, { text: '1,2,3' });
    expect(predicted(plan)).toEqual({ parse: 'MISS', count: 'UNKNOWN' });
    expect(plan.nodes[1]?.reason).toContain("output of 'parse', which runs first and is content-hashed (hashWith)");
    const run = await t.mf.run(f.hashed, { text: '1,2,3' });
    await run.result();
    expect(ran(await run.nodes())).toEqual({ parse: 'POPULATED', count: 'HIT' });
  });

  it('overwriteCache: every node SKIPPED(overwrite), without a lookup', async () => {
    const f = flows();
    await (await t.mf.run(f.etl, { day: 'd', currency: 'EUR' })).result();
    const plan = await t.mf.plan(f.etl, { day: 'd', currency: 'EUR' }, { overwriteCache: true });
    expect(new Set(plan.nodes.map((n) => `${n.prediction}(${n.skipReason ?? ''})`))).toEqual(new Set(['SKIPPED(overwrite)']));
    expect(plan.lookups.queries).toBe(0);
    expect(plan.overwriteCache).toBe(true);
  });

  it('a dynamic node whose future is stored: FUTURE_HIT, its children planned under it, its reader HIT', async () => {
    const f = flows();
    const first = await t.mf.run(f.fan, { n: 3 });
    expect(await first.result()).toEqual({ sum: 5 });
    await t.mf.cache.evict({ task: 'pl.squares', kind: 'output' });
    const plan = await t.mf.plan(f.fan, { n: 3 });
    expect(predicted(plan)).toEqual({ squares: 'FUTURE_HIT', 'squares.square': 'HIT', 'squares.square-2': 'HIT', 'squares.square-3': 'HIT', sum: 'HIT' });
    expect(plan.nodes.filter((n) => n.parent === 'squares')).toHaveLength(3);
    expect(plan.nodes[0]?.reason).toContain(`its compiled sub-workflow written by run ${first.id} at`);
    const run = await t.mf.run(f.fan, { n: 3 });
    await run.result();
    expect(f.calls.body).toBe(1);
    expect(ran(await run.nodes())).toEqual(predicted(plan));
    // Another n: the body must run, and what it returns is not known before it does.
    expect(predicted(await t.mf.plan(f.fan, { n: 4 }))).toEqual({ squares: 'MISS', sum: 'UNKNOWN' });
  });

  it('bad calls are clear errors naming workflow and field, and read nothing', async () => {
    const f = flows();
    await expect(t.mf.plan(f.etl, { day: 'd' } as never)).rejects.toMatchObject({ code: 'MISSING_INPUT', location: { workflow: 'pl.etl', field: 'currency' } });
    await expect(t.mf.plan(f.etl, { day: 5, currency: 'EUR' } as never)).rejects.toMatchObject({ code: 'INPUT_SCHEMA_MISMATCH' });
    await expect(t.mf.plan({} as never, {} as never)).rejects.toBeInstanceOf(MemoflowError);
    await expect(t.mf.plan(f.etl, { day: 'd', currency: 'EUR' }, null as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', location: { field: 'options' } });
    await expect(t.mf.plan(f.etl, { day: 'd', currency: 'EUR' }, { overwriteCache: 'yes' as never })).rejects.toMatchObject({ code: 'INVALID_OPTION', location: { field: 'overwriteCache' } });
    await expect(t.mf.plan(f.etl, { day: 'd', currency: 'EUR' }, { project: 'a b' })).rejects.toMatchObject({ location: { field: 'project' } });
    // Odd characters in ids and values are data, not syntax.
    const odd = await t.mf.plan(f.etl, { day: 'é\u{1F600}"\\', currency: '' }, { project: 'p.q-r_s', domain: 'd' });
    expect(odd.counts).toMatchObject({ MISS: 2, SKIPPED: 3 });
  });
});

describe.each(MODES.filter((mode) => mode.name !== 'embedded'))('plan ($name)', (mode) => {
  let connection: TestConnection | undefined;
  afterAll(async () => connection?.cleanup());

  it('predicts from the shared catalog what the run then does', async () => {
    const t = await mode.open();
    connection = t;
    const f = flows();
    await (await t.mf.run(f.etl, { day: 'a', currency: 'EUR' })).result();
    const plan = await t.mf.plan(f.etl, { day: 'b', currency: 'EUR' });
    expect(predicted(plan)).toEqual({ load: 'MISS', clean: 'SKIPPED(upstream-reran)', total: 'SKIPPED(upstream-reran)', rates: 'HIT', report: 'SKIPPED(upstream-reran)' });
    const run = await t.mf.run(f.etl, { day: 'b', currency: 'EUR' });
    await run.result();
    expect(ran(await run.nodes())).toEqual(asRun(predicted(plan)));
  });
});

const FLOWS = `import { task, workflow, z } from '@memoflow/sdk';
export const double = task({ name: 'cli.double', inputs: { n: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ n }) => n * 2);
export const inc = task({ name: 'cli.inc', inputs: { n: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ n }) => n + 1);
export const main = workflow({ name: 'cli.plan', inputs: { n: z.number() } }, ({ n }) => ({ out: inc({ n: double({ n }) }) }));
`;

describe('memoflow plan (the CLI, embedded)', () => {
  let folder: ReturnType<typeof scratchFolder>;
  let flowsFile: string;
  beforeAll(() => {
    folder = scratchFolder('plan');
    flowsFile = folder.write('flows.mjs', FLOWS);
  });
  afterAll(() => folder.remove());

  it('draws the DAG with a prediction per node, prints --json, and refuses bad inputs before the store opens', async () => {
    const dataDir = join(folder.dir, 'data');
    const bad = await runCli(['plan', flowsFile, 'cli.plan', '--input', 'nope=1', '--data-dir', dataDir]);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain("UNKNOWN_INPUT: workflow 'cli.plan', field 'nope'");
    expect(existsSync(dataDir)).toBe(false);

    const fresh = await runCli(['plan', flowsFile, 'cli.plan', '--input', 'n=3', '--data-dir', dataDir]);
    expect(fresh.code, fresh.stderr).toBe(0);
    const lines = fresh.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('plan for cli.plan in default/development (nothing runs)');
    expect(lines[1]).toMatch(/^NODE\s+PLAN\s+TASK\s+KEY\s+WHY$/);
    expect(lines[2]).toMatch(/^double\s+MISS\s+cli\.double\s+[0-9a-f]{10}\s+no entry under this key$/);
    expect(lines[3]).toMatch(/^└─ inc\s+SKIPPED\(upstream-reran\)\s+cli\.inc\s+-\s+upstream 'double' runs \(MISS\): the cascade runs this without a lookup$/);
    expect(lines[4]).toBe('2 nodes: 1 MISS, 1 SKIPPED; 1 key looked up in 1 catalog query (1 level)');

    const run = await runCli(['run', flowsFile, 'cli.plan', '--input', 'n=3', '--data-dir', dataDir]);
    expect(run.code, run.stderr).toBe(0);
    const json = await runCli(['plan', flowsFile, 'cli.plan', '--input', 'n=3', '--data-dir', dataDir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout) as WorkflowPlan;
    expect(plan.nodes.map((n) => [n.node, n.prediction])).toEqual([
      ['double', 'HIT'],
      ['inc', 'HIT'],
    ]);
    expect(plan.lookups).toEqual({ batches: 2, queries: 2, keys: 2 });
  }, 240_000); // three processes open an embedded store (PGlite creates the first in seconds)
});
