import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as runCliIn, scratchFolder, type CliOptions } from '../support/cli.js';
import { dropSchema, TEST_DATABASE_URL } from '../support/modes.js';

/**
 * `memoflow runs retry` and `memoflow run --resume-from` as a user runs them (the built CLI, on
 * Postgres with a schema of the test's own: opening an embedded store in each of eight processes
 * cost a minute). `boom` fails while the file BROKEN exists next to the flows file; `double` feeds it.
 */
const FLOWS = `import { existsSync } from 'node:fs';
import { task, workflow, z } from '@memoflow/sdk';
const broken = new URL('./BROKEN', import.meta.url);
export const double = task({ name: 'cli.double', inputs: { n: z.number() }, output: z.number() }, async ({ n }) => n * 2);
export const boom = task({ name: 'cli.boom', inputs: { n: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ n }) => {
  if (existsSync(broken)) throw new Error('BROKEN is there');
  return n + 1;
});
export const main = workflow({ name: 'cli.main', inputs: { n: z.number() } }, ({ n }) => ({ out: boom({ n: double({ n }) }) }));
`;

let folder: ReturnType<typeof scratchFolder>;
let flows: string;
const schema = `mf_cli_${randomBytes(6).toString('hex')}`;
const runCli = (args: readonly string[], options: CliOptions = {}) => runCliIn(args, { ...options, env: { DATABASE_URL: TEST_DATABASE_URL, MEMOFLOW_SCHEMA: schema } });
beforeAll(() => {
  folder = scratchFolder('resume');
  flows = folder.write('flows.mjs', FLOWS);
});
afterAll(async () => {
  folder.remove();
  await dropSchema(schema);
});

const runIdOf = (stderr: string, status: string): string => {
  const match = new RegExp(`^run (\\S+) ${status} `, 'm').exec(stderr);
  if (match?.[1] === undefined) throw new Error(`no 'run <id> ${status}' line in:\n${stderr}`);
  return match[1];
};

describe('CLI: runs retry and run --resume-from', () => {
  it('retries a failed run without the file, printing the plan first; resumes from a node; refuses what does not fit', async () => {
    writeFileSync(join(folder.dir, 'BROKEN'), '');
    const failed = await runCli(['run', flows, 'cli.main', '--input', 'n=3']);
    expect(failed.code, failed.stderr).toBe(1);
    const failedId = runIdOf(failed.stderr, 'failed');
    rmSync(join(folder.dir, 'BROKEN'));
    expect(existsSync(join(folder.dir, 'BROKEN'))).toBe(false);

    // No file given: the run recorded where its workflow came from. Started elsewhere on purpose.
    const retried = await runCli(['runs', 'retry', failedId], { cwd: '/' });
    expect(retried.code, retried.stderr).toBe(0);
    expect(JSON.parse(retried.stdout)).toEqual({ out: 7 });
    const lines = retried.stderr.split('\n');
    const plan = lines.findIndex((l) => l.includes(`plan (retrying run ${failedId}: reusing 1 node(s): double; running 1: boom)`));
    const firstNode = lines.findIndex((l) => / (double|boom) /.test(l));
    expect(plan, retried.stderr).toBeGreaterThanOrEqual(0);
    expect(plan).toBeLessThan(firstNode);
    expect(retried.stderr).toMatch(/double +cli\.double +RECOVERED .* reused from an earlier run/);
    expect(retried.stderr).toMatch(/\(2 nodes: 1 RECOVERED, 1 POPULATED; 0 of 2 from the cache\)/);
    const retryId = runIdOf(retried.stderr, 'succeeded');

    const shown = await runCli(['runs', 'show', retryId]);
    expect(shown.stdout).toContain(`retry of run ${failedId}`);
    expect(shown.stdout).toMatch(/double +cli\.double +succeeded +RECOVERED/);

    const resumed = await runCli(['run', flows, 'cli.main', '--input', 'n=3', '--resume-from', `${retryId}:boom`, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const records = resumed.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string; plan?: unknown; nodeId?: string; cacheStatus?: string; cacheReason?: string });
    expect(records[0]).toMatchObject({ event: 'run:reuse-planned', plan: { fromRun: retryId, reason: 'resume', reuse: ['double'], run: ['boom'] } });
    expect(records.find((r) => r.event === 'node:recovered')).toMatchObject({ nodeId: 'double', cacheStatus: 'RECOVERED' });
    expect(records.find((r) => r.event === 'node:succeeded' && r.nodeId === 'boom')).toMatchObject({ cacheStatus: 'SKIPPED', cacheReason: 'resume' });

    const missingNode = await runCli(['run', flows, 'cli.main', '--input', 'n=3', '--resume-from', `${retryId}:nope`]);
    expect(missingNode.code).toBe(2);
    expect(missingNode.stderr).toMatch(/^memoflow: NODE_NOT_FOUND: .*cannot resume run \S+ from node 'nope': the run has no such node/m);
    const badFlag = await runCli(['run', flows, 'cli.main', '--input', 'n=3', '--resume-from', 'no-colon']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--resume-from <run:node>.*expected <run>:<node>/);
    const missingRun = await runCli(['runs', 'retry', 'r0nosuchrun']);
    expect(missingRun.code).toBe(2);
    expect(missingRun.stderr).toMatch(/^memoflow: RUN_NOT_FOUND: run 'r0nosuchrun' does not exist/m);
    const runs = await runCli(['runs', 'ls', '--json']);
    expect(JSON.parse(runs.stdout)).toHaveLength(3);
  }, 120_000);
});
