/**
 * Regression (found by the fuzz suite, test/fuzz): commander put its suggestion for a mistyped
 * option or command on a line of its own ("error: unknown option '--inpt'" then "(Did you mean
 * --input?)"), so a user mistake took two lines where every other takes one. The suggestion is
 * kept, on the same line. Runs the built CLI.
 */
import { describe, expect, it } from 'vitest';
import { ESM_FLOWS, STACK_FRAME, errorLines, runCli, scratchFolder } from '../support/cli.js';

describe('a mistyped option or command is one line, suggestion included', () => {
  it.concurrent.each([
    ['an option', (flows: string) => ['run', flows, 'reg.main', '--inpt', 'n=1'], "error: unknown option '--inpt' (Did you mean --input?)"],
    ['a command', () => ['runz'], "error: unknown command 'runz' (Did you mean one of run, runs?)"],
  ])('%s', async (_what, args, line) => {
    const folder = scratchFolder('did-you-mean');
    try {
      const result = await runCli(args(folder.write('flows.ts', ESM_FLOWS)), { cwd: folder.dir });
      expect(result.stderr).not.toMatch(STACK_FRAME);
      expect(errorLines(result.stderr)).toEqual([line]);
      expect(result.code).toBe(2);
    } finally {
      folder.remove();
    }
  });
});
