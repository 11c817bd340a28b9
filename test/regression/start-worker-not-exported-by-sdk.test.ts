// Regression (issue 8, item 14): `startWorker` was only in @memoflow/worker and needed each task's
// `.implementation`; DESIGN.md promises `startWorker({ tasks: [clean, total], redisUrl })` from
// @memoflow/sdk, with task definitions, registering a dynamic's declared tasks too.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, dynamic, MemoflowError, startWorker, task, workflow, z, type WorkerPool } from '@memoflow/sdk';
import { silentLogger } from '@memoflow/worker';
import { REDIS_URL, cleanUpPrefix, testPrefix } from '../../packages/worker/src/testing/redis.js';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';

const id = randomBytes(4).toString('hex');
const clean = task({ name: `sw${id}.clean`, inputs: { rows: z.array(z.number()) }, output: z.array(z.number()) }, async ({ rows }) => rows.filter((r) => r >= 0));
const total = task({ name: `sw${id}.total`, inputs: { rows: z.array(z.number()) }, output: z.number() }, async ({ rows }) => rows.reduce((a, b) => a + b, 0));
const square = task({ name: `sw${id}.square`, inputs: { n: z.number() }, output: z.number() }, async ({ n }) => n * n);
const squares = dynamic(
  { name: `sw${id}.squares`, inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), tasks: [square] },
  ({ rows }) => rows.map((n) => square({ n })),
);
const etl = workflow({ name: `sw${id}.main`, inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ total: total({ rows: clean({ rows }) }), squares: squares({ rows }) }));

const pools: WorkerPool[] = [];
const prefixes: string[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) await pool.close();
  for (const prefix of prefixes.splice(0)) await cleanUpPrefix(prefix);
});

describe('startWorker from @memoflow/sdk', () => {
  it('takes task definitions, registers what a dynamic declares, and runs a distributed run', async () => {
    const prefix = testPrefix();
    prefixes.push(prefix);
    const pool = await startWorker({ tasks: [clean, total, squares], redisUrl: REDIS_URL, prefix, concurrency: 2, logger: silentLogger });
    pools.push(pool);
    expect([...pool.tasks].sort()).toEqual([clean.taskName, total.taskName, squares.taskName, square.taskName].sort());

    const schema = `mf_sw_${id}`;
    const mf = await connect({ databaseUrl: TEST_DATABASE_URL, redisUrl: REDIS_URL, schema, prefix, log: 'silent' });
    try {
      const run = await mf.run(etl, { rows: [1, -2, 3] });
      expect(await run.result()).toEqual({ total: 4, squares: [1, 4, 9] });
    } finally {
      await mf.close();
      await dropSchema(schema);
    }
  }, 60_000);

  it('refuses what is not a definition, naming the entry', async () => {
    const error = await startWorker({ tasks: [clean.implementation as never], redisUrl: REDIS_URL }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).message).toMatch(/tasks\[0\].*not a task/);
    await expect(startWorker({ tasks: [] })).rejects.toThrow(/needs `tasks`/);
  });

  it('fails within seconds when Redis cannot be reached', async () => {
    const started = Date.now();
    await expect(startWorker({ tasks: [clean], redisUrl: 'redis://127.0.0.1:1' })).rejects.toThrow(/cannot reach Redis.*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
