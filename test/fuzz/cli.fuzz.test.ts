/**
 * The fuzz suite's CLI half (issue 8, item 16): a few hundred generated command lines with one
 * user mistake each, through the CLI's `main(argv)` in this process (see in-process-cli.ts).
 * Properties: every call ends within a bound, exits 2, prints nothing on stdout and exactly one
 * line on stderr, with no stack trace, naming the flag, file, input or setting it is about.
 * cli-process.fuzz.test.ts checks that a real `memoflow` process answers the same.
 */
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { STACK_FRAME, errorLines } from '../support/cli.js';
import { cliMistake, makeCliFiles } from './cli-mistakes.js';
import { fuzzParameters, within } from './fuzz-settings.js';
import { runMainInProcess } from './in-process-cli.js';

const files = makeCliFiles();
afterAll(() => files.remove());

describe('fuzz: user mistakes on the command line (in process)', () => {
  it('each exits 2 with one line naming its subject, no stack trace, nothing on stdout', async () => {
    const handlers = () => [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
    const before = handlers();
    await fc.assert(
      fc.asyncProperty(cliMistake, async (c) => {
        const result = await within(runMainInProcess(c.args(files), c.env?.(files) ?? {}), 15_000, `memoflow ${c.what}`);
        const lines = errorLines(result.stderr);
        expect(result.stderr, c.what).not.toMatch(STACK_FRAME);
        expect(lines, result.stderr).toHaveLength(1);
        for (const part of c.names(files)) expect(lines[0], c.what).toContain(part);
        expect(result.code, result.stderr).toBe(2);
        expect(result.stdout).toBe('');
      }),
      fuzzParameters(320),
    );
    // Refused before the store opened: no mistake created (or waited for) a data directory.
    expect(existsSync(files.data)).toBe(false);
    // main()'s last-resort handlers (which exit the process) did not stay behind in the test runner.
    expect(handlers()).toEqual(before);
  }, 120_000);
});
