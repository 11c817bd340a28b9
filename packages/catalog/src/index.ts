export { cacheEntries, cacheReservations, nodeExecutions, runs } from './schema.js';
export { RESERVATION_CHANNEL } from './sql-reservations.js';
export { migrationsFolder, migratePglite, migratePostgres, type PostgresMigrationTarget } from './migrate.js';
export type { Storage } from './storage.js';
export { SqlCacheCatalog, type SqlCacheCatalogOptions } from './sql-cache-catalog.js';
export { SqlRunStore, type SqlRunStoreOptions } from './sql-run-store.js';
export { postgresJsSession, pgliteSession, type AnyPgDatabase, type SqlSession } from './sql-session.js';
export {
  DEFAULT_POSTGRES_SCHEMA,
  openPostgresStorage,
  PostgresCacheCatalog,
  PostgresRunStore,
  type PostgresStorageOptions,
} from './postgres-storage.js';
export { openPgliteStorage, PgliteCacheCatalog, PgliteRunStore, type PgliteStorageOptions } from './pglite-storage.js';
