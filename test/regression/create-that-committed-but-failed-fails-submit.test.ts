// Regression: a submit whose create committed but whose reply was lost (the connection dropped
// after COMMIT: an ambiguous commit) failed, although the run existed. The caller was told nothing
// ran; the run sat leased to a controller that drove nothing until a sweeper found it and ran it
// anyway, and the caller's retry submitted it a second time. Now a create that rejects asks whether
// the run exists, and the submit goes on if it does. The ambiguous commit is real: a proxy lets the
// create run and commit, then closes the connection before Postgres's reply reaches the client.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, task, workflow, z } from '@memoflow/sdk';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';
import { startPartitionProxy } from '../support/partition-proxy.js';

const schema = `mf_reg_create_${randomBytes(4).toString('hex')}`;
afterAll(() => dropSchema(schema));

describe('a create that committed although its connection dropped', () => {
  it('submits the run once, and the run finishes', async () => {
    const proxy = await startPartitionProxy(TEST_DATABASE_URL, { dropReplyTo: 'INSERT INTO "runs"' }); // the create's statement
    try {
      const mf = await connect({ databaseUrl: proxy.url, schema, log: 'silent' });
      try {
        let bodies = 0;
        const add = task({ name: `create.add_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() }, output: z.number() }, ({ n }) => {
          bodies += 1;
          return n + 1;
        });
        const main = workflow({ name: `create.main_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() } }, ({ n }) => ({ out: add({ n: add({ n }) }) }));
        const run = await mf.run(main, { n: 1 });
        expect(proxy.ambiguousCommits()).toBe(1); // the create committed, unanswered
        const outcome = await Promise.race([run.result(), new Promise((resolve) => setTimeout(() => resolve('still running after 20 s'), 20_000))]);
        expect(outcome).toEqual({ out: 3 });
        expect(bodies).toBe(2);
        const runs = await mf.runs.list(); // a schema of its own: this run only
        expect(runs.map((r) => r.id)).toEqual([run.id]);
      } finally {
        await mf.close();
      }
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
