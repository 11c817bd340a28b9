import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli as runCliIn, scratchFolder } from '../support/cli.js';
import { dropSchema, TEST_DATABASE_URL } from '../support/modes.js';
import { PICTURE_FLOWS as FLOWS, PICTURE_LONG_ID as LONG, PICTURE_NODES as NODES } from '../fixtures/picture-flows.js';

/**
 * The terminal picture (issue 11, item 5) as a user sees it, through the built CLI on Postgres (a
 * schema of the test's own): `memoflow run` prints one line per node when it settles (piped, so
 * plain lines), `--verbose` a line per event, and `runs show` the DAG as a tree with a dynamic
 * node's children under it. One task has a 200-character name, so its node id is that long.
 */
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
    expect(lines.find((line) => idOf(line) === 'load')).toMatch(/ pic\.load +POPULATED +key [0-9a-f]{10} +[\d.]+ m?s {2}ran, result cached$/);
    expect(lines.find((line) => idOf(line) === 'fan')).toMatch(/ SKIPPED\(upstream-reran\) .* ran, result cached; expanded into 3 node\(s\)/);
    const runId = /^run (\S+) succeeded/m.exec(first.stderr)?.[1] ?? '';

    const second = await runCli(['run', flows, 'pic.main', '--input', 'n=3']);
    expect(second.code, second.stderr).toBe(0);
    const hits = nodeLines(second.stderr);
    // fan hits as a whole: its children do not run again.
    expect(hits).toHaveLength(4);
    for (const line of hits) expect(line).toMatch(/ HIT +key [0-9a-f]{10} +[\d.]+ m?s {2}served from the cache/);

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
    expect(tree[0]).toMatch(/^load +pic\.load +succeeded +POPULATED +[0-9a-f]{10} +1 +[\d.]+ m?s$/);
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
    expect(Object.keys(report.nodes[0] ?? {}).sort()).toEqual(['attempts', 'cacheKey', 'cacheReason', 'cacheStatus', 'cutoffHint', 'durationMs', 'error', 'finishedAt', 'id', 'output', 'parent', 'savedMs', 'startedAt', 'status', 'task', 'waitedFor']);
  }, 120_000);

  it('on a terminal: the DAG as a tree redrawn in place, its last frame left on the screen, then the summary', () => {
    // A real pseudo-terminal (util-linux `script`), 100 columns by 30 rows.
    const command = `stty cols 100 rows 30; exec ${process.execPath} ${CLI} run ${flows} pic.main --input n=5`;
    const result = spawnSync('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL, MEMOFLOW_SCHEMA: schema, REDIS_URL: '' }, encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stdout).toBe(0);
    const screen = result.stdout;
    // Redrawn in place: frames written in synchronized-output blocks, lines erased between them.
    const frames = screen.split('\u001b[?2026h').slice(1);
    expect(frames.length, screen).toBeGreaterThan(1);
    expect(screen).toContain('\u001b[2K');
    // eslint-disable-next-line no-control-regex
    const plain = (text: string) => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
    const [lastFrame = '', afterFrames = ''] = (frames.at(-1) ?? '').split('\u001b[?2026l');
    const last = plain(lastFrame).split('\n').filter((line) => line !== '');
    expect(last[0]).toMatch(/^run \S+ pic\.main {2}9 of 9 settled · none left {2}\S+ \S+$/);
    for (const line of last) expect(line.length).toBeLessThanOrEqual(100);
    const fanAt = last.findIndex((line) => /^[├└]─ fan /.test(line));
    expect(last.slice(fanAt + 1, fanAt + 6)).toEqual(Array.from({ length: 5 }, (_, i) => expect.stringMatching(new RegExp(`^│ {2}[├└]─ \\.square${i === 0 ? '' : `-${i + 1}`} +SKIPPED\\(upstream-reran\\) +[0-9a-f]{10} +[\\d.]+ m?s +ran, result`))));
    // The 200-character id takes half the width, so notes are cut to what is left.
    expect(last.find((line) => line.startsWith('load '))).toMatch(/^load +POPULATED +[0-9a-f]{10} +[\d.]+ m?s +ran, result/);
    expect(last.some((line) => /^[├└]─ l+…l+ +SKIPPED/.test(line))).toBe(true);
    const after = plain(afterFrames);
    expect(after).toMatch(/^run \S+ succeeded \(9 nodes: 1 POPULATED, 8 SKIPPED; 0 of 9 from the cache[;)]/m);
    expect(after).toContain(JSON.stringify({ total: 1 + 4 + 9 + 16 + 25 + 5, count: 5 }, null, 2).split('\n')[0]);
  }, 90_000);
});
