import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashWith, task, workflow, z } from '@memoflow/sdk';
import { runCli as runCliIn, scratchFolder } from '../support/cli.js';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

/**
 * Saved compute and the early-cutoff report (issue 11, items 3 and 4), end to end: entries record
 * the compute their execution took, a HIT reports it as saved, and a node the cascade reruns with
 * unchanged inputs names the upstream node whose output `hashWith` would have let it hit.
 */
const SLOW_MS = 400;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** stamp (no hashWith unless asked; its cache version picks whether it reruns) -> slow (SLOW_MS) -> fast. */
function pipeline(prefix: string, options: { stampVersion?: string; hashed?: boolean } = {}) {
  const stampOutput = options.hashed === true ? hashWith(z.object({ id: z.number() }), (v) => `id-${v.id}`) : z.object({ id: z.number() });
  const stamp = task({ name: `${prefix}.stamp`, inputs: { n: z.number() }, output: stampOutput, cache: { version: options.stampVersion ?? '1' } }, async ({ n }) => ({ id: n }));
  const slow = task({ name: `${prefix}.slow`, inputs: { s: z.object({ id: z.number() }) }, output: z.number(), cache: { version: '1' } }, async ({ s }) => {
    await sleep(SLOW_MS);
    return s.id * 10;
  });
  const fast = task({ name: `${prefix}.fast`, inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x + 1);
  return workflow({ name: `${prefix}.main`, inputs: { n: z.number() } }, ({ n }) => ({ out: fast({ x: slow({ s: stamp({ n }) }) }) }));
}

describe.each(MODES)('saved compute and early cutoff ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it("a rerun's HITs report the compute they saved: about the first run's execution", async () => {
    const prefix = uniqueName('sc');
    const wf = pipeline(prefix);
    const first = await t.mf.run(wf, { n: 4 });
    expect(await first.result()).toEqual({ out: 41 });
    const ran = await first.nodes();
    expect(ran.map((n) => [n.id, n.cacheStatus, n.savedMs])).toEqual([
      ['stamp', 'POPULATED', null],
      ['slow', 'SKIPPED', null],
      ['fast', 'SKIPPED', null],
    ]);
    // The entry records the attempt's run time: at least the sleep, at most the node's whole time.
    const slowRun = ran.find((n) => n.id === 'slow');
    const slowEntry = (await t.mf.cache.list({ task: `${prefix}.slow` }))[0];
    expect(slowEntry?.durationMs).toBeGreaterThanOrEqual(SLOW_MS);
    expect(slowEntry?.durationMs).toBeLessThanOrEqual(slowRun?.durationMs ?? 0);

    const second = await t.mf.run(wf, { n: 4 });
    expect(await second.result()).toEqual({ out: 41 });
    const hit = await second.nodes();
    expect(hit.map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT', 'HIT']);
    const saved = hit.find((n) => n.id === 'slow')?.savedMs ?? 0;
    expect(saved).toBe(slowEntry?.durationMs);
    expect(saved).toBeGreaterThanOrEqual(SLOW_MS);
    expect(saved).toBeLessThanOrEqual(slowRun?.durationMs ?? 0);
    const hitEvent = t.events.find((e) => e.runId === second.id && e.type === 'node:cache-hit' && e.nodeId === 'slow');
    expect(hitEvent?.savedMs).toBe(saved);
    expect(hit.every((n) => n.cutoffHint === null)).toBe(true);
  });

  it('an upstream without hashWith reruns with the same output: the cascaded nodes name it and what they would have saved; with hashWith they hit', async () => {
    const prefix = uniqueName('cut');
    const first = await t.mf.run(pipeline(prefix), { n: 2 });
    await first.result();
    const slowEntry = (await t.mf.cache.list({ task: `${prefix}.slow` }))[0];
    const fastEntry = (await t.mf.cache.list({ task: `${prefix}.fast` }))[0];

    // A new stamp version: stamp reruns (same output), so slow and fast rerun by the cascade. (A
    // changed task is a new definition: each version runs from a connection of its own, a later process.)
    const later = await t.reopen();
    const bumped = await later.run(pipeline(prefix, { stampVersion: '2' }), { n: 2 });
    expect(await bumped.result()).toEqual({ out: 21 });
    const nodes = await bumped.nodes();
    expect(nodes.map((n) => [n.id, n.cacheStatus, n.cacheReason])).toEqual([
      ['stamp', 'POPULATED', null],
      ['slow', 'SKIPPED', 'upstream-reran'],
      ['fast', 'SKIPPED', 'upstream-reran'],
    ]);
    expect(nodes.find((n) => n.id === 'slow')?.cutoffHint).toEqual({ upstream: 'stamp', savedMs: slowEntry?.durationMs, entry: { runId: first.id, nodeId: 'slow' } });
    expect(nodes.find((n) => n.id === 'fast')?.cutoffHint).toEqual({ upstream: 'slow', savedMs: fastEntry?.durationMs, entry: { runId: first.id, nodeId: 'fast' } });
    expect(nodes.find((n) => n.id === 'stamp')?.cutoffHint).toBeNull();
    // The same through `runs show --json`'s source.
    expect((await later.runs.show(bumped.id)).nodes.find((n) => n.id === 'slow')?.cutoffHint?.upstream).toBe('stamp');

    // The advice works: with stamp's output content-hashed, its rerun no longer cascades.
    const hashed = pipeline(prefix, { hashed: true });
    await (await (await t.reopen()).run(hashed, { n: 2 })).result(); // stamp's entry now has a hash; slow and fast rerun once (their keys use it)
    const again = await (await t.reopen()).run(pipeline(prefix, { hashed: true, stampVersion: '3' }), { n: 2 });
    expect(await again.result()).toEqual({ out: 21 });
    expect((await again.nodes()).map((n) => [n.id, n.cacheStatus])).toEqual([
      ['stamp', 'POPULATED'],
      ['slow', 'HIT'],
      ['fast', 'HIT'],
    ]);
  });
});

/** The CLI's words for it: the run summary, `runs show`, `cache ls`, and their `--json`. */
describe('CLI (embedded): the summary line, runs show and cache ls', () => {
  const FLOWS = `import { task, workflow, z } from '@memoflow/sdk';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const stamp = task({ name: 'scli.stamp', inputs: { n: z.number() }, output: z.object({ id: z.number() }), cache: { version: process.env.STAMP_VERSION ?? '1' } }, async ({ n }) => ({ id: n }));
const slow = task({ name: 'scli.slow', inputs: { s: z.object({ id: z.number() }) }, output: z.number(), cache: { version: '1' } }, async ({ s }) => {
  await sleep(${SLOW_MS});
  return s.id * 10;
});
export const main = workflow({ name: 'scli.main', inputs: { n: z.number() } }, ({ n }) => ({ out: slow({ s: stamp({ n }) }) }));
`;
  let folder: ReturnType<typeof scratchFolder>;
  let flows: string;
  const runCli = (args: readonly string[], env: Record<string, string> = {}) => runCliIn(args, { cwd: folder.dir, env: { MEMOFLOW_DATA_DIR: `${folder.dir}/.memoflow`, ...env }, timeoutMs: 90_000 });
  beforeAll(() => {
    folder = scratchFolder('saved');
    flows = folder.write('flows.mjs', FLOWS);
  });
  afterAll(() => {
    folder.remove();
  });
  const runIdOf = (stderr: string): string => {
    const match = /^run (\S+) succeeded /m.exec(stderr);
    if (match?.[1] === undefined) throw new Error(`no 'run <id> succeeded' line in:\n${stderr}`);
    return match[1];
  };

  it('says how many nodes came from the cache and what that saved, and names the early cutoff', async () => {
    const first = await runCli(['run', flows, 'scli.main', '--input', 'n=3']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/; 0 of 2 from the cache\)$/m);

    const second = await runCli(['run', flows, 'scli.main', '--input', 'n=3']);
    expect(second.code, second.stderr).toBe(0);
    const summary = /^run \S+ succeeded \(2 nodes: 2 HIT; 2 of 2 from the cache, (\d+ ms|[\d.]+ s) of compute saved\)$/m.exec(second.stderr);
    expect(summary, second.stderr).not.toBeNull();
    const secondId = runIdOf(second.stderr);

    const shown = await runCli(['runs', 'show', secondId, '--json']);
    const report = JSON.parse(shown.stdout) as { nodes: { id: string; savedMs: number | null }[] };
    expect(report.nodes.find((n) => n.id === 'slow')?.savedMs).toBeGreaterThanOrEqual(SLOW_MS);

    const listed = await runCli(['cache', 'ls']);
    expect(listed.stdout.split('\n')[0]).toMatch(/\bNODE\s+COMPUTE\s+CREATED$/);
    expect(listed.stdout).toMatch(/scli\.slow .* slow\s+(\d+ ms|\d\.\d s) /);
    const listedJson = JSON.parse((await runCli(['cache', 'ls', '--json'])).stdout) as { task: string; durationMs: number | null }[];
    expect(listedJson.find((e) => e.task === 'scli.slow')?.durationMs).toBeGreaterThanOrEqual(SLOW_MS);

    // stamp reruns (a new version) with the same output: slow reruns by the cascade, and says it need not have.
    const bumped = await runCli(['run', flows, 'scli.main', '--input', 'n=3', '--json'], { STAMP_VERSION: '2' });
    expect(bumped.code, bumped.stderr).toBe(0);
    const result = JSON.parse(bumped.stdout.trim().split('\n').at(-1) ?? '{}') as { runId: string; cache: { fromCache: number; cutoffHints: { node: string; upstream: string; savedMs: number | null }[] } };
    expect(result.cache.fromCache).toBe(0);
    expect(result.cache.cutoffHints.map((h) => [h.node, h.upstream])).toEqual([['slow', 'stamp']]);
    const showBumped = await runCli(['runs', 'show', result.runId]);
    expect(showBumped.stdout).toMatch(/^0 of 2 from the cache$/m);
    expect(showBumped.stdout).toMatch(/^ {2}slow: upstream stamp reran; would have hit the entry of run \S+ node slow, saving (\d+ ms|\d\.\d s)$/m);
  }, 240_000); // seven CLI processes, each opening the embedded store
});
