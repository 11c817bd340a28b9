import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { WorkflowSpec } from '@memoflow/engine';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { migratePglite } from './migrate.js';
import { openPgliteStorage, PgliteCacheCatalog, PgliteRunStore } from './pglite-storage.js';
import { describeCacheCatalogContract } from './testing/cache-catalog.contract.js';
import { describeRunStoreContract } from './testing/run-store.contract.js';

/** An in-memory PGlite per suite, migrated; the client is kept for writing behind the port's back. */
async function freshPglite(): Promise<PGlite> {
  const client = await PGlite.create();
  await migratePglite(client);
  return client;
}

describeCacheCatalogContract('PgliteCacheCatalog', async (clock) => {
  const client = await freshPglite();
  return {
    catalog: new PgliteCacheCatalog(drizzle({ client }), { clock }),
    corrupt: async (kind, key, how) => {
      const value = how === 'tampered' ? '{"tampered": true}' : '1e400'; // 1e400 decodes to Infinity: no JSON value
      const result = await client.query('UPDATE cache_entries SET value = $1::json WHERE kind = $2 AND key = $3', [value, kind, key]);
      expect(result.affectedRows).toBe(1);
    },
    reset: async () => {
      await client.exec('TRUNCATE cache_entries');
    },
    close: () => client.close(),
  };
});

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
        id: 'r1', workflow: 'w', project: 'p', domain: 'd', spec: { specVersion: 1, name: 'w', inputs: {}, hashedInputs: [], nodes: [], outputs: {} } as WorkflowSpec,
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
