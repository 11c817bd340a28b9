// Regression (issue 8, items 8, 10, 11): user mistakes on the command line ended in a Node stack
// trace (13 cases), were accepted silently (`--concurrency abc`, `--limit -5`, broken JSON in
// `--input`, a repeated `--input`) or hung (`--data-dir /proc/nope`, `--stale-after abc` ran the
// sweeper every millisecond). Each must now exit 2 within seconds with one line naming the flag,
// file or setting, and no stack trace. Runs the built CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ESM_FLOWS, STACK_FRAME, errorLines, runCli, scratchFolder } from '../support/cli.js';
import { TEST_DATABASE_URL } from '../support/modes.js';

const folder = scratchFolder('mistakes');
let dataDir = '';

beforeAll(() => {
  folder.write('flows.ts', ESM_FLOWS);
  folder.write('syntax.ts', "import { z } from '@memoflow/sdk';\nexport const a = {\n  b: 1,,\n};\n");
  folder.write('syntax.js', 'export const a = {\n  b: 1,,\n};\n');
  folder.write('throws.ts', "export const a = 1;\nthrow new Error('no config found');\n");
  folder.write('a-file', 'not a directory\n');
  dataDir = `${folder.dir}/data`;
});
afterAll(() => folder.remove());

interface Case {
  name: string;
  args: (dir: string) => string[];
  env?: Record<string, string>;
  /** What the one line must name. */
  names: RegExp;
}

const run = (dir: string, ...extra: string[]) => ['run', `${dir}/flows.ts`, 'reg.main', '--input', 'n=2', '--data-dir', `${dir}/data`, ...extra];
const UNREACHABLE_REDIS = 'redis://127.0.0.1:1';

const cases: Case[] = [
  { name: 'run --concurrency 0', args: (d) => run(d, '--concurrency', '0'), names: /--concurrency/ },
  { name: 'run --concurrency -3', args: (d) => run(d, '--concurrency', '-3'), names: /--concurrency/ },
  { name: 'run --concurrency abc', args: (d) => run(d, '--concurrency', 'abc'), names: /--concurrency/ },
  { name: 'worker --concurrency 0', args: (d) => ['worker', `${d}/flows.ts`, '--concurrency', '0', '--redis-url', UNREACHABLE_REDIS], names: /--concurrency/ },
  { name: 'worker --concurrency -3', args: (d) => ['worker', `${d}/flows.ts`, '--concurrency', '-3'], names: /--concurrency/ },
  { name: 'worker --concurrency abc', args: (d) => ['worker', `${d}/flows.ts`, '--concurrency', 'abc'], names: /--concurrency/ },
  { name: 'a directory as the flows file', args: (d) => ['run', d, 'reg.main', '--data-dir', `${d}/data`], names: /is not a file/ },
  { name: 'a syntax error in a .ts flows file', args: (d) => ['run', `${d}/syntax.ts`, 'reg.main', '--data-dir', `${d}/data`], names: /syntax\.ts:3:7/ },
  { name: 'a syntax error in a .js flows file', args: (d) => ['run', `${d}/syntax.js`, 'reg.main', '--data-dir', `${d}/data`], names: /syntax\.js:2:8/ },
  { name: 'a flows file that throws at import', args: (d) => ['run', `${d}/throws.ts`, 'reg.main', '--data-dir', `${d}/data`], names: /throws\.ts.*no config found.*throws\.ts:2:7/ },
  { name: '--data-dir pointing at a file', args: (d) => ['run', `${d}/flows.ts`, 'reg.main', '--input', 'n=2', '--data-dir', `${d}/a-file`], names: /data directory .*a-file.*--data-dir/ },
  { name: '--data-dir under /proc (hung)', args: (d) => ['run', `${d}/flows.ts`, 'reg.main', '--input', 'n=2', '--data-dir', '/proc/nope'], names: /--data-dir.*\/proc\/nope/ },
  { name: 'an unreachable DATABASE_URL', args: (d) => run(d), env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/postgres' }, names: /DATABASE_URL.*ECONNREFUSED/ },
  { name: 'a malformed DATABASE_URL', args: (d) => run(d), env: { DATABASE_URL: 'not a url' }, names: /DATABASE_URL is not a URL/ },
  { name: 'an unreachable REDIS_URL (hung after "running")', args: (d) => run(d), env: { DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: UNREACHABLE_REDIS }, names: /REDIS_URL.*ECONNREFUSED/ },
  { name: 'a malformed REDIS_URL', args: (d) => run(d), env: { DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: 'localhost:6379' }, names: /REDIS_URL must start with redis:\/\// },
  { name: 'a worker with an unreachable Redis', args: (d) => ['worker', `${d}/flows.ts`, '--redis-url', UNREACHABLE_REDIS], names: /REDIS_URL.*ECONNREFUSED/ },
  { name: 'a broken JSON --input becomes no string', args: (d) => ['run', `${d}/flows.ts`, 'reg.main', '--input', 'n={"a":', '--data-dir', `${d}/data`], names: /field 'n'.*looks like JSON but does not parse/ },
  { name: 'a repeated --input', args: (d) => ['run', `${d}/flows.ts`, 'reg.main', '--input', 'n=1', '--input', 'n=2', '--data-dir', `${d}/data`], names: /--input.*'n' is given more than once/ },
  { name: 'runs ls --limit abc', args: (d) => ['runs', 'ls', '--limit', 'abc', '--data-dir', `${d}/data`], names: /--limit/ },
  { name: 'runs ls --limit -5', args: (d) => ['runs', 'ls', '--limit', '-5', '--data-dir', `${d}/data`], names: /--limit/ },
  { name: 'cache ls --limit 0', args: (d) => ['cache', 'ls', '--limit', '0', '--data-dir', `${d}/data`], names: /--limit/ },
  { name: 'controller --stale-after abc (swept every 1 ms)', args: () => ['controller', '--stale-after', 'abc'], names: /--stale-after/ },
  { name: 'worker --lock-duration 10x', args: (d) => ['worker', `${d}/flows.ts`, '--lock-duration', '10x'], names: /--lock-duration/ },
];

describe('the CLI answers a user mistake with one line and exit 2, never a stack trace', () => {
  it.concurrent.each(cases)('$name', async ({ args, env, names }) => {
    const result = await runCli(args(folder.dir), { env: env ?? {}, cwd: folder.dir });
    const lines = errorLines(result.stderr);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(names);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
  });
});

describe('generated bad flag values', () => {
  it('never give a stack trace, and every one that is not a positive integer is refused (exit 2, naming the flag)', async () => {
    const values = fc.sample(
      fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -1000, max: 0 }).map(String), fc.double().map(String), fc.constantFrom('1e3', '0x10', '5 ', ' ', '', '+-1', '9007199254740993')),
      12,
    );
    const results = await Promise.all(values.map(async (value, i) => ({ value, result: await runCli(['runs', 'ls', '--limit', value, '--data-dir', `${dataDir}-${i}`], { cwd: folder.dir }) })));
    for (const { value, result } of results) {
      expect(result.stderr, `--limit ${JSON.stringify(value)}`).not.toMatch(STACK_FRAME);
      const valid = /^\s*\+?\d+\s*$/.test(value) && Number(value) >= 1 && Number.isSafeInteger(Number(value));
      if (!valid) {
        expect(result.code, `--limit ${JSON.stringify(value)}: ${result.stderr}`).toBe(2);
        expect(errorLines(result.stderr).join('\n')).toMatch(/--limit/);
      }
    }
  }, 240_000);
});
