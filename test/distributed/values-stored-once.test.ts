/**
 * Issue 9, item 8, Redis side: a large value fanned out to many consumers is stored once while
 * their jobs wait (not copied into every job), arrives whole at every task and at the controller,
 * and once the run is done Redis holds nothing of it: no job, no result entry, no value; only the
 * published-result markers.
 */
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startWorker, task, workflow, z, type WorkerPool } from '@memoflow/sdk';
import { silentLogger } from '@memoflow/worker';
import { DistributedEnv, REDIS_URL, waitFor } from './support.js';

const SIZE = 20_000; // above the 8 KiB threshold
const CONSUMERS = 40;

const blob = task({ name: 'once.blob', inputs: { seed: z.number() }, output: z.string() }, ({ seed }) => `${seed}:`.padEnd(SIZE, 'abcdefgh'));
const measure = task({ name: 'once.measure', inputs: { s: z.string(), i: z.number() }, output: z.number() }, async ({ s, i }) => {
  await new Promise((resolve) => setTimeout(resolve, 20)); // so jobs queue up behind the pool's slots
  return s.length + i;
});
const reverse = task({ name: 'once.reverse', inputs: { s: z.string() }, output: z.string() }, ({ s }) => [...s].reverse().join(''));
const fanOut = workflow({ name: 'once.fan-out', inputs: { seed: z.number() } }, ({ seed }) => {
  const s = blob({ seed });
  const sizes = Array.from({ length: CONSUMERS }, (_, i) => measure({ s, i }));
  return { sizes, reversed: reverse({ s }) };
});

let t: DistributedEnv;
let pool: WorkerPool | undefined;
let redis: Redis;
beforeEach(async () => {
  t = await DistributedEnv.create();
  redis = new Redis(REDIS_URL, { connectionName: `${t.prefix}.probe` });
});
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await redis.quit();
  await t.cleanup();
}, 30_000);

describe('values stored once in Redis (distributed)', () => {
  it('a value read by many queued jobs is one key while they wait, and nothing of the run is left afterwards but markers', async () => {
    pool = await startWorker({ tasks: [blob, measure, reverse], redisUrl: REDIS_URL, prefix: t.prefix, concurrency: 2, logger: silentLogger });
    const mf = await t.connect();
    const seed = Math.floor(Math.random() * 1e6);
    const run = await mf.run(fanOut, { seed });

    // While consumers wait for the pool's two slots: one stored value, held by each queued job.
    const holders = await waitFor('the shared value to be held by queued jobs', async () => {
      const keys = await redis.keys(`${t.prefix}:values:*`);
      if (keys.length !== 1) return false;
      const fields = await redis.hlen(keys[0] as string);
      return fields > 10 ? fields : false;
    }, 20_000, 10);
    expect(holders).toBeGreaterThan(10);

    const value = `${seed}:`.padEnd(SIZE, 'abcdefgh');
    expect(await run.result()).toEqual({ sizes: Array.from({ length: CONSUMERS }, (_, i) => SIZE + i), reversed: [...value].reverse().join('') });

    await waitFor('results acknowledged and values released', async () => {
      const left = (await redis.keys(`${t.prefix}:*`)).filter((key) => key.includes(run.id) || key.includes(':values:'));
      return (await redis.xlen(`${t.prefix}:results-stream`)) === 0 && left.every((key) => key.startsWith(`${t.prefix}:results-seen:`));
    }, 10_000);
    const markers = await redis.keys(`${t.prefix}:results-seen:${run.id}-*`);
    expect(markers).toHaveLength(CONSUMERS + 2);
  }, 60_000);
});
