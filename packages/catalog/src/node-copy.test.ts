import { pendingExecution, type NodeExecution } from '@memoflow/engine';
import { drizzle } from 'drizzle-orm/postgres-js';
import fc from 'fast-check';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migratePostgres } from './migrate.js';
import { nodeCopyChunks } from './node-copy.js';
import { PostgresRunStore } from './postgres-storage.js';
import { copyField, copyJsonField } from './copy-in.js';
import { connectionParameters, NO_TYPE_FETCH, postgresJsSession, storableJson } from './sql-session.js';
import { jsonValue } from './testing/json-arbitrary.js';
import { testSchema, type TestSchema } from './testing/postgres-schema.js';
import { runState } from './testing/run-store-fixtures.js';

// Creates of large runs send their node rows by COPY (sql-run-store.ts, COPY_CREATE_NODES). The
// contract suite runs over a store that does it for every run of two nodes (postgres.test.ts);
// these are the parts the contract's fixtures do not reach: text columns holding COPY's own
// special characters, a COPY that fails half way, and drizzle still handing over the transaction.

let schema: TestSchema;
let client: postgres.Sql;
let store: PostgresRunStore;

beforeAll(async () => {
  schema = testSchema();
  await migratePostgres({ url: schema.url, schema: schema.name });
  client = postgres(schema.url, { max: 2, onnotice: () => {}, ...NO_TYPE_FETCH, connection: connectionParameters(schema.name) });
  store = new PostgresRunStore(drizzle({ client }), { copyCreateNodes: 1 });
});

afterAll(async () => {
  await client.end({ timeout: 5 });
  await schema.drop();
});

// Storable text (no U+0000, no lone surrogate), weighted towards what COPY's text format reads specially.
const copyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 16 }).map((text) => text.replaceAll('\u0000', '\u0001').replace(/[\ud800-\udfff]/g, 'x')),
  fc.constantFrom('\\', '\\N', '\\.', '\t', '\n', '\r', '\r\n', 'a\\tb', '\\\\N', '', ' ', 'é😀'),
);

// Node ids as a run holds them: any text but '__proto__', which validateSpec refuses (a run's node
// map built by assignment cannot hold it; fast-check generates it often, and the shrinking of
// that failure outlasted the test's timeout).
const nodeId = copyText.filter((id) => id !== '__proto__');

describe('node rows created by COPY', () => {
  it("a postgres.js transaction's session can COPY (drizzle still keeps postgres.js's TransactionSql where we read it)", async () => {
    const session = postgresJsSession(drizzle({ client }));
    expect(session.copies).toBe(true);
    await session.transaction(async (tx) => {
      expect(tx.copyIn).toBeTypeOf('function');
    });
  });

  it('loads back every text column exactly, whatever characters COPY reads specially (property)', async () => {
    let count = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(nodeId, { minLength: 1, maxLength: 4 }), copyText, copyText, jsonValue, async (nodeIds, task, reason, value) => {
        const runId = `copy-text-${(count += 1)}`;
        const state = runState(runId, []);
        for (const nodeId of nodeIds) {
          state.nodes[nodeId] = { ...pendingExecution(runId, nodeId, task), cacheReason: reason, output: { value } };
        }
        await store.create(state);
        const loaded = await store.load(runId);
        expect(Object.keys(loaded?.nodes ?? {}).sort()).toEqual([...nodeIds].sort());
        for (const nodeId of nodeIds) {
          const node = loaded?.nodes[nodeId];
          expect(node?.task).toBe(task);
          expect(node?.cacheReason).toBe(reason);
          expect(JSON.stringify(node?.output)).toBe(JSON.stringify({ value }));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a COPY refused half way (an unstorable value in the last chunk) creates nothing, and the store goes on', async () => {
    const runId = 'copy-refused-late';
    const state = runState(runId, []);
    for (let i = 0; i < 2_500; i += 1) state.nodes[`n${i}`] = pendingExecution(runId, `n${i}`, 'etl.clean');
    state.nodes['n2499'] = { ...(state.nodes['n2499'] as NodeExecution), cacheReason: 'nul \u0000' };
    await expect(store.create(state)).rejects.toThrow(/not storable/);
    expect(await store.load(runId)).toBeUndefined();
    const [{ rows } = { rows: -1 }] = await client<{ rows: number }[]>`SELECT count(*)::int AS rows FROM node_executions WHERE run_id = ${runId}`;
    expect(rows).toBe(0);
    await store.create(runState(runId, ['n1', 'n2']));
    expect(Object.keys((await store.load(runId))?.nodes ?? {})).toEqual(['n1', 'n2']);
  });

  it('a number a column cannot hold (not whole, out of range) fails the create, naming node and column, and creates nothing', async () => {
    for (const [field, value] of [['computeMs', 1.5], ['attempts', 2 ** 31], ['savedMs', 2 ** 63], ['attempts', -(2 ** 31) - 1]] as const) {
      const runId = `copy-refused-${field}-${value}`;
      const state = runState(runId, ['n1', 'n2']);
      state.nodes['n2'] = { ...(state.nodes['n2'] as NodeExecution), [field]: value };
      await expect(store.create(state)).rejects.toThrow(/node 'n2' .*must be a whole number/);
      expect(await store.load(runId)).toBeUndefined();
      await store.create(runState(runId, ['n1']));
      expect(await store.load(runId)).toBeDefined();
    }
  });

  it('NaN and the infinities are stored as NULL, as a json recordset reads what JSON.stringify makes of them', async () => {
    const runId = 'copy-non-finite';
    const state = runState(runId, ['n1', 'n2']);
    state.nodes['n1'] = { ...(state.nodes['n1'] as NodeExecution), computeMs: Number.NaN };
    state.nodes['n2'] = { ...(state.nodes['n2'] as NodeExecution), savedMs: Number.POSITIVE_INFINITY };
    await store.create(state);
    const loaded = await store.load(runId);
    expect(loaded?.nodes['n1']?.computeMs ?? null).toBeNull();
    expect(loaded?.nodes['n2']?.savedMs ?? null).toBeNull();
  });

  it('a COPY Postgres refuses after its last row (here: a timestamp past its range) fails the create instead of hanging, and the store goes on', async () => {
    const runId = 'copy-refused-by-postgres';
    const state = runState(runId, ['n1', 'n2']);
    // toISOString writes a year past 9999 with a sign ('+275760-...'), which Postgres does not read.
    state.nodes['n2'] = { ...(state.nodes['n2'] as NodeExecution), startedAt: new Date(8.64e15) };
    // Postgres's own error (22008, datetime field out of range), not a stand-in.
    await expect(store.create(state)).rejects.toThrow(/out of range|invalid input syntax/);
    expect(await store.load(runId)).toBeUndefined();
    await store.create(runState(runId, ['n1']));
    expect(await store.load(runId)).toBeDefined();
  });

  it("a JSON column's text needs no storability check of its own: JSON.stringify escapes what copyField refuses (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (value) => {
        let text: string;
        try {
          text = storableJson(value);
        } catch {
          return; // refused before it gets here, as every value with U+0000 or a lone surrogate is
        }
        expect(copyJsonField(text)).toBe(copyField(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes a field as COPY text: null as \\N, the four specials escaped, unstorable text refused', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(copyField('\\N')).toBe('\\\\N');
    expect(() => copyField('x\u0000')).toThrow(/not storable/);
    expect(() => copyField('x\ud800')).toThrow(/not storable/);
    const [chunk] = [...nodeCopyChunks('r\t1', [pendingExecution('r\t1', 'n\n1', 'etl.clean')])];
    expect(chunk?.startsWith('r\\t1\tn\\n1\tetl.clean\tpending\t')).toBe(true);
    expect(chunk?.endsWith('\n')).toBe(true);
  });
});
