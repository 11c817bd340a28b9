import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as runCliIn, scratchFolder } from '../support/cli.js';
import { dropSchema, TEST_DATABASE_URL } from '../support/modes.js';

/**
 * The terminal picture (issue 11, item 5) as a user sees it, through the built CLI on Postgres (a
 * schema of the test's own): `memoflow run` prints one line per node when it settles (piped, so
 * plain lines), `--verbose` a line per event, and `runs show` the DAG as a tree with a dynamic
 * node's children under it. One task has a 200-character name, so its node id is that long.
 */
const LONG = 'l'.repeat(200);
const FLOWS = `import { dynamic, task, workflow, z } from '@memoflow/sdk';
export const load = task({ name: 'pic.load', inputs: { n: z.number() }, output: z.array(z.number()), cache: { version: '1' } }, async ({ n }) => Array.from({ length: n }, (_, i) => i + 1));
export const square = task({ name: 'pic.square', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x * x);
export const fan = dynamic({ name: 'pic.fan', inputs: { xs: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' }, tasks: [square] }, ({ xs }) => xs.map((x) => square({ x })));
export const total = task({ name: 'pic.total', inputs: { xs: z.array(z.number()), base: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ xs, base }) => xs.reduce((a, b) => a + b, 0) + base.length);
export const long = task({ name: 'pic.${LONG}', inputs: { xs: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ xs }) => xs.length);
export const main = workflow({ name: 'pic.main', inputs: { n: z.number() } }, ({ n }) => {
  const xs = load({ n });
  return { total: total({ xs: fan({ xs }), base: xs }), count: long({ xs }) };
});
`;
/** load, fan, total, the long one, and fan's three children. */
const NODES = ['load', 'fan', 'total', LONG, 'fan.square', 'fan.square-2', 'fan.square-3'];

let folder: ReturnType<typeof scratchFolder>;
let flows: string;
const schema = `mf_pic_${randomBytes(6).toString('hex')}`;
const runCli = (args: readonly string[]) => runCliIn(args, { env: { DATABASE_URL: TEST_DATABASE_URL, MEMOFLOW_SCHEMA: schema } });
beforeAll(() => {
  folder = scratchFolder('picture');
  flows = folder.write('flows.mjs', FLOWS);
});
afterAll(async () => {
  folder.remove();
  await dropSchema(schema);
});

/** The node lines: they start with a time. */
const nodeLines = (stderr: string) => stderr.split('\n').filter((line) => /^\d\d:\d\d:\d\d\.\d{3} \S+ \S/.test(line) && !/ pic\.main run /.test(line));
/** The line of a node: its id is the third field (cut in the middle when long). */
const idOf = (line: string) => line.split(/\s+/)[2] ?? '';

describe('CLI: the terminal picture', () => {
  it('run prints one line per node when it settles; --verbose a line per event; runs show draws the tree', async () => {
    const first = await runCli(['run', flows, 'pic.main', '--input', 'n=3']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ total: 1 + 4 + 9 + 3, count: 3 });
    const lines = nodeLines(first.stderr);
    // One line per node, and the long id cut in the middle so its columns line up with the rest.
    expect(lines, first.stderr).toHaveLength(NODES.length);
    const ids = lines.map(idOf);
    expect(ids.filter((id) => !id.includes('…')).sort()).toEqual(NODES.filter((id) => id !== LONG).sort());
    expect(ids.filter((id) => /^l+…l+$/.test(id))).toHaveLength(1);
    const keyAt = lines.map((line) => line.indexOf(' key '));
    expect(new Set(keyAt).size, first.stderr).toBe(1);
    expect(first.stderr).not.toMatch(/ running$/m);
    expect(lines.find((line) => idOf(line) === 'load')).toMatch(/ pic\.load +POPULATED +key [0-9a-f]{10} +\d+ ms {2}ran, result cached$/);
    expect(lines.find((line) => idOf(line) === 'fan')).toMatch(/ SKIPPED\(upstream-reran\) .* ran, result cached; expanded into 3 node\(s\)/);
    const runId = /^run (\S+) succeeded/m.exec(first.stderr)?.[1] ?? '';

    const second = await runCli(['run', flows, 'pic.main', '--input', 'n=3']);
    expect(second.code, second.stderr).toBe(0);
    const hits = nodeLines(second.stderr);
    // fan hits as a whole: its children do not run again.
    expect(hits).toHaveLength(4);
    for (const line of hits) expect(line).toMatch(/ HIT +key [0-9a-f]{10} +\d+ ms {2}served from the cache/);

    const verbose = await runCli(['run', flows, 'pic.main', '--input', 'n=4', '--verbose']);
    expect(verbose.code, verbose.stderr).toBe(0);
    const loadLines = nodeLines(verbose.stderr).filter((line) => idOf(line) === 'load');
    expect(loadLines.map((line) => line.split(/\s+/).pop())).toEqual(['running', 'done', 'cached']);

    const shown = await runCli(['runs', 'show', runId]);
    expect(shown.code, shown.stderr).toBe(0);
    const out = shown.stdout.split('\n');
    expect(out[0]).toMatch(new RegExp(`^run ${runId} {2}pic\\.main {2}succeeded `));
    const header = out.findIndex((line) => line.startsWith('NODE '));
    expect(out[header]).toMatch(/^NODE +TASK +STATUS +CACHE +KEY +ATTEMPTS +DURATION$/);
    const tree = out.slice(header + 1, header + 1 + NODES.length);
    expect(tree[0]).toMatch(/^load +pic\.load +succeeded +POPULATED +[0-9a-f]{10} +1 +\d+ ms$/);
    const fanAt = tree.findIndex((line) => /^[├└]─ fan /.test(line));
    // fan's children right under it, by their local names, one level deeper.
    expect(tree.slice(fanAt + 1, fanAt + 4)).toEqual([
      expect.stringMatching(/^│ {2}├─ \.square +pic\.square +succeeded +SKIPPED\(upstream-reran\)/),
      expect.stringMatching(/^│ {2}├─ \.square-2 +pic\.square/),
      expect.stringMatching(/^│ {2}└─ \.square-3 +pic\.square/),
    ]);
    expect(tree.find((line) => line.includes('total'))).toMatch(/^└─ total .* ← also needs fan$/);
    const cacheAt = tree.map((line) => line.search(/(POPULATED|SKIPPED)/));
    expect(new Set(cacheAt).size, shown.stdout).toBe(1);
    expect(tree.some((line) => /l+…l+ +pic\.l+…/.test(line)), shown.stdout).toBe(true);
    expect(out[header + 1 + NODES.length]).toBe(`outputs: ${JSON.stringify({ total: 17, count: 3 })}`);

    // --json is the report as before: every node with its fields, no drawing.
    const json = await runCli(['runs', 'show', runId, '--json']);
    const report = JSON.parse(json.stdout) as { nodes: { id: string; parent: string | null }[] };
    expect(report.nodes.map((node) => node.id).sort()).toEqual([...NODES].sort());
    expect(Object.keys(report.nodes[0] ?? {}).sort()).toEqual(['attempts', 'cacheKey', 'cacheReason', 'cacheStatus', 'durationMs', 'error', 'finishedAt', 'id', 'output', 'parent', 'startedAt', 'status', 'task', 'waitedFor']);
  }, 120_000);
});
