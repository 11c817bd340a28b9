/**
 * `memoflow ui` and `memoflow run --ui` as processes, in a real headless Chromium: with Postgres
 * the UI process reads the shared store while the run's controller is in another process; in the
 * embedded mode the running process serves the page, and `memoflow ui` shows past runs of a data
 * directory no other process holds. Needs the built CLI (`npx turbo run build`).
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Memoflow } from '@memoflow/sdk';
import { fillOf } from '../../packages/sdk/src/ui/status-palette.js';
import { ROOT, runCli, startCli, type CliProcess } from '../support/cli.js';
import { dropSchema, TEST_DATABASE_URL } from '../support/modes.js';
import { latched } from '../fixtures/ui-flows.js';
import { drawnNodes, launchBrowser, nodeSelector, rgb, screenshot, type Browser } from './browser.js';

const FLOWS = join(ROOT, 'test/fixtures/ui-flows.ts');

let browser: Browser;
let scratch: string;
beforeAll(async () => {
  browser = await launchBrowser();
  scratch = await mkdtemp(join(tmpdir(), 'memoflow-ui-cli-'));
});
afterAll(async () => {
  await browser?.close();
  await rm(scratch, { recursive: true, force: true });
});

async function uiUrl(cli: CliProcess, stream: 'stdout' | 'stderr'): Promise<string> {
  const line = await cli.waitForLine(stream, /^memoflow ui: http:\/\/127\.0\.0\.1:\d+\//, 60_000);
  return (/http:\/\/\S+\//.exec(line) as RegExpExecArray)[0];
}

/** Opens the run from the list, waits for `gate` to be executing, opens the latch and waits for the final colours. */
async function watchLatchedRun(url: string, runId: string | RegExp, latch: string, shot: string): Promise<void> {
  const { page } = browser;
  await page.goto(url);
  const row = typeof runId === 'string' ? page.locator(`#runs tr[data-run="${runId}"] a`) : page.locator('#runs tbody tr a').filter({ hasText: runId });
  await row.click({ timeout: 30_000 });
  await page.waitForSelector(`${nodeSelector('gate')}[data-shade="MISS"]`, { timeout: 30_000 });
  await page.evaluate(() => ((window as unknown as { stillTheSamePage: boolean }).stillTheSamePage = true));
  writeFileSync(latch, 'open');
  await page.waitForSelector(`${nodeSelector('after')}[data-shade="SKIPPED"]`, { timeout: 30_000 });
  const drawn = await drawnNodes(page);
  expect(drawn.map((node) => [node.id, node.fill])).toEqual([['gate', rgb(fillOf('POPULATED'))], ['after', rgb(fillOf('SKIPPED'))]]);
  expect(await page.evaluate(() => (window as unknown as { stillTheSamePage?: boolean }).stillTheSamePage)).toBe(true);
  await screenshot(page, shot);
}

describe('memoflow ui over Postgres: the page reads the shared store, the controller runs elsewhere', { timeout: 90_000 }, () => {
  const schema = `mf_ui_${randomBytes(6).toString('hex')}`;
  let mf: Memoflow;
  let ui: CliProcess;
  beforeAll(async () => {
    mf = await connect({ databaseUrl: TEST_DATABASE_URL, schema, log: 'silent' });
    ui = startCli(['ui', '--port', '0'], { env: { DATABASE_URL: TEST_DATABASE_URL, MEMOFLOW_SCHEMA: schema } });
  });
  afterAll(async () => {
    ui?.child.kill('SIGKILL');
    await mf?.close();
    await dropSchema(schema);
  });

  it('shows a run another process drives, live, and stops on SIGTERM', async () => {
    const url = await uiUrl(ui, 'stdout');
    const latch = join(scratch, 'latch-postgres');
    const run = await mf.run(latched, { latch, salt: `pg-${randomBytes(3).toString('hex')}` });
    await watchLatchedRun(url, run.id, latch, 'postgres-live');
    await run.result();
    ui.child.kill('SIGTERM');
    expect((await ui.exit(20_000)).code).toBe(0);
  });
});

describe('embedded: memoflow run --ui serves the page from the running process', { timeout: 120_000 }, () => {
  const dataDir = () => join(scratch, 'data');

  it('shows the run live while it runs; the process ends with the run', async () => {
    const latch = join(scratch, 'latch-embedded');
    const run = startCli(['run', FLOWS, 'ui.latched', '--input', `latch=${latch}`, '--input', 'salt=embedded', '--ui=0', '--data-dir', dataDir()]);
    try {
      const url = await uiUrl(run, 'stderr');
      await watchLatchedRun(url, /^r/, latch, 'embedded-live');
      const result = await run.exit(30_000);
      expect(result.code, result.stderr).toBe(0);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('memoflow ui on the data directory, once free, lists its past runs; while a run holds it, says how to watch', async () => {
    const ui = startCli(['ui', '--port', '0', '--data-dir', dataDir()]);
    try {
      const url = await uiUrl(ui, 'stdout');
      const { page } = browser;
      await page.goto(url);
      await page.waitForSelector('#runs tbody tr');
      const rows = await page.$$eval('#runs tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).slice(1, 3).map((td) => td.textContent)));
      expect(rows).toEqual([['ui.latched', 'succeeded']]);
      await screenshot(page, 'runs-list');

      const second = await runCli(['ui', '--port', '0', '--data-dir', dataDir()]);
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(/DATA_DIR_LOCKED: .*memoflow run \.\.\. --ui/);
      ui.child.kill('SIGTERM');
      expect((await ui.exit(30_000)).code).toBe(0);
    } finally {
      ui.child.kill('SIGKILL');
    }
  });
});
