/**
 * Regression: after Redis lost its data mid-run, nodes whose jobs were gone stayed `dispatched`
 * forever with no warning (135 of 200 after a restart without persistence): the watchdog treated a
 * vanished job as finished. Here every key of the test's prefix is deleted while squares are
 * queued and running (what a restart without persistence does to them); the controller must notice
 * the missing jobs, dispatch them again under the same attempt ids, and finish the run.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, REDIS_URL, resultWithin, waitFor, distributedEnvPerTest } from '../distributed/support.js';

const t = distributedEnvPerTest();

async function deletePrefix(prefix: string): Promise<number> {
  const admin = new Redis(REDIS_URL, { connectionName: 'mf-test-admin' });
  try {
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    return keys.length;
  } finally {
    await admin.quit();
  }
}

describe('regression: jobs lost from Redis are dispatched again', () => {
  it('a run whose queued and running jobs vanish still completes, every node once recorded', async () => {
    await t.startCliWorker(2);
    const mf = await t.connect();
    const salt = 13000 + Math.floor(Math.random() * 1000);
    const run = await mf.run(wide, { salt, ms: 800 });
    await waitFor('attempts to be running', () => t.executions().some((l) => l.phase === 'start'), 30_000);
    expect(await deletePrefix(t.prefix)).toBeGreaterThan(0);

    expect(await resultWithin(t, mf, run, 60_000)).toEqual(wideOutputs(salt));
    const nodes = await run.nodes();
    expect(nodes.every((n) => n.status === 'succeeded')).toBe(true);
    expect(countBy(t.executions(), 'done').size).toBe(WIDTH + 1);
  }, 90_000);
});
