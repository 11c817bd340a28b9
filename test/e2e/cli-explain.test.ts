import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as runCliIn, scratchFolder } from '../support/cli.js';
import { dropSchema, TEST_DATABASE_URL } from '../support/modes.js';

/**
 * `memoflow cache explain` as a user runs it: the built CLI in a scratch folder, on Postgres with a
 * schema of the test's own (seven processes each opening an embedded store cost most of a minute;
 * explain.test.ts covers the embedded mode through the client). Two runs of a two-node pipeline
 * with different inputs; the second run's nodes are explained.
 */
const FLOWS = `import { task, workflow, z } from '@memoflow/sdk';
export const clean = task({ name: 'x.clean', inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' } }, async ({ rows }) => rows.filter((r) => r >= 0));
export const total = task({ name: 'x.total', inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ rows }) => rows.reduce((a, b) => a + b, 0));
export const main = workflow({ name: 'x.main', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ total: total({ rows: clean({ rows }) }) }));
`;

let folder: ReturnType<typeof scratchFolder>;
let flows: string;
const schema = `mf_explain_${randomBytes(6).toString('hex')}`;
const runCli = (args: readonly string[]) => runCliIn(args, { cwd: folder.dir, env: { DATABASE_URL: TEST_DATABASE_URL, MEMOFLOW_SCHEMA: schema } });
beforeAll(() => {
  folder = scratchFolder('explain');
  flows = folder.write('flows.mjs', FLOWS);
});
afterAll(async () => {
  folder.remove();
  await dropSchema(schema);
});

const runIdOf = (stderr: string): string => {
  const match = /^run (\S+) succeeded /m.exec(stderr);
  if (match?.[1] === undefined) throw new Error(`no 'run <id> succeeded' line in:\n${stderr}`);
  return match[1];
};

describe('CLI: memoflow cache explain', () => {
  it('prints the status, key, reason and a was → now table; --json prints the object; unknown ids are one-line errors', async () => {
    const first = await runCli(['run', flows, 'x.main', '--input', 'rows=[1,-2,3]']);
    expect(first.code, first.stderr).toBe(0);
    const second = await runCli(['run', flows, 'x.main', '--input', 'rows=[1,-2,4]']);
    expect(second.code, second.stderr).toBe(0);
    const [firstId, secondId] = [runIdOf(first.stderr), runIdOf(second.stderr)];

    const human = await runCli(['cache', 'explain', secondId, 'clean']);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toBe(`node    clean  (x.clean, run ${secondId})`);
    expect(lines[1]).toBe('status  POPULATED');
    expect(lines[2]).toMatch(/^key {5}[0-9a-f]{64}$/);
    expect(human.stdout).toContain(`reason  missed, executed, and wrote its entry: the nearest entry of task 'x.clean' (written by run ${firstId}, node 'clean'`);
    expect(lines).toContain('PART   NAME  WAS       NOW');
    expect(lines).toContain('input  rows  [1,-2,3]  → [1,-2,4]');

    const cascade = await runCli(['cache', 'explain', secondId, 'total']);
    expect(cascade.code, cascade.stderr).toBe(0);
    expect(cascade.stdout).toContain('status  SKIPPED(upstream-reran)');
    expect(cascade.stdout).toContain("reason  executed without a lookup: upstream node 'clean' executed (POPULATED)");
    expect(cascade.stdout).toMatch(/why upstream ran:\n {2}clean {2}POPULATED: missed, executed, and wrote its entry: .* differs in input 'rows' \(\[1,-2,3\] → \[1,-2,4\]\)\./);

    const json = await runCli(['cache', 'explain', secondId, 'total', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { status: string; upstream: { node: string; differences: unknown[]; nearest: { runId: string } } };
    expect(parsed.status).toBe('SKIPPED');
    expect(parsed.upstream.node).toBe('clean');
    expect(parsed.upstream.nearest.runId).toBe(firstId);
    expect(parsed.upstream.differences).toEqual([{ part: 'input', name: 'rows', change: 'changed', was: [1, -2, 3], now: [1, -2, 4] }]);

    const noNode = await runCli(['cache', 'explain', secondId, 'claen']);
    expect(noNode.code).toBe(2);
    expect(noNode.stderr.trim()).toBe(`memoflow: NODE_NOT_FOUND: workflow 'x.main', node 'claen', field 'node': run ${secondId} has no node 'claen' (its nodes: clean, total)`);
    const noRun = await runCli(['cache', 'explain', 'nope', 'clean']);
    expect(noRun.code).toBe(2);
    expect(noRun.stderr.trim()).toBe("memoflow: RUN_NOT_FOUND: field 'runId': run 'nope' does not exist");
  }, 120_000);
});
