/**
 * The in-process CLI fuzzing (cli.fuzz.test.ts) is only as good as its likeness to a real
 * `memoflow` process: a handful of the same generated mistakes, run both ways, must give the same
 * exit code and the same error line (for a flows file that fails to load, the loader's words
 * differ: vitest's in process, tsx's in a process; both name the file). Runs the built CLI.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { STACK_FRAME, errorLines, runCli } from '../support/cli.js';
import { cliMistake, makeCliFiles } from './cli-mistakes.js';
import { FUZZ_SEED } from './fuzz-settings.js';
import { runMainInProcess } from './in-process-cli.js';

const files = makeCliFiles();
afterAll(() => files.remove());

const SAMPLE = fc.sample(cliMistake, { seed: FUZZ_SEED, numRuns: 8 });

describe('fuzz: a real memoflow process answers a mistake as main() in process does', () => {
  it.concurrent.each(SAMPLE.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const env = c.env?.(files) ?? {};
    const [child, inProcess] = await Promise.all([runCli(c.args(files), { env, cwd: files.dir, timeoutMs: 30_000 }), runMainInProcess(c.args(files), env)]);
    expect(child.stderr).not.toMatch(STACK_FRAME);
    expect(child.code, child.stderr).toBe(inProcess.code);
    expect(child.stdout).toBe(inProcess.stdout);
    const [childLines, ownLines] = [errorLines(child.stderr), errorLines(inProcess.stderr)];
    expect(childLines).toHaveLength(1);
    if (c.loader === true) for (const part of c.names(files)) expect(childLines[0]).toContain(part);
    else expect(childLines).toEqual(ownLines);
  }, 60_000);
});
