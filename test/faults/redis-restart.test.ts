/**
 * A Redis of the test's own is killed mid-run and started again, with and without persistence.
 * With an fsynced append-only file nothing is lost; without, every queued job and unread result is
 * gone, and the controller must notice the attempts that no longer exist and dispatch them again
 * (same attempt ids). Either way the run completes and no body runs again after its node was
 * recorded as succeeded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, DistributedEnv, resultWithin, waitFor } from '../distributed/support.js';
import { TestRedis } from './servers.js';

let t: DistributedEnv | undefined;
let redis: TestRedis | undefined;
afterEach(async () => {
  await t?.cleanup();
  await redis?.dispose();
  t = undefined;
  redis = undefined;
}, 60_000);

describe.each([
  { persistent: true, name: 'with persistence' },
  { persistent: false, name: 'without persistence (its data is lost)' },
])('faults: Redis killed and restarted mid-run, $name', ({ persistent }) => {
  it('the run completes and no body runs again after its node succeeded', async () => {
    redis = await TestRedis.start({ persistent });
    t = await DistributedEnv.create({ redisUrl: redis.url });
    await t.startCliWorker(4);
    const mf = await t.connect();
    const salt = 9000 + Math.floor(Math.random() * 1000);
    const run = await mf.run(wide, { salt, ms: 1500 });

    // Mid-run: some squares done and recorded, others running or queued.
    await waitFor('some squares to succeed', async () => (await run.nodes()).filter((n) => n.status === 'succeeded').length >= 2, 30_000);
    const recordedBefore = new Set((await run.nodes()).filter((n) => n.status === 'succeeded').map((n) => n.id));
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await redis.start();

    expect(await resultWithin(t, mf, run, 90_000)).toEqual(wideOutputs(salt));
    const done = countBy(t.executions(), 'done');
    for (const id of recordedBefore) expect(done.get(`${run.id}/${id}`), `node ${id} ran again after it succeeded`).toBe(1);
    expect(done.size).toBe(WIDTH + 1);
    if (persistent) expect([...done.values()]).toEqual(Array(WIDTH + 1).fill(1));
  }, 150_000);
});
