// Regression (issue 8, item 7): after the Postgres connection dropped with a query in flight,
// `mf.close()` never resolved (and `memoflow run` printed "succeeded", then exited 13: Node's
// "unsettled top-level await"). Every shutdown step is now bounded. The drop is made by a TCP proxy
// between the client and Postgres that stops forwarding (a network partition: nothing is answered,
// nothing is closed).
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, task, workflow, z } from '@memoflow/sdk';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';
import { startPartitionProxy } from '../support/partition-proxy.js';

const schema = `mf_reg_close_${randomBytes(4).toString('hex')}`;
afterAll(() => dropSchema(schema));

describe('closing always finishes', () => {
  it('mf.close() resolves in bounded time after Postgres stops answering mid-run', async () => {
    const proxy = await startPartitionProxy(TEST_DATABASE_URL);
    try {
      const mf = await connect({ databaseUrl: proxy.url, schema, log: 'silent' });
      const slow = task({ name: `close.slow_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() }, output: z.number() }, async ({ n }) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return n;
      });
      const main = workflow({ name: `close.main_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() } }, ({ n }) => ({ a: slow({ n }), b: slow({ n: 2 }) }));
      await mf.run(main, { n: 1 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      proxy.partition(); // the task results' saves are now in flight for ever
      await new Promise((resolve) => setTimeout(resolve, 600));
      const started = Date.now();
      await mf.close();
      expect(Date.now() - started).toBeLessThan(40_000);
    } finally {
      await proxy.close();
    }
  }, 90_000);
});
