import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Clock } from '@memoflow/engine';
import { drizzle, type PgliteDatabase } from 'drizzle-orm/pglite';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { migratePglite } from './migrate.js';
import { SqlCacheCatalog, type SqlCacheCatalogOptions } from './sql-cache-catalog.js';
import { SqlRunStore, type SqlRunStoreOptions } from './sql-run-store.js';
import { pgliteSession, withReadableErrors } from './sql-session.js';
import type { Storage } from './storage.js';

/** The cache catalog in an embedded PGlite database. */
export class PgliteCacheCatalog extends SqlCacheCatalog {
  constructor(db: PgliteDatabase, options: SqlCacheCatalogOptions = {}) {
    super(pgliteSession(db), options);
  }
}

/** The run store in an embedded PGlite database. */
export class PgliteRunStore extends SqlRunStore {
  constructor(db: PgliteDatabase, options: SqlRunStoreOptions = {}) {
    super(pgliteSession(db), options);
  }
}

export interface PgliteStorageOptions {
  /** A directory for the database (created if missing, e.g. `./.memoflow/db`); omitted: in memory. */
  dataDir?: string;
  /** Sets cache entries' `createdAt` and measures run leases (default: the database's clock). */
  clock?: Clock;
}

/** Opens the catalog and run store in PGlite, applying pending migrations. */
export async function openPgliteStorage(options: PgliteStorageOptions = {}): Promise<Storage> {
  let lock: DataDirLock | undefined;
  if (options.dataDir !== undefined) {
    await makeDirectory(options.dataDir);
    lock = await lockDataDir(options.dataDir);
  }
  let client: PGlite;
  try {
    client = await PGlite.create(options.dataDir);
  } catch (error) {
    await lock?.release();
    throw error;
  }
  try {
    await migratePglite(client);
  } catch (error) {
    await client.close();
    await lock?.release();
    throw error;
  }
  const db = drizzle({ client });
  let closed: Promise<void> | undefined;
  return {
    catalog: withReadableErrors(new PgliteCacheCatalog(db, options.clock === undefined ? {} : { clock: options.clock }), 'catalog'),
    runStore: withReadableErrors(new PgliteRunStore(db, options.clock === undefined ? {} : { clock: options.clock }), 'runStore'),
    close: () => (closed ??= client.close().finally(() => lock?.release())),
  };
}

/**
 * `mkdir -p`, one level at a time. Node's `mkdir(..., { recursive: true })` never settles for a path
 * under /proc (it retries ENOENT forever), so a data directory there would hang the open instead
 * of failing with the cause.
 */
async function makeDirectory(path: string): Promise<void> {
  const missing: string[] = [];
  for (let current = path; ; current = dirname(current)) {
    try {
      await mkdir(current);
      break;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'EEXIST') break;
      if (code !== 'ENOENT' || dirname(current) === current || missing.length > 64) throw error;
      missing.push(current);
    }
  }
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
    }
  }
}
