/**
 * `memoflow run` whose Postgres (a cluster of the test's own) is stopped mid-run and started again:
 * the run completes (exit 0), and what it prints meanwhile is short. Each warning is one line
 * saying what failed, why (ECONNREFUSED, CONNECTION_CLOSED, a SQLSTATE) and what happens next; no
 * SQL statement, no parameters. Before (robustness issue, item 13) one such run printed 94 KB of
 * stderr, 4.6 KB lines holding the whole statement and its parameters and never the cause.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wideOutputs } from '../fixtures/flows.js';
import { ROOT, startCli } from '../support/cli.js';
import { TestPostgres } from './servers.js';

const FLOWS = join(ROOT, 'test/fixtures/flows.ts');
const MAX_LINE = 300;
const MAX_STDERR = 20_000;
/** A line reporting a failure (not "cache write landed after 1 failed attempt(s)", which reports a recovery). */
const FAILURE_LINE = /controller round failed|failed \(attempt \d+\)|failed:|_FAILURE|warning:|lost/;
/** What a warning about the outage must name: a driver or system code, or a SQLSTATE (57P01 terminated, 57P03 shutting down, 08xxx connection). */
const CAUSE = /ECONNREFUSED|ECONNRESET|CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|57P0\d|08\d\d\d/;
const SQL_TEXT = /insert into|select |update |delete from|params:|failed query/i;

let pg: TestPostgres;

describe.skipIf(!TestPostgres.available())('faults: warnings while Postgres is down are one short line naming the cause', () => {
  beforeAll(async () => {
    pg = await TestPostgres.start();
  });
  afterAll(() => pg.dispose());

  it('Postgres stopped as the first results come in, started 1 s later: the run succeeds; every line is short, every warning names its cause, no SQL', async () => {
    const salt = Math.floor(Math.random() * 1_000_000);
    const schema = `mf_warn_${randomBytes(4).toString('hex')}`;
    // 12 squares of 400 ms, 3 at a time: results, saves, cache writes and lookups are in flight throughout.
    const cli = startCli(['run', FLOWS, 'dist.wide', '--input', `salt=${salt}`, '--input', 'ms=400', '--concurrency', '3', '--schema', schema], { env: { DATABASE_URL: pg.url } });
    // The first square's line (it settles once its entry is written); the other squares are still in flight.
    await cli.waitForLine('stderr', / square\S* .* POPULATED .* ran, result cached/);
    pg.stop('fast');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await pg.start();
    const result = await cli.exit(60_000);

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(wideOutputs(salt));
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    const warnings = lines.filter((line) => FAILURE_LINE.test(line));
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    console.info(`stderr: ${result.stderr.length} bytes, ${lines.length} lines (${warnings.length} warnings), longest ${longest.length} chars:\n${longest}`);

    // The results that came in while Postgres was down could not be saved: at least that was said.
    expect(warnings.some((line) => line.includes('controller round failed')), result.stderr).toBe(true);
    for (const line of warnings) expect(line).toMatch(CAUSE);
    for (const line of lines) {
      expect(line.length, line).toBeLessThanOrEqual(MAX_LINE);
      expect(line).not.toMatch(SQL_TEXT);
    }
    expect(result.stderr.length).toBeLessThan(MAX_STDERR);
  }, 90_000);
});
