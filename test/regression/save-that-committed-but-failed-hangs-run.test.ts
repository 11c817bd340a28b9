// Regression: a run hung for ever when a save committed but its client saw an error (the
// connection dropped after COMMIT, before the reply: an ambiguous commit). The controller retried
// the round on a fresh read; the store already held the decision (node `a` dispatched), so its
// events were stale and decided nothing, and the dispatch that decision asked for never happened.
// Now the first state read after a failed save has its effects repeated (idempotent: a dispatch of
// an attempt already queued or finished is a no-op), as a recovering controller's are. The
// ambiguous commit is real: a proxy lets the first save run and commit, then closes the
// connection before Postgres's reply reaches the client.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, task, workflow, z } from '@memoflow/sdk';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';
import { startPartitionProxy } from '../support/partition-proxy.js';

const schema = `mf_reg_commit_${randomBytes(4).toString('hex')}`;
afterAll(() => dropSchema(schema));

describe('a save that committed although its connection dropped', () => {
  it('does not lose the effects it decided: the run finishes', async () => {
    const proxy = await startPartitionProxy(TEST_DATABASE_URL, { dropReplyTo: 'WITH bumped AS' });
    try {
      const mf = await connect({ databaseUrl: proxy.url, schema, log: 'silent' });
      try {
        let bodies = 0;
        const add = task({ name: `commit.add_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() }, output: z.number() }, ({ n }) => {
          bodies += 1;
          return n + 1;
        });
        const main = workflow({ name: `commit.main_${randomBytes(3).toString('hex')}`, inputs: { n: z.number() } }, ({ n }) => ({ out: add({ n: add({ n }) }) }));
        const run = await mf.run(main, { n: 1 });
        const outcome = await Promise.race([run.result(), new Promise((resolve) => setTimeout(() => resolve('still running after 20 s'), 20_000))]);
        expect(proxy.ambiguousCommits()).toBe(1); // the first save (dispatching the first `add`) committed, unanswered
        expect(outcome).toEqual({ out: 3 });
        expect(bodies).toBe(2); // the repeated dispatch ran nothing twice
      } finally {
        await mf.close();
      }
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
