// Regression (issue 8, item 2): a thrown value that is not an Error (5n, a cyclic object, an object
// whose toJSON throws, an Error whose message getter throws) made error conversion throw: the
// embedded run hung for ever (its retries never used) and in the distributed mode the BullMQ job
// retries re-ran the body three times per attempt. Now each attempt fails normally: retries are
// used, the run fails, and the body runs exactly once per attempt, in every mode.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

function throwers(): { name: string; make: () => unknown }[] {
  return [
    { name: 'a BigInt', make: () => 5n },
    {
      name: 'a cyclic object',
      make: () => {
        const value: { self?: unknown } = {};
        value.self = value;
        return value;
      },
    },
    { name: 'an object whose toJSON throws', make: () => ({ toJSON: () => { throw new Error('no JSON for you'); } }) },
    {
      name: 'an Error whose message getter throws',
      make: () => {
        const error = new Error('x');
        Object.defineProperty(error, 'message', { get: () => { throw new Error('getter'); } });
        return error;
      },
    },
  ];
}

describe.each(MODES)('a thrown non-Error fails its attempt normally ($name)', (mode) => {
  let t: TestConnection;
  beforeAll(async () => {
    t = await mode.open();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it.each(throwers())('$name: retries are used, the run fails, one body run per attempt', async ({ make }) => {
    let bodyRuns = 0;
    const explode = task({ name: uniqueName('thrown.explode'), inputs: { n: z.number() }, output: z.number(), retries: 1 }, async () => {
      bodyRuns++;
      throw make();
    });
    const main = workflow({ name: uniqueName('thrown.main'), inputs: { n: z.number() } }, ({ n }) => ({ out: explode({ n }) }));
    const run = await t.mf.run(main, { n: 1 });
    const report = await Promise.race([run.wait(), new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('the run hung')), 30_000))]);
    expect(report.status).toBe('failed');
    const node = report.nodes.find((n) => n.task === explode.taskName);
    expect(node?.status).toBe('failed');
    expect(node?.attempts).toBe(2);
    // Give a (wrong) BullMQ job retry time to run the body again before counting.
    await new Promise((resolve) => setTimeout(resolve, mode.name === 'distributed' ? 1_500 : 0));
    expect(bodyRuns).toBe(2);
  }, 60_000);
});
