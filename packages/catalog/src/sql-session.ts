import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn, PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js';

/** Any drizzle Postgres database: the adapters share one implementation over the query builder. */
export type AnyPgDatabase = PgDatabase<PgQueryResultHKT, Record<string, unknown>>;

/**
 * What the shared adapters need from a back end: the query builder, and raw statements (drizzle's
 * `sql` template) returning plain rows. Raw rows are the driver's: jsonb arrives parsed, and
 * timestamps arrive as text (drizzle turns the drivers' date parsing off), so raw statements
 * return no timestamps and the builder reads them instead.
 */
export interface SqlSession {
  readonly db: AnyPgDatabase;
  rows<T extends Record<string, unknown>>(query: SQL): Promise<T[]>;
}

export function postgresJsSession(db: PostgresJsDatabase): SqlSession {
  return {
    db: db as unknown as AnyPgDatabase,
    // postgres.js returns the rows themselves (an array).
    rows: async <T extends Record<string, unknown>>(query: SQL) => [...(await db.execute(query))] as unknown as T[],
  };
}

export function pgliteSession(db: PgliteDatabase): SqlSession {
  return {
    db: db as unknown as AnyPgDatabase,
    // PGlite returns a result object with `rows`.
    rows: async <T extends Record<string, unknown>>(query: SQL) => (await db.execute(query)).rows as T[],
  };
}

/** One jsonb parameter, however large the batch (Postgres allows at most 65,535 parameters). */
export function jsonParam(value: unknown): SQL {
  return sql`${JSON.stringify(value)}::jsonb`;
}

/** `column = ANY(keys)` with the keys passed as one jsonb array parameter. */
export function anyOf(column: PgColumn, values: readonly string[]): SQL {
  return sql`${column} = ANY(ARRAY(SELECT jsonb_array_elements_text(${jsonParam(values)})))`;
}

/**
 * A Postgres error's SQLSTATE, from postgres.js or PGlite (both expose `code`), looking through
 * drizzle's DrizzleQueryError, which wraps the driver's error as its `cause`.
 */
export function sqlState(error: unknown): string | undefined {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    if ('code' in current && typeof current.code === 'string') return current.code;
    current = 'cause' in current ? current.cause : undefined;
  }
  return undefined;
}

/**
 * Startup parameters for every postgres.js connection to a memoflow schema: the schema first on
 * `search_path` (quoted, so any name works), and ISO date output, which the timestamp parsing
 * relies on whatever the server's default DateStyle is.
 */
export function connectionParameters(schema: string): Record<string, string> {
  return { search_path: `"${schema.replaceAll('"', '""')}"`, DateStyle: 'ISO' };
}
