// Regression (issue 8, item 9): two processes opening one embedded `.memoflow/` (a second
// `memoflow run`, or `runs ls` beside a running demo) could corrupt PGlite's data directory. Now a
// second process gets DATA_DIR_LOCKED naming the holder's pid (exit 2 from the CLI), and the lock
// of a killed holder is taken over. Two real processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, MemoflowError } from '@memoflow/sdk';
import { ROOT, STACK_FRAME, errorLines, runCli } from '../support/cli.js';

let dataDir = '';
let holder: ChildProcess | undefined;

/** A process that opens the data directory and keeps it open until killed. */
function startHolder(dir: string): Promise<ChildProcess> {
  const script = `import { connect } from ${JSON.stringify(join(ROOT, 'packages/sdk/dist/index.js'))};
const mf = await connect({ dataDir: ${JSON.stringify(dir)}, log: 'silent' });
process.stdout.write('open\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', REDIS_URL: '' } });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => c.toString().includes('open') && resolve(child));
    child.on('exit', (code) => reject(new Error(`holder exited ${code}: ${err}`)));
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'memoflow-lock-'));
  holder = await startHolder(dataDir);
}, 120_000);
afterAll(async () => {
  holder?.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

describe('one embedded data directory, one process', () => {
  it('a second process gets DATA_DIR_LOCKED naming the holder', async () => {
    const error = await connect({ dataDir, log: 'silent' }).then(async (mf) => { await mf.close(); return undefined; }, (e: unknown) => e);
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).code).toBe('DATA_DIR_LOCKED');
    expect((error as MemoflowError).message).toContain(`in use by process ${holder?.pid}`);
  });

  it('the CLI says so in one line, exit 2', async () => {
    const result = await runCli(['runs', 'ls', '--data-dir', dataDir]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(new RegExp(`DATA_DIR_LOCKED.*in use by process ${holder?.pid}`))]);
  }, 60_000);

  it('the lock of a killed holder is taken over, and released on close', async () => {
    const child = holder!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    holder = undefined;
    expect(existsSync(join(dataDir, 'memoflow.lock'))).toBe(true); // SIGKILL left it behind
    const mf = await connect({ dataDir, log: 'silent' });
    const again = await connect({ dataDir, log: 'silent' }); // this process may open it twice
    expect(await mf.runs.list()).toEqual([]);
    await again.close();
    expect(existsSync(join(dataDir, 'memoflow.lock'))).toBe(true);
    await mf.close();
    expect(existsSync(join(dataDir, 'memoflow.lock'))).toBe(false);
  }, 60_000);
});
