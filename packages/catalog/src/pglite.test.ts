import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { entryChecksum, hashJson } from '@memoflow/engine';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { afterAll, describe, expect, it } from 'vitest';
import { migratePglite } from './migrate.js';
import { openPgliteStorage, PgliteCacheCatalog, PgliteRunStore } from './pglite-storage.js';
import { describeCacheCatalogContract, type CacheCatalogFixture } from './testing/cache-catalog.contract.js';
import { describeCacheReservationContract } from './testing/cache-reservation.contract.js';
import { damageEntry } from './testing/sql-damage.js';
import { RELEASE_BEFORE_DURATIONS, RELEASE_BEFORE_WORKFLOW_SPECS, releaseMigrationFolders } from './testing/release-migrations.js';
import { runState } from './testing/run-store-fixtures.js';
import type { FakeClock } from './testing/fake-clock.js';
import { describeRunLeaseContract } from './testing/run-lease.contract.js';
import { describeRunStoreContract } from './testing/run-store.contract.js';

/** An in-memory PGlite per suite, migrated; the client is kept for writing behind the port's back. */
async function freshPglite(): Promise<PGlite> {
  const client = await PGlite.create();
  await migratePglite(client);
  return client;
}

const pgliteCatalog = async (clock: FakeClock): Promise<CacheCatalogFixture> => {
  const client = await freshPglite();
  return {
    catalog: new PgliteCacheCatalog(drizzle({ client }), { clock }),
    corrupt: (kind, key, how) => damageEntry(async (text, params) => (await client.query<{ [column: string]: unknown }>(text, params)).rows, kind, key, how),
    reset: async () => {
      await client.exec('TRUNCATE cache_entries, cache_reservations');
    },
    close: () => client.close(),
  };
};
describeCacheCatalogContract('PgliteCacheCatalog', pgliteCatalog);
describeCacheReservationContract('PgliteCacheCatalog', pgliteCatalog);

describeRunStoreContract('PgliteRunStore', async () => {
  const client = await freshPglite();
  return {
    runStore: new PgliteRunStore(drizzle({ client })),
    reset: async () => {
      await client.exec('TRUNCATE runs, node_executions');
    },
    close: () => client.close(),
  };
});

// The same contract for a store that creates every run of more than two nodes in slices (one transaction).
describeRunStoreContract('PgliteRunStore, creating in slices of 2 nodes', async () => {
  const client = await freshPglite();
  return {
    runStore: new PgliteRunStore(drizzle({ client }), { createSliceNodes: 2 }),
    reset: async () => {
      await client.exec('TRUNCATE runs, node_executions');
    },
    close: () => client.close(),
  };
});

describeRunLeaseContract('PgliteRunStore', async (clock) => {
  const client = await freshPglite();
  return {
    runStore: new PgliteRunStore(drizzle({ client }), { clock }),
    reset: async () => {
      await client.exec('TRUNCATE runs, node_executions');
    },
    close: () => client.close(),
  };
});

describe('openPgliteStorage', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('keeps runs and entries in a data directory across close and reopen', async () => {
    const base = await mkdtemp(join(tmpdir(), 'memoflow-pglite-'));
    dirs.push(base);
    const dataDir = join(base, '.memoflow', 'db'); // created by open
    const first = await openPgliteStorage({ dataDir });
    await first.catalog.put([
      { key: 'persisted', kind: 'output', project: 'p', domain: 'd', task: 't', parts: { format: 1, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: {} }, value: { kept: [1, '2'] }, valueHash: null, runId: 'r1', nodeId: 'n1' },
    ]);
    const createdAt = new Date('2030-01-01T00:00:00.000Z');
    await first.runStore.create({
      run: {
        id: 'r1', workflow: 'w', project: 'p', domain: 'd', spec: { specVersion: 1, name: 'w', inputs: {}, hashedInputs: [], nodes: [], outputs: {} },
        inputs: {}, options: { overwriteCache: false }, status: 'running', outputs: null, error: null, version: 0,
        createdAt, updatedAt: createdAt, finishedAt: null,
      },
      nodes: {},
    });
    await first.close();

    const second = await openPgliteStorage({ dataDir }); // migrations already applied: a no-op
    try {
      const { hits } = await second.catalog.lookup('output', ['persisted']);
      expect(hits.get('persisted')?.value).toEqual({ kept: [1, '2'] });
      expect((await second.runStore.load('r1'))?.run.createdAt).toEqual(createdAt);
      expect(await second.runStore.list()).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it('opens an in-memory database when no data directory is given', async () => {
    const storage = await openPgliteStorage();
    try {
      expect(await storage.catalog.list()).toEqual([]);
      expect(await storage.runStore.list()).toEqual([]);
    } finally {
      await storage.close();
    }
  });
});

describe('upgrading a database of the previous release', () => {
  const folders = releaseMigrationFolders();
  afterAll(() => folders.remove());
  /** The migrations folder as an earlier release shipped it: the migrations named, in journal order. */
  const releaseMigrations = (tags: readonly string[]) => folders.folder(tags);
  /** The migrations folder as the release before cache-entry checksums shipped it: 0000_init only. */
  const previousReleaseMigrations = () => releaseMigrations(['0000_init']);

  it('keeps its runs and node rows; its cache entries are corrupt (not bound to their key) until rewritten', async () => {
    const client = await PGlite.create();
    try {
      await migrate(drizzle({ client }), { migrationsFolder: await previousReleaseMigrations(), migrationsSchema: 'public' });
      // Rows as the previous release wrote them: a value-only checksum, a node row without the new column.
      const parts = { format: 1 as const, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: {} };
      await client.query(
        `INSERT INTO cache_entries (key, kind, project, domain, task, parts, value, value_hash, checksum, run_id, node_id, created_at)
         VALUES ('old', 'output', 'p', 'd', 't', $1::json, '{"n": 1}'::json, NULL, $2, 'r0', 'n0', now())`,
        [JSON.stringify(parts), hashJson({ n: 1 })],
      );
      await client.query(
        `INSERT INTO runs (id, workflow, project, domain, spec, inputs, options, status, version, created_at, updated_at)
         VALUES ('r0', 'w', 'p', 'd', '{"specVersion":1,"name":"w","inputs":{},"hashedInputs":[],"nodes":[],"outputs":{}}', '{}', '{"overwriteCache":false}', 'running', 3, now(), now())`,
      );
      await client.query(`INSERT INTO node_executions (run_id, node_id, task, phase, attempts) VALUES ('r0', 'n0', 't', 'writing', 1)`);

      await migratePglite(client); // what opening the data directory with this release does
      const catalog = new PgliteCacheCatalog(drizzle({ client }));
      const store = new PgliteRunStore(drizzle({ client }));
      const looked = await catalog.lookup('output', ['old']);
      expect(looked.hits.size).toBe(0);
      expect(looked.corrupt.get('old')).toMatch(/written by an earlier release, not bound to its key/);
      const loaded = await store.load('r0');
      expect(loaded?.run.version).toBe(3);
      expect(loaded?.nodes['n0']).toMatchObject({ phase: 'writing', attempts: 1 });
      expect(loaded?.nodes['n0']?.cacheWriteRetry ?? null).toBeNull();
      // A rerun's put rewrites the entry in the new format.
      await catalog.put([{ key: 'old', kind: 'output', project: 'p', domain: 'd', task: 't', parts, value: { n: 1 }, valueHash: null, runId: 'r1', nodeId: 'n0' }]);
      expect((await catalog.lookup('output', ['old'])).hits.get('old')?.value).toEqual({ n: 1 });
    } finally {
      await client.close();
    }
  });

  it('entries and node rows of the release before durations keep working: their compute is unknown (null), and that release\'s statements still work', async () => {
    const client = await PGlite.create();
    try {
      await migrate(drizzle({ client }), { migrationsFolder: await releaseMigrations(RELEASE_BEFORE_DURATIONS), migrationsSchema: 'public' });
      const parts = { format: 1 as const, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: {} };
      // What that release writes: its columns only (a controller of it may still be running beside this one after the upgrade).
      const insertEntry = (key: string) =>
        client.query(
          `INSERT INTO cache_entries (key, kind, project, domain, task, parts, value, value_hash, checksum, run_id, node_id, created_at)
           VALUES ($1, 'output', 'p', 'd', 't', $2::json, '{"n": 1}'::json, NULL, $3, 'r0', 'n0', now())`,
          [key, JSON.stringify(parts), entryChecksum({ key, kind: 'output', value: { n: 1 }, valueHash: null })],
        );
      await insertEntry('before');
      await client.query(
        `INSERT INTO runs (id, workflow, project, domain, spec, inputs, options, status, version, created_at, updated_at)
         VALUES ('r0', 'w', 'p', 'd', '{"specVersion":1,"name":"w","inputs":{},"hashedInputs":[],"nodes":[],"outputs":{}}', '{}', '{"overwriteCache":false}', 'running', 1, now(), now())`,
      );
      await client.query(`INSERT INTO node_executions (run_id, node_id, task, phase, cache_status, attempts) VALUES ('r0', 'n0', 't', 'succeeded', 'HIT', 1)`);

      await migratePglite(client); // what opening the data directory with this release does
      await insertEntry('beside');
      const catalog = new PgliteCacheCatalog(drizzle({ client }));
      const store = new PgliteRunStore(drizzle({ client }));
      const { hits, corrupt } = await catalog.lookup('output', ['before', 'beside']);
      expect(corrupt.size).toBe(0);
      expect([hits.get('before')?.durationMs, hits.get('beside')?.durationMs]).toEqual([null, null]); // served; what it saves is unknown
      expect((await catalog.list()).map((e) => e.durationMs)).toEqual([null, null]);
      const loaded = await store.load('r0');
      const node = loaded?.nodes['n0'];
      expect(node).toMatchObject({ phase: 'succeeded', cacheStatus: 'HIT' });
      expect([node?.computeMs, node?.savedMs, node?.cutoffHint]).toEqual([undefined, undefined, undefined]);
      // This release saves the new fields on the old row, and its put records a duration.
      if (loaded === undefined || node === undefined) throw new Error('run r0 not loaded');
      const hint = { upstream: 'up', savedMs: 5, entry: { runId: 'rx', nodeId: 'n0' } };
      expect(await store.save({ run: loaded.run, nodes: [{ node: { ...node, savedMs: 1234, cutoffHint: hint }, changed: ['savedMs', 'cutoffHint'] }], expectedVersion: 1 })).toBe(true);
      expect((await store.load('r0'))?.nodes['n0']).toMatchObject({ savedMs: 1234, cutoffHint: hint });
      await catalog.put([{ key: 'before', kind: 'output', project: 'p', domain: 'd', task: 't', parts, value: { n: 1 }, valueHash: null, runId: 'r1', nodeId: 'n0', durationMs: 42 }]);
      expect((await catalog.lookup('output', ['before'])).hits.get('before')?.durationMs).toBe(42);
    } finally {
      await client.close();
    }
  });

  it('a run of the release before workflow_specs (its spec in the row) loads and saves, and runs created beside it name theirs by digest', async () => {
    const client = await PGlite.create();
    try {
      await migrate(drizzle({ client }), { migrationsFolder: await releaseMigrations(RELEASE_BEFORE_WORKFLOW_SPECS), migrationsSchema: 'public' });
      const oldSpec = '{"specVersion":1,"name":"w","inputs":{},"hashedInputs":[],"nodes":[],"outputs":{"z":{"kind":"input","name":"a"},"a":{"kind":"input","name":"z"}}}';
      await client.query(
        `INSERT INTO runs (id, workflow, project, domain, spec, inputs, options, status, version, created_at, updated_at)
         VALUES ('old', 'w', 'p', 'd', $1::json, '{}', '{"overwriteCache":false}', 'running', 1, now(), now())`,
        [oldSpec],
      );
      await migratePglite(client); // what opening the data directory with this release does
      const store = new PgliteRunStore(drizzle({ client }));
      const loaded = await store.load('old');
      expect(JSON.stringify(loaded?.run.spec)).toBe(oldSpec); // key order as that release wrote it
      if (loaded === undefined) throw new Error('run old not loaded');
      expect(await store.save({ run: { ...loaded.run, status: 'succeeded', finishedAt: new Date() }, nodes: [], expectedVersion: 1 })).toBe(true);
      expect(JSON.stringify((await store.load('old'))?.run.spec)).toBe(oldSpec);

      await store.create(runState('new', ['n1']));
      const rows = await client.query<{ id: string; inline: boolean; digest: string | null }>(`SELECT id, spec IS NOT NULL AS inline, spec_digest AS digest FROM runs ORDER BY id`);
      expect(rows.rows.map((r) => [r.id, r.inline, r.digest === null])).toEqual([['new', false, false], ['old', true, true]]);
      expect((await store.load('new'))?.run.spec).toEqual(runState('new', []).run.spec);
    } finally {
      await client.close();
    }
  });

  it('a run of the release before leases is free: a controller leases it, and that release\'s statements still work', async () => {
    const client = await PGlite.create();
    try {
      await migrate(drizzle({ client }), { migrationsFolder: await releaseMigrations(['0000_init', '0001_node_cache_write_retry']), migrationsSchema: 'public' });
      const insertOld = (id: string) =>
        client.query(
          `INSERT INTO runs (id, workflow, project, domain, spec, inputs, options, status, version, created_at, updated_at)
           VALUES ($1, 'w', 'p', 'd', '{"specVersion":1,"name":"w","inputs":{},"hashedInputs":[],"nodes":[],"outputs":{}}', '{}', '{"overwriteCache":false}', 'running', 2, now(), now())`,
          [id],
        );
      await insertOld('before');
      await migratePglite(client);
      // A controller of the previous release, still running beside the new ones, names only the columns it knows.
      await insertOld('beside');
      await client.query(`UPDATE runs SET version = version + 1, status = 'running' WHERE id = 'beside' AND version = 2`);
      const store = new PgliteRunStore(drizzle({ client }));
      expect((await store.listUnleased()).map((r) => r.id).sort()).toEqual(['before', 'beside']);
      expect(await store.acquireLease('before', { owner: 'c1', ttlMs: 10_000 })).toMatchObject({ kind: 'acquired' });
      expect(await store.acquireLease('before', { owner: 'c2', ttlMs: 10_000 })).toMatchObject({ kind: 'held', owner: 'c1' });
      expect((await store.load('beside'))?.run).toMatchObject({ version: 3, status: 'running' });
      expect(Object.keys((await store.load('before'))?.run ?? {})).not.toContain('owner');
    } finally {
      await client.close();
    }
  });
});
