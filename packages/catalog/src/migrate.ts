import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePgliteDb } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgresDb } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { NO_TYPE_FETCH, connectionParameters } from './sql-session.js';

/**
 * The migrations drizzle-kit generated from schema.ts. Resolved from this module's location, so
 * it is the same folder from src/ (tests) and from dist/ (the built package ships `drizzle/`).
 */
export const migrationsFolder = fileURLToPath(new URL('../drizzle', import.meta.url));

/** Arbitrary; the advisory-lock class for "migrating a memoflow schema". */
const MIGRATION_LOCK_CLASS = 0x6d656d6f; // 'memo'

export interface PostgresMigrationTarget {
  url: string;
  /** The schema holding the tables and the migrations table; created if missing. */
  schema: string;
}

/**
 * Creates `schema` if missing and applies pending migrations to it, holding a session advisory
 * lock on the schema's name, so processes that start at once migrate one after the other (the
 * later ones find nothing to do). The migrations table lives in the same schema: two schemas of
 * one database never see each other's migration state. Uses its own single connection, closed on
 * return, because a session lock must be taken and released on the connection that migrates.
 */
export async function migratePostgres(target: PostgresMigrationTarget): Promise<void> {
  const client = postgres(target.url, { max: 1, onnotice: () => {}, ...NO_TYPE_FETCH, connection: connectionParameters(target.schema) });
  try {
    const db = drizzlePostgres({ client });
    await db.execute(sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_CLASS}::int, hashtext(${target.schema}))`);
    try {
      await db.execute(sql`CREATE SCHEMA IF NOT EXISTS ${sql.identifier(target.schema)}`);
      await migratePostgresDb(db, { migrationsFolder, migrationsSchema: target.schema });
    } finally {
      await db.execute(sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_CLASS}::int, hashtext(${target.schema}))`);
    }
  } finally {
    await client.end();
  }
}

/**
 * Applies pending migrations to a PGlite database (its `public` schema unless told otherwise).
 * PGlite is one connection in one process, but the lock keeps the contract identical.
 */
export async function migratePglite(client: PGlite, schema = 'public'): Promise<void> {
  const db = drizzlePglite({ client });
  await db.execute(sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_CLASS}::int, hashtext(${schema}))`);
  try {
    await db.execute(sql`CREATE SCHEMA IF NOT EXISTS ${sql.identifier(schema)}`);
    await migratePgliteDb(db, { migrationsFolder, migrationsSchema: schema });
  } finally {
    await db.execute(sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_CLASS}::int, hashtext(${schema}))`);
  }
}
