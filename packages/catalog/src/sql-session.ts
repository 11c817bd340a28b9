import { MemoflowError, isUnstorableText } from '@memoflow/engine';
import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn, PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { PGlite } from '@electric-sql/pglite';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import type { Sql, TransactionSql } from 'postgres';
import { copyIn } from './copy-in.js';

/** Any drizzle Postgres database: the adapters share one implementation over the query builder. */
export type AnyPgDatabase = PgDatabase<PgQueryResultHKT, Record<string, unknown>>;

/**
 * What the shared adapters need from a back end: the query builder, and raw statements (drizzle's
 * `sql` template) returning plain rows. Raw rows are the driver's: json arrives parsed, and
 * timestamps arrive as text (drizzle turns the drivers' date parsing off), so raw statements
 * return no timestamps and the builder reads them instead.
 */
export interface SqlSession {
  readonly db: AnyPgDatabase;
  rows<T extends Record<string, unknown>>(query: SQL): Promise<T[]>;
  /**
   * LISTEN on `channel`: `onPayload` gets every NOTIFY's payload until the returned function is
   * called. postgres.js holds one extra connection for all of a client's channels (and LISTENs
   * again after it reconnects); PGlite delivers in process. Absent: the back end cannot listen.
   */
  readonly listen?: (channel: string, onPayload: (payload: string) => void) => Promise<() => Promise<void>>;
  /** Runs `work` in one transaction, on a session bound to it: all its statements commit together or not at all. */
  transaction<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  /**
   * `COPY table (columns) FROM STDIN` of `chunks`, each a run of rows in COPY's text format
   * (`copyField` encodes a field): parsed by Postgres at about twice the speed of a json
   * parameter, without the rows' column names. postgres.js only; absent on PGlite, which has no
   * COPY FROM STDIN, and outside a transaction (`copyIn` needs one). A chunk that throws (an
   * unstorable value, say) aborts the COPY, and so the transaction.
   */
  readonly copyIn?: (table: string, columns: readonly string[], chunks: Iterable<string>) => Promise<void>;
  /** Whether this back end's transactions have `copyIn`. */
  readonly copies?: boolean;
}

/** A drizzle database as `drizzle({ client })` returns it: with the driver's client, which is what can LISTEN. */
type WithClient<D, C> = D & { $client?: C };

/**
 * @param copyClient for a transaction's session, the postgres.js TransactionSql its statements run
 *   on (drizzle keeps it as `session.client`; if a drizzle release moves it, the session simply
 *   has no COPY, and a test says so). Only a transaction's session can COPY (see `copyIn`).
 */
export function postgresJsSession(db: WithClient<PostgresJsDatabase, Sql>, copyClient?: TransactionSql): SqlSession {
  const client = db.$client;
  return {
    db: db,
    // postgres.js returns the rows themselves (an array).
    rows: async <T extends Record<string, unknown>>(query: SQL) => [...(await db.execute(query))] as unknown as T[],
    transaction: (work) => db.transaction((tx) => work(postgresJsSession(tx as unknown as PostgresJsDatabase, transactionClient(tx)))),
    copies: true,
    ...(copyClient === undefined ? {} : { copyIn: (table: string, columns: readonly string[], chunks: Iterable<string>) => copyIn(copyClient, table, columns, chunks) }),
    ...(client === undefined
      ? {}
      : {
          listen: async (channel: string, onPayload: (payload: string) => void) => {
            const request = await client.listen(channel, onPayload);
            return () => request.unlisten();
          },
        }),
  };
}

/**
 * The TransactionSql a drizzle postgres.js transaction runs on, if it is where drizzle 0.45 keeps
 * it: a client with `savepoint`, which only a transaction's has (a pool's client there would COPY
 * outside the create's transaction).
 */
function transactionClient(tx: unknown): TransactionSql | undefined {
  const client = (tx as { session?: { client?: unknown } }).session?.client;
  const has = (method: string) => typeof (client as { [method: string]: unknown } | undefined)?.[method] === 'function';
  return typeof client === 'function' && has('unsafe') && has('savepoint') ? (client as TransactionSql) : undefined;
}

export function pgliteSession(db: WithClient<PgliteDatabase, PGlite>): SqlSession {
  const client = db.$client;
  return {
    db: db,
    // PGlite returns a result object with `rows`.
    rows: async <T extends Record<string, unknown>>(query: SQL) => (await db.execute(query)).rows as T[],
    transaction: (work) => db.transaction((tx) => work(pgliteSession(tx as unknown as PgliteDatabase))),
    ...(client === undefined
      ? {}
      : {
          listen: async (channel: string, onPayload: (payload: string) => void) => {
            const unlisten = await client.listen(channel, onPayload);
            return () => unlisten();
          },
        }),
  };
}

/**
 * One `json` parameter, however large the batch (Postgres allows at most 65,535 parameters).
 * Always `json`, never `jsonb`: a jsonb value has already lost its object key order, so one jsonb
 * step anywhere between the parameter and the column would reorder what the caller wrote.
 */
export function jsonParam(value: unknown): SQL {
  return sql`${storableJson(value)}::json`;
}

/** As `jsonParam`, but JS null becomes SQL NULL (for the nullable columns), not a JSON null. */
export function nullableJsonParam(value: unknown): SQL {
  return value === null || value === undefined ? sql`NULL::json` : jsonParam(value);
}

/**
 * JSON.stringify, refusing strings (values or keys) that hold U+0000 or a lone surrogate. The
 * `json` type would store them, but they are not text (no `->>`, no jsonb, no UTF-8), so the
 * catalog keeps the contract it has always had, shared with the in-memory fakes: such a value
 * fails its whole statement, before anything is sent.
 *
 * Cheap on the common path: one plain JSON.stringify, then one scan of its text. JSON.stringify
 * writes U+0000 as the escape `\u0000` and a lone surrogate as `\udXXX` (paired surrogates stay
 * raw characters), so a clean text proves the value clean. A hit may be a false alarm (a string
 * holding a backslash followed by `u0000`, say), so only then the precise walk decides.
 */
export function storableJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text !== undefined && MAYBE_UNSTORABLE.test(text)) checkStorable(value);
  return text;
}

/** The escapes JSON.stringify emits for U+0000 and for lone surrogates (it writes hex in lower case). */
const MAYBE_UNSTORABLE = /\\u(?:0000|d[89a-f])/;

/** The precise rule, on every key and string of the value as JSON.stringify sees it. */
function checkStorable(value: unknown): void {
  JSON.stringify(value, (key: string, item: unknown) => {
    if (isUnstorableText(key) || (typeof item === 'string' && isUnstorableText(item))) {
      throw new MemoflowError('CATALOG_ERROR', 'value not storable: a string holds U+0000 or a lone surrogate');
    }
    return item;
  });
}

/** A timestamp column as epoch ms (float8: exact for ms timestamps), for raw statements, whose rows bring timestamps as text. */
export const epochMs = (column: SQL | PgColumn): SQL => sql`(extract(epoch FROM ${column}) * 1000)::float8`;

/** `column = ANY(keys)` with the keys passed as one json array parameter. */
export function anyOf(column: PgColumn, values: readonly string[]): SQL {
  return sql`${column} = ANY(ARRAY(SELECT json_array_elements_text(${jsonParam(values)})))`;
}

/**
 * The database's own message for a failed statement, looking through drizzle's DrizzleQueryError
 * (whose message is the whole statement and its parameters: for a put, every value in the batch).
 */
export function databaseMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    if (current instanceof Error && !current.message.startsWith('Failed query:')) {
      message = current.message;
      break;
    }
    current = 'cause' in current ? current.cause : undefined;
  }
  return message.length > 500 ? `${message.slice(0, 500)}...` : message;
}

/**
 * Startup parameters for every postgres.js connection to a memoflow schema: the schema first on
 * `search_path` (quoted, so any name works), and ISO date output, which the timestamp parsing
 * relies on whatever the server's default DateStyle is.
 */
export function connectionParameters(schema: string): Record<string, string> {
  return { search_path: `"${schema.replaceAll('"', '""')}"`, DateStyle: 'ISO' };
}

/**
 * The catalog or run store with driver errors made readable: drizzle's DrizzleQueryError message is
 * "Failed query: <the whole statement> params: <every parameter>" (94 KB of warnings in one CLI
 * run) and never says why. A rejection that is not already a MemoflowError becomes one CATALOG_ERROR
 * line: which operation failed and the deepest cause with its code (ECONNREFUSED,
 * CONNECTION_CLOSED, a SQLSTATE), truncated; retryable, since a driver error is usually the
 * connection's. The driver's error stays as `cause` (sqlState() still finds its SQLSTATE).
 */
export function withReadableErrors<T extends object>(target: T, what: string): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function' || property === 'constructor') return value;
      return (...args: unknown[]) => {
        // `this` is the target itself: its #private fields are not reachable through a proxy.
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(object, args);
        if (!(result instanceof Promise)) return result;
        return result.catch((error: unknown) => {
          throw readableDriverError(error, `${what}.${String(property)}`);
        });
      };
    },
  });
}

export function readableDriverError(error: unknown, operation: string): unknown {
  if (error instanceof MemoflowError) return error;
  return new MemoflowError('CATALOG_ERROR', `${operation} failed: ${describeDriverError(error)}`, { retryable: true, cause: error });
}

/** One line: the deepest cause's message with its code, no SQL, no parameters, at most 300 characters. */
export function describeDriverError(error: unknown): string {
  try {
    const chain: unknown[] = [];
    for (let current = error; current !== undefined && current !== null && chain.length < 8 && !chain.includes(current); ) {
      chain.push(current);
      current = typeof current === 'object' ? (current as { cause?: unknown }).cause : undefined;
    }
    const code = chain.map((e) => (e as { code?: unknown }).code).find((c): c is string => typeof c === 'string' && c !== '');
    const messages = chain.map((e) => (e instanceof Error ? e.message : typeof e === 'string' ? e : '')).filter((m) => m !== '' && !/^Failed query:/i.test(m));
    let text = messages[messages.length - 1] ?? 'the database gave no reason';
    if (code !== undefined && !text.includes(code)) text = `${code}: ${text}`;
    text = text.replace(/\s*\n\s*/g, ' ').trim();
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  } catch {
    return 'an error that cannot be printed';
  }
}

/**
 * postgres.js sends a query of its own as the first on every new connection (the server's array
 * types) and drops that query's promise: a connection terminated right then becomes an unhandled
 * rejection that ends the process, and no caller can catch it (porsager/postgres#1192, #1205,
 * #1223). memoflow reads no array columns, so it never needs the types.
 */
export const NO_TYPE_FETCH = { fetch_types: false } as const;
