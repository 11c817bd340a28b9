/**
 * `memoflow run` as a user runs it, against a Postgres cluster of the test's own (DATABASE_URL, tasks
 * in process): its exit code is 0 for a run that succeeded, 1 for a run that failed, 2 for a user
 * error, and dropped database connections change none of that (robustness issue, item 7: the CLI
 * printed "succeeded" and then exited 13 after a connection drop, its close never finishing).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, STACK_FRAME, errorLines, runCli, startCli } from '../support/cli.js';
import { TestPostgres } from './servers.js';

const FLOWS = join(ROOT, 'test/fixtures/exit-flows.ts');
/** Under one close step's bound (10 s): no step of the shutdown had to be abandoned. */
const EXIT_AFTER_SUCCESS_MS = 8_000;

let pg: TestPostgres;

const schema = (): string => `mf_exit_${randomBytes(4).toString('hex')}`;
const seed = (): number => Math.floor(Math.random() * 1_000_000);

describe.skipIf(!TestPostgres.available())('faults: `memoflow run` exit codes with its own Postgres', () => {
  beforeAll(async () => {
    pg = await TestPostgres.start();
  });
  afterAll(() => pg.dispose());

  it('exits 0 after a run that succeeded while its connections were terminated as the last body ran', async () => {
    const n = seed();
    // --verbose: the `running` line of step-2 says its body has started. MEMOFLOW_DEBUG: an
    // unexpected error prints its stack (this test once caught postgres.js's unhandled type-fetch
    // rejection on a new connection; see test/regression/connection-killed-while-fetching-types-crashes).
    const cli = startCli(['run', FLOWS, 'exits.slow-end', '--input', `seed=${n}`, '--input', 'ms=1500', '--schema', schema(), '--verbose'], { env: { DATABASE_URL: pg.url, MEMOFLOW_DEBUG: '1' } });
    // Every save after the last body (its result, its cache write, the run's end) needs a new
    // connection. (Terminating again once "succeeded" is printed ends nothing: the CLI has closed
    // its pool before another connection can ask.)
    await cli.waitForLine('stderr', /step-2 .* running/);
    expect(await pg.terminateClients()).toBeGreaterThan(0);
    await cli.waitForLine('stderr', /^run \S+ succeeded/);
    const succeededAt = Date.now();
    const result = await cli.exit(30_000);
    const closingMs = Date.now() - succeededAt;

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ out: n + 2 });
    // Nothing but the summary: no close step abandoned, no error.
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/^run \S+ succeeded \(2 nodes/)]);
    expect(closingMs).toBeLessThan(EXIT_AFTER_SUCCESS_MS);
  }, 60_000);

  it('exits 1 after a run that failed, saying so in one line and no stack trace', async () => {
    const result = await runCli(['run', FLOWS, 'exits.fails', '--input', 'n=7', '--schema', schema()], { env: { DATABASE_URL: pg.url }, timeoutMs: 30_000 });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/refuse .*failed.*refusing 7 on purpose/);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/^run \S+ failed \(1 nodes/)]);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  }, 60_000);

  it('exits 2 for a user error: an input that does not fit, a database that does not exist, a Postgres that is not there', async () => {
    const missingDatabase = new URL(pg.url);
    missingDatabase.pathname = '/no_such_database';
    const stopped = `postgres://postgres@127.0.0.1:1/postgres`; // nothing listens on port 1
    const [badInput, noDatabase, noServer] = await Promise.all([
      runCli(['run', FLOWS, 'exits.fails', '--input', 'n=abc', '--schema', schema()], { env: { DATABASE_URL: pg.url }, timeoutMs: 30_000 }),
      runCli(['run', FLOWS, 'exits.fails', '--input', 'n=1', '--schema', schema()], { env: { DATABASE_URL: missingDatabase.href }, timeoutMs: 30_000 }),
      runCli(['run', FLOWS, 'exits.fails', '--input', 'n=1', '--schema', schema()], { env: { DATABASE_URL: stopped }, timeoutMs: 30_000 }),
    ]);
    for (const result of [badInput, noDatabase, noServer]) {
      expect(result.code, result.stderr).toBe(2);
      expect(errorLines(result.stderr), result.stderr).toHaveLength(1);
      expect(result.stderr).not.toMatch(STACK_FRAME);
    }
    expect(badInput.stderr).toMatch(/^memoflow: INPUT_SCHEMA_MISMATCH: .*'n'/);
    expect(noDatabase.stderr).toMatch(/^memoflow: CONNECTION_FAILED: .*DATABASE_URL .*no_such_database.*3D000: database "no_such_database" does not exist/);
    expect(noServer.stderr).toMatch(/^memoflow: CONNECTION_FAILED: .*DATABASE_URL .*ECONNREFUSED/);
  }, 60_000);
});
