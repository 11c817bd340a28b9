// Regression (issue 8, item 13): `round-failed` and `PUT_FAILURE` warnings carried drizzle's
// "Failed query: <whole SQL> params: <every parameter>" (94 KB of stderr for one CLI run) and never
// the cause (ECONNREFUSED, CONNECTION_CLOSED). Errors leaving the catalog and run store are now one
// CATALOG_ERROR line naming the operation and the driver's cause with its code.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoflowError, sqlState } from '@memoflow/engine';
import { openPostgresStorage } from '@memoflow/catalog';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';

const schema = `mf_reg_err_${randomBytes(4).toString('hex')}`;
afterAll(() => dropSchema(schema));

describe('a catalog error says what failed and why, in one short line', () => {
  it('a statement the database refuses: its reason and SQLSTATE, no SQL, no parameters', async () => {
    const storage = await openPostgresStorage({ url: TEST_DATABASE_URL, schema, max: 1 });
    try {
      const big = 'x'.repeat(50_000);
      const failure = await storage.runStore.save({ runId: big, expectedVersion: 1, state: { bogus: big } } as never).then(() => undefined, (e: unknown) => e);
      expect(failure).toBeInstanceOf(MemoflowError);
      const message = (failure as MemoflowError).message;
      expect(message.length, message).toBeLessThan(400);
      expect(message).not.toMatch(/Failed query|params:|xxxxxxxxxx/);
      expect(message).toMatch(/^runStore\.save failed: /);
    } finally {
      await storage.close();
    }
  });

  it('a connection that is gone: the driver code (CONNECTION_ENDED), not the statement', async () => {
    const storage = await openPostgresStorage({ url: TEST_DATABASE_URL, schema, max: 1 });
    await storage.runStore.list({ limit: 1 });
    await storage.close();
    const failure = await storage.runStore.list({ limit: 1, workflow: 'y'.repeat(10_000) }).then(() => undefined, (e: unknown) => e);
    expect(failure).toBeInstanceOf(MemoflowError);
    expect((failure as MemoflowError).message).toMatch(/^runStore\.list failed: .*CONNECTION_ENDED/);
    expect((failure as MemoflowError).message.length).toBeLessThan(400);
  });

  it('keeps the SQLSTATE reachable for the store (a duplicate run id is still recognised)', async () => {
    const wrapped = new MemoflowError('CATALOG_ERROR', 'x', { cause: Object.assign(new Error('dup'), { code: '23505' }) });
    expect(sqlState(wrapped)).toBe('23505');
  });
});
