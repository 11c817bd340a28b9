/**
 * Regression (found by review before release): a create of 20,000 nodes or more, sent by COPY,
 * could commit nothing and fail although Postgres had taken every row. To settle a COPY Postgres
 * refuses after its last row, the first version queued `SELECT 1` behind it as soon as the rows
 * were handed over; while the last chunk was still being written (a large value there: a fully
 * cached run's create carries every output), postgres.js refused that statement
 * (COPY_IN_PROGRESS), and its transaction rolls back on any statement refused inside it. The submit
 * failed after its retries. Now the COPY is settled by its own answer from Postgres.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { pendingExecution, type NodeExecution, type RunState } from '@memoflow/engine';
import { openPostgresStorage } from '@memoflow/catalog';
import { runState } from '../../packages/catalog/src/testing/run-store-fixtures.js';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';

const schema = `mf_reg_copy_${randomBytes(4).toString('hex')}`;
afterAll(() => dropSchema(schema));

function wideRun(id: string, nodes: number, lastOutput: string): RunState {
  const state = runState(id, []);
  for (let i = 0; i < nodes; i += 1) state.nodes[`n${i}`] = pendingExecution(id, `n${i}`, 'etl.clean');
  const last = `n${nodes - 1}`;
  state.nodes[last] = { ...(state.nodes[last] as NodeExecution), phase: 'succeeded', output: { value: lastOutput } };
  return state;
}

describe('a create sent by COPY whose last rows are large', () => {
  it('commits every row, and loads them back', async () => {
    const storage = await openPostgresStorage({ url: TEST_DATABASE_URL, schema, max: 2 });
    try {
      for (const [i, size] of [4_000_000, 12_000_000].entries()) {
        const id = `copy-large-last-${i}`;
        await storage.runStore.create(wideRun(id, 20_000, "x".repeat(size)));
        const loaded = await storage.runStore.load(id);
        expect(Object.keys(loaded?.nodes ?? {})).toHaveLength(20_000);
        expect((loaded?.nodes['n19999']?.output?.value as string | undefined)?.length).toBe(size);
      }
    } finally {
      await storage.close();
    }
  }, 60_000);
});
