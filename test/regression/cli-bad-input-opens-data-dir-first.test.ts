/**
 * Regression (found by the fuzz suite, test/fuzz): `memoflow run` checked `--input` values against
 * the workflow's schemas only after opening the store, so a typo (`--input n=abc`, a missing input)
 * first waited for PGlite to start (seconds, ten on a loaded machine), created `.memoflow/` (or
 * needed DATABASE_URL to answer), and only then said what was wrong. It is now refused before
 * anything opens. Runs the built CLI.
 */
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ESM_FLOWS, STACK_FRAME, errorLines, runCli, scratchFolder } from '../support/cli.js';

const folder = scratchFolder('input-first');
const flows = folder.write('flows.ts', ESM_FLOWS);
afterAll(() => folder.remove());

describe('a bad --input is refused before the store opens', () => {
  it.concurrent.each([
    ['a value of the wrong type', ['--input', 'n=abc'], /field 'n'.*expected number/],
    ['a missing input', [], /field 'n'.*is required/],
  ])('%s', async (_what, inputs, message) => {
    const dataDir = `${folder.dir}/data-${inputs.length}`;
    const result = await runCli(['run', flows, 'reg.main', ...inputs, '--data-dir', dataDir], { cwd: folder.dir });
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
    expect(existsSync(dataDir), 'the data directory was created for a typo').toBe(false);
  });

  it('an unreachable DATABASE_URL is not even tried', async () => {
    const result = await runCli(['run', flows, 'reg.main', '--input', 'n=abc'], { cwd: folder.dir, env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/postgres' } });
    expect(result.stderr).toMatch(/INPUT_SCHEMA_MISMATCH: workflow 'reg.main', field 'n'/);
    expect(result.code).toBe(2);
  });
});
