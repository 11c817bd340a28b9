// Regression (issue 8, item 6, slot part): a timed-out attempt freed its concurrency slot at once,
// while its body (which ignored the abort signal) kept running, so the retry ran beside it and the
// pool ran more bodies than its concurrency allowed. The worker now holds the attempt's slot and its
// result until the body settles, up to a grace period (packages/worker/src/run-attempt.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

describe.each(MODES.filter((mode) => mode.name !== 'postgres'))('a timed-out body does not run beside its retry ($name)', (mode) => {
  let t: TestConnection;
  beforeAll(async () => {
    t = await mode.open();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('the retry starts only after the timed-out body has ended', async () => {
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    const slow = task({ name: uniqueName('timeout.deaf'), inputs: { n: z.number() }, output: z.number(), timeout: '30ms', retries: 1 }, async ({ n }) => {
      calls += 1;
      active += 1;
      maxActive = Math.max(maxActive, active);
      // The first attempt ignores its abort for 300 ms; the retry finishes in time.
      await new Promise((resolve) => setTimeout(resolve, calls === 1 ? 300 : 1));
      active -= 1;
      return n + 1;
    });
    const main = workflow({ name: uniqueName('timeout.beside'), inputs: { n: z.number() } }, ({ n }) => ({ out: slow({ n }) }));
    const run = await t.mf.run(main, { n: 1 });
    expect(await run.result()).toEqual({ out: 2 });
    expect(calls).toBe(2);
    expect(maxActive).toBe(1);
  });
});
