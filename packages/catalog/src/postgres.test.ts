import { entryChecksum } from '@memoflow/engine';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migratePostgres, migrationsFolder } from './migrate.js';
import { NO_TYPE_FETCH, connectionParameters } from './sql-session.js';
import { openPostgresStorage, PostgresRunStore } from './postgres-storage.js';
import type { SqlRunStoreOptions } from './sql-run-store.js';
import postgres from 'postgres';
import type { Storage } from './storage.js';
import { recordInputBinding, resolveBinding, type Binding, type NodeExecution } from '@memoflow/engine';
import { fullNode, runState, whole } from './testing/run-store-fixtures.js';
import { describeCacheCatalogContract, type CacheCatalogFixture } from './testing/cache-catalog.contract.js';
import { describeCacheReservationContract } from './testing/cache-reservation.contract.js';
import { damageEntry } from './testing/sql-damage.js';
import { testSchema, TEST_DATABASE_URL } from './testing/postgres-schema.js';
import { RELEASE_BEFORE_DURATIONS, releaseMigrationFolders } from './testing/release-migrations.js';
import type { FakeClock } from './testing/fake-clock.js';
import { describeRunLeaseContract } from './testing/run-lease.contract.js';
import { describeRunStoreContract } from './testing/run-store.contract.js';

const postgresCatalog = async (clock: FakeClock): Promise<CacheCatalogFixture> => {
  const schema = testSchema();
  const storage = await openPostgresStorage({ url: schema.url, schema: schema.name, clock });
  return {
    catalog: storage.catalog,
    corrupt: (kind, key, how) => damageEntry((text, params) => schema.admin.unsafe(text, params as never[]), kind, key, how),
    reset: async () => {
      await schema.admin`TRUNCATE cache_entries, cache_reservations`;
    },
    close: async () => {
      await storage.close();
      await schema.drop();
    },
  };
};
describeCacheCatalogContract('PostgresCacheCatalog', postgresCatalog);
describeCacheReservationContract('PostgresCacheCatalog', postgresCatalog);

describeRunStoreContract('PostgresRunStore', async () => {
  const schema = testSchema();
  const storage = await openPostgresStorage({ url: schema.url, schema: schema.name, max: 10 });
  return {
    runStore: storage.runStore,
    reset: async () => {
      await schema.admin`TRUNCATE runs, node_executions`;
    },
    close: async () => {
      await storage.close();
      await schema.drop();
    },
  };
});

/** A PostgresRunStore with its own options, on a schema and client of its own, for the contract suite. */
async function optionedRunStore(options: SqlRunStoreOptions) {
  const schema = testSchema();
  await migratePostgres({ url: schema.url, schema: schema.name });
  const client = postgres(schema.url, { max: 4, onnotice: () => {}, ...NO_TYPE_FETCH, connection: connectionParameters(schema.name) });
  return {
    runStore: new PostgresRunStore(drizzle({ client }), options),
    reset: async () => {
      await schema.admin`TRUNCATE runs, node_executions`;
    },
    close: async () => {
      await client.end({ timeout: 5 });
      await schema.drop();
    },
  };
}

// The same contract for a store that creates every run of more than two nodes in slices (one transaction).
describeRunStoreContract('PostgresRunStore, creating in slices of 2 nodes', () => optionedRunStore({ createSliceNodes: 2 }));

// And for one that creates every run of two nodes or more by COPY (node-copy.ts), as it creates runs of COPY_CREATE_NODES.
describeRunStoreContract('PostgresRunStore, creating node rows by COPY', () => optionedRunStore({ copyCreateNodes: 2 }));

describeRunLeaseContract('PostgresRunStore', async (clock) => {
  const schema = testSchema();
  const storage = await openPostgresStorage({ url: schema.url, schema: schema.name, max: 10, clock });
  return {
    runStore: storage.runStore,
    reset: async () => {
      await schema.admin`TRUNCATE runs, node_executions`;
    },
    close: async () => {
      await storage.close();
      await schema.drop();
    },
  };
});

describe('Postgres storage', () => {
  const schema = testSchema();
  const opened: Storage[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((storage) => storage.close()));
    await schema.drop();
  });

  it('migrates once when several processes start at once, in its own schema', async () => {
    // Racing migrations on a schema that does not exist yet: each must succeed, one applies.
    await Promise.all(Array.from({ length: 4 }, () => migratePostgres({ url: schema.url, schema: schema.name })));
    const storages = await Promise.all(Array.from({ length: 4 }, () => openPostgresStorage({ url: schema.url, schema: schema.name, max: 2 })));
    opened.push(...storages);
    const tables = await schema.admin<{ table_name: string }[]>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema.name} ORDER BY table_name`;
    expect(tables.map((t) => t.table_name)).toEqual(['__drizzle_migrations', 'cache_entries', 'cache_reservations', 'node_executions', 'runs', 'workflow_specs']);
    const applied = await schema.admin`SELECT hash FROM __drizzle_migrations`;
    const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    expect(applied).toHaveLength(journal.entries.length); // each migration applied once
  });

  it("stamps entries with the database's clock when no clock is given", async () => {
    const storage = await openPostgresStorage({ url: schema.url, schema: schema.name, max: 1 });
    opened.push(storage);
    const before = Date.now();
    await storage.catalog.put([
      { key: 'db-clock', kind: 'output', project: 'p', domain: 'd', task: 't', parts: { format: 1, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: {} }, value: 1, valueHash: null, runId: 'r', nodeId: 'n' },
    ]);
    const hit = (await storage.catalog.lookup('output', ['db-clock'])).hits.get('db-clock');
    expect(hit?.createdAt).toBeInstanceOf(Date);
    expect(Math.abs((hit?.createdAt.getTime() ?? 0) - before)).toBeLessThan(60_000);
  });

  it("stores an input bound to another node's output as its binding, and reports a reference it cannot resolve", async () => {
    const storage = await openPostgresStorage({ url: schema.url, schema: schema.name, max: 1 });
    opened.push(storage);
    const state = runState('run-refs', ['producer', 'consumer']);
    await storage.runStore.create(state);
    const payload = { rows: 'x'.repeat(10_000), n: 1 };
    const producer: NodeExecution = { ...fullNode('run-refs', 'producer'), output: { value: payload } };
    const after = { run: state.run, nodes: { ...state.nodes, producer } };
    const resolve = (binding: Binding) => recordInputBinding(resolveBinding(binding, after), binding);
    const consumer: NodeExecution = { ...fullNode('run-refs', 'consumer'), inputs: { all: resolve({ kind: 'output', node: 'producer' }), n: resolve({ kind: 'output', node: 'producer', path: ['n'] }), flag: resolve({ kind: 'literal', value: true }) } };
    expect(await storage.runStore.save({ run: state.run, nodes: whole(producer, consumer), expectedVersion: 0 })).toBe(true);
    const [row] = await schema.admin<{ inputs: string }[]>`SELECT inputs::text AS inputs FROM node_executions WHERE run_id = 'run-refs' AND node_id = 'consumer'`;
    expect(JSON.parse(row?.inputs ?? 'null')).toEqual({ all: { binding: { kind: 'output', node: 'producer' } }, n: { binding: { kind: 'output', node: 'producer', path: ['n'] } }, flag: { value: true } });
    expect((await storage.runStore.load('run-refs'))?.nodes['consumer']?.inputs).toEqual({ all: { value: payload }, n: { value: 1 }, flag: { value: true } });

    await schema.admin`UPDATE node_executions SET output = NULL WHERE run_id = 'run-refs' AND node_id = 'producer'`;
    await expect(storage.runStore.load('run-refs')).rejects.toMatchObject({ code: 'RUN_STORE_CORRUPT', message: expect.stringContaining("input 'all' of node 'consumer' is stored as a reference to outputs the run store does not hold") });
  });

  it('closes idempotently', async () => {
    const storage = await openPostgresStorage({ url: TEST_DATABASE_URL, schema: schema.name, max: 1 });
    await storage.close();
    await storage.close();
    await expect(storage.runStore.load('x')).rejects.toThrow();
  });

  it('works in a schema whose name needs quoting', async () => {
    const odd = testSchema('Mf-Test "Odd"');
    try {
      const storage = await openPostgresStorage({ url: odd.url, schema: odd.name, max: 1 });
      opened.push(storage);
      expect(await storage.runStore.list()).toEqual([]);
      const tables = await odd.admin`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = ${odd.name}`;
      expect(tables[0]?.['n']).toBe(6);
      await storage.close();
    } finally {
      await odd.drop();
    }
  });
});

describe('upgrading a Postgres schema of the release before durations', () => {
  const folders = releaseMigrationFolders();
  afterAll(() => folders.remove());

  it('keeps its entries (served, compute unknown) and node rows; that release\'s inserts still work beside this one', async () => {
    const schema = testSchema('mf_upgrade');
    try {
      await schema.admin.unsafe(`CREATE SCHEMA "${schema.name}"`);
      await migrate(drizzle({ client: schema.admin }), { migrationsFolder: await folders.folder(RELEASE_BEFORE_DURATIONS), migrationsSchema: schema.name });
      const parts = { format: 1, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: {} };
      // What that release writes: its columns only.
      const insertEntry = (key: string) =>
        schema.admin.unsafe(
          `INSERT INTO cache_entries (key, kind, project, domain, task, parts, value, value_hash, checksum, run_id, node_id, created_at)
           VALUES ($1, 'output', 'p', 'd', 't', $2::json, '{"n": 1}'::json, NULL, $3, 'r0', 'n0', now())`,
          [key, JSON.stringify(parts), entryChecksum({ key, kind: 'output', value: { n: 1 }, valueHash: null })],
        );
      await insertEntry('before');
      await schema.admin.unsafe(
        `INSERT INTO runs (id, workflow, project, domain, spec, inputs, options, status, version, created_at, updated_at)
         VALUES ('r0', 'w', 'p', 'd', '{"specVersion":1,"name":"w","inputs":{},"hashedInputs":[],"nodes":[],"outputs":{}}', '{}', '{"overwriteCache":false}', 'succeeded', 4, now(), now())`,
      );
      await schema.admin.unsafe(`INSERT INTO node_executions (run_id, node_id, task, phase, cache_status, attempts) VALUES ('r0', 'n0', 't', 'succeeded', 'HIT', 1)`);

      const storage = await openPostgresStorage({ url: schema.url, schema: schema.name, max: 2 }); // migrates to this release
      try {
        await insertEntry('beside');
        const { hits, corrupt } = await storage.catalog.lookup('output', ['before', 'beside']);
        expect(corrupt.size).toBe(0);
        expect([hits.get('before')?.durationMs, hits.get('beside')?.durationMs]).toEqual([null, null]);
        const node = (await storage.runStore.load('r0'))?.nodes['n0'];
        expect(node).toMatchObject({ phase: 'succeeded', cacheStatus: 'HIT', attempts: 1 });
        expect([node?.computeMs, node?.savedMs, node?.cutoffHint]).toEqual([undefined, undefined, undefined]);
        await storage.catalog.put([{ key: 'before', kind: 'output', project: 'p', domain: 'd', task: 't', parts: { ...parts, format: 1 as const }, value: { n: 1 }, valueHash: null, runId: 'r1', nodeId: 'n0', durationMs: 2 ** 40 }]);
        expect((await storage.catalog.list()).map((e) => [e.key, e.durationMs])).toEqual([
          ['before', 2 ** 40],
          ['beside', null],
        ]);
      } finally {
        await storage.close();
      }
    } finally {
      await schema.drop();
    }
  });
});
