import type { Clock } from '@memoflow/engine';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { migratePostgres } from './migrate.js';
import { SqlCacheCatalog, type SqlCacheCatalogOptions } from './sql-cache-catalog.js';
import { SqlRunStore, type SqlRunStoreOptions } from './sql-run-store.js';
import { NO_TYPE_FETCH, connectionParameters, postgresJsSession, withReadableErrors } from './sql-session.js';
import type { Storage } from './storage.js';

/** The cache catalog in Postgres, through postgres.js. */
export class PostgresCacheCatalog extends SqlCacheCatalog {
  constructor(db: PostgresJsDatabase, options: SqlCacheCatalogOptions = {}) {
    super(postgresJsSession(db), options);
  }
}

/** The run store in Postgres, through postgres.js. */
export class PostgresRunStore extends SqlRunStore {
  constructor(db: PostgresJsDatabase, options: SqlRunStoreOptions = {}) {
    super(postgresJsSession(db), options);
  }
}

export interface PostgresStorageOptions {
  /** A postgres:// connection URL. */
  url: string;
  /** The schema holding memoflow's tables (default `memoflow`); created and migrated if needed. */
  schema?: string;
  /** Pool size (default 10). */
  max?: number;
  /** Sets cache entries' `createdAt` and measures run leases (default: the database's clock). */
  clock?: Clock;
}

export const DEFAULT_POSTGRES_SCHEMA = 'memoflow';

/**
 * Opens the catalog and run store in a Postgres schema: creates the schema if missing and applies
 * pending migrations (safe when several processes start at once), then opens a pool whose
 * connections all use that schema (`search_path`).
 */
export async function openPostgresStorage(options: PostgresStorageOptions): Promise<Storage> {
  const schema = options.schema ?? DEFAULT_POSTGRES_SCHEMA;
  await migratePostgres({ url: options.url, schema });
  const client = postgres(options.url, {
    max: options.max ?? 10,
    onnotice: () => {},
    ...NO_TYPE_FETCH,
    connection: connectionParameters(schema),
  });
  const db = drizzle({ client });
  let closed: Promise<void> | undefined;
  return {
    catalog: withReadableErrors(new PostgresCacheCatalog(db, options.clock === undefined ? {} : { clock: options.clock }), 'catalog'),
    runStore: withReadableErrors(new PostgresRunStore(db, options.clock === undefined ? {} : { clock: options.clock }), 'runStore'),
    // A connection that dropped with a query in flight never answers: after `timeout` seconds
    // postgres.js destroys what is left instead of waiting for it forever.
    close: () => (closed ??= client.end({ timeout: 5 })),
  };
}
