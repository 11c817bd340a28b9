/**
 * A Postgres cluster of the test's own is stopped mid-run (every connection cut) and started again
 * a few seconds later. Controllers retry their rounds and workers keep working; the run completes
 * with each body run once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, DistributedEnv, resultWithin, waitFor } from '../distributed/support.js';
import { TestPostgres } from './servers.js';

let t: DistributedEnv | undefined;
let pg: TestPostgres | undefined;
afterEach(async () => {
  await t?.cleanup();
  pg?.dispose();
  t = undefined;
  pg = undefined;
}, 60_000);

describe.skipIf(!TestPostgres.available())('faults: Postgres restarted mid-run', () => {
  it.each(['fast', 'immediate'] as const)('stopped (%s) for 4 s: the run completes, each body once', async (mode) => {
    pg = await TestPostgres.start();
    t = await DistributedEnv.create({ databaseUrl: pg.url });
    await t.startCliWorker(4);
    const mf = await t.connect();
    const salt = 11000 + Math.floor(Math.random() * 1000);
    const run = await mf.run(wide, { salt, ms: 1500 });

    await waitFor('attempts to be running', () => t?.executions().some((l) => l.phase === 'start') ?? false, 30_000);
    pg.stop(mode);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await pg.start();

    expect(await resultWithin(t, mf, run, 90_000)).toEqual(wideOutputs(salt));
    expect([...countBy(t.executions(), 'done').values()]).toEqual(Array(WIDTH + 1).fill(1));
  }, 150_000);
});
