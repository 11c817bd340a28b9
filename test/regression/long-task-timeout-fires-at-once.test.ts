// Regression (issue 8, item 6, timer part): a task timeout over 2^31-1 ms ('25d', '4w', 1e12) timed
// the attempt out after 1 ms (Node's setTimeout overflows and fires at once). The worker now chains
// timers up to the whole timeout (packages/worker/src/long-timeout.ts, tested with fake timers there).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

const embedded = MODES.filter((mode) => mode.name === 'embedded');

describe.each(embedded)('a long task timeout does not fire at once ($name)', (mode) => {
  let t: TestConnection;
  beforeAll(async () => {
    t = await mode.open();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it.each(['25d', '4w', 1e12] as const)('timeout %s: a 100 ms body succeeds', async (timeout) => {
    const slow = task({ name: uniqueName('timeout.slow'), inputs: { n: z.number() }, output: z.number(), timeout }, async ({ n }) => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      return n + 1;
    });
    const main = workflow({ name: uniqueName('timeout.main'), inputs: { n: z.number() } }, ({ n }) => ({ out: slow({ n }) }));
    const run = await t.mf.run(main, { n: 1 });
    expect(await run.result()).toEqual({ out: 2 });
  });
});
