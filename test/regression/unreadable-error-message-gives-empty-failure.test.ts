/**
 * Regression (found by the fuzz suite, test/fuzz): a task that threw an Error whose `message`
 * getter throws failed normally but with an empty message: the run's error read "node 'x' (task)
 * failed: " and said nothing of the cause. The message now says what happened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

const postgres = MODES.find((mode) => mode.name === 'postgres');

describe('an Error with an unreadable message still says why its node failed', () => {
  let t: TestConnection;
  beforeAll(async () => {
    t = await (postgres as NonNullable<typeof postgres>).open();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('the node and the run say the message cannot be read', async () => {
    const explode = task({ name: uniqueName('reg.unreadable'), inputs: {}, output: z.number() }, () => {
      const error = new Error('x');
      Object.defineProperty(error, 'message', { get: () => { throw new Error('getter'); } });
      throw error;
    });
    const flow = workflow({ name: uniqueName('reg.unreadable.flow'), inputs: {} }, () => ({ out: explode({}) }));
    const report = await (await t.mf.run(flow, {})).wait();
    expect(report.status).toBe('failed');
    expect(report.nodes[0]?.error?.message).toBe('an Error whose message cannot be read (its getter throws)');
    expect(report.error?.message).toMatch(/failed: an Error whose message cannot be read/);
  });
});
