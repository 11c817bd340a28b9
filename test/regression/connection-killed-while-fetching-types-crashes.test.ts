// Regression: `memoflow run` crashed with "unexpected error: write CONNECTION_CLOSED" (or 57P01)
// when Postgres connections were terminated while the pool opened new ones. postgres.js sends
// its own first query on every new connection (the array types, `fetch_types`) and drops that
// query's promise (porsager/postgres#1192, #1205, #1223, open): if the connection dies then, the
// rejection is unhandled and Node ends the process. No caller can catch it. memoflow reads no
// array columns, so its pools are opened with `fetch_types: false` and never send that query.
// A proxy closes any connection that sends it, which is how a terminated backend looks to the client.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, task, workflow, z } from '@memoflow/sdk';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';
import { startPartitionProxy } from '../support/partition-proxy.js';

const schema = `mf_reg_types_${randomBytes(4).toString('hex')}`;
afterAll(() => dropSchema(schema));

describe('a connection that dies while it opens', () => {
  it('never sends the array-types query, so its death is never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const proxy = await startPartitionProxy(TEST_DATABASE_URL, { killConnectionsSending: 'pg_catalog.pg_type' });
    try {
      const mf = await connect({ databaseUrl: proxy.url, schema, log: 'silent' });
      try {
        const add = task({ name: `types.add_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() }, output: z.number(), cache: { version: '1' } }, ({ n }) => n + 1);
        const main = workflow({ name: `types.main_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() } }, ({ n }) => ({ out: add({ n: add({ n }) }) }));
        const run = await mf.run(main, { n: 1 });
        expect(await run.result()).toEqual({ out: 3 });
      } finally {
        await mf.close();
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // an unhandled rejection is reported after a turn
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await proxy.close();
    }
  }, 60_000);
});
