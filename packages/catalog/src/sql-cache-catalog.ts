import { and, asc, desc, eq, sql, type SQL } from 'drizzle-orm';
import type {
  CacheCatalog,
  CacheEntry,
  CacheEntryFilter,
  CacheEntryKind,
  CacheEntrySummary,
  CacheEvictFilter,
  CacheListFilter,
  CacheLookupResult,
  Clock,
  NewCacheEntry,
  ReleasedReservation,
  ReleaseSubscription,
  ReservationOutcome,
  ReservationRelease,
  ReservationRequest,
} from '@memoflow/engine';
import { checkEntryDurations, checksumProblem, entryChecksum, MemoflowError } from '@memoflow/engine';
import { cacheEntries } from './schema.js';
import { SqlReservations } from './sql-reservations.js';
import { anyOf, databaseMessage, epochMs, jsonParam, type SqlSession } from './sql-session.js';

export interface SqlCacheCatalogOptions {
  /**
   * Sets `createdAt` on put and measures reservations' expiry. Default: the database's clock
   * (`now()`), one clock for every controller of a distributed deployment.
   */
  clock?: Clock;
}

const summaryColumns = {
  key: cacheEntries.key,
  kind: cacheEntries.kind,
  project: cacheEntries.project,
  domain: cacheEntries.domain,
  task: cacheEntries.task,
  parts: cacheEntries.parts,
  valueHash: cacheEntries.valueHash,
  runId: cacheEntries.runId,
  nodeId: cacheEntries.nodeId,
  durationMs: cacheEntries.durationMs,
  createdAt: cacheEntries.createdAt,
};

/**
 * The CacheCatalog over drizzle's Postgres query builder, shared by PostgresCacheCatalog and
 * PgliteCacheCatalog. Every method is one statement whatever the batch size; batches travel as
 * one json parameter (json, not jsonb, so values keep their object key order; schema.ts).
 */
export class SqlCacheCatalog implements CacheCatalog {
  readonly #session: SqlSession;
  readonly #clock: Clock | undefined;
  readonly #reservations: SqlReservations;

  constructor(session: SqlSession, options: SqlCacheCatalogOptions = {}) {
    this.#session = session;
    this.#clock = options.clock;
    this.#reservations = new SqlReservations(session, options.clock);
  }

  // Reservations (cache: { serialize: true }): sql-reservations.ts.
  acquireReservations(requests: readonly ReservationRequest[]): Promise<ReservationOutcome[]> {
    return this.#reservations.acquireReservations(requests);
  }

  extendReservations(owners: readonly string[], ttlMs: number): Promise<string[]> {
    return this.#reservations.extendReservations(owners, ttlMs);
  }

  releaseReservations(releases: readonly ReservationRelease[]): Promise<void> {
    return this.#reservations.releaseReservations(releases);
  }

  watchReleases(listener: (released: ReleasedReservation) => void): Promise<ReleaseSubscription> {
    return this.#reservations.watchReleases(listener);
  }

  /*
   * lookup: SELECT * FROM cache_entries WHERE kind = $kind AND key = ANY($keys)
   * Inputs: a kind and any number of keys (one json array parameter). Result: decoded entries in
   * `hits`; entries that fail their checksum (bound to key, kind, value and valueHash; an entry
   * of the previous release has a value-only checksum and fails too) or are otherwise unusable in
   * `corrupt` with the reason. Side effects: none.
   */
  async lookup(kind: CacheEntryKind, keys: readonly string[]): Promise<CacheLookupResult> {
    const result: CacheLookupResult = { hits: new Map(), corrupt: new Map() };
    if (keys.length === 0) return result;
    // A raw statement, not the query builder: its row mapping cost as much as the rest of the
    // client's work for a 100,000-key lookup. So the timestamp comes as epoch ms (raw rows bring
    // timestamps as text), and the bigint as float8 (exact: durations are below 2^53 ms).
    const rows = await this.#session.rows<LookupRow>(sql`
      SELECT key, kind, project, domain, task, parts, value, value_hash, checksum, run_id, node_id,
             duration_ms::float8 AS duration_ms, ${epochMs(cacheEntries.createdAt)} AS created_ms
      FROM ${cacheEntries}
      WHERE ${cacheEntries.kind} = ${kind} AND ${anyOf(cacheEntries.key, keys)}`);
    for (const row of rows) {
      const entry: CacheEntry = {
        key: row.key,
        kind: row.kind,
        project: row.project,
        domain: row.domain,
        task: row.task,
        parts: row.parts,
        value: row.value,
        valueHash: row.value_hash,
        runId: row.run_id,
        nodeId: row.node_id,
        durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
        createdAt: new Date(Math.round(Number(row.created_ms))),
      };
      const problem = verify(entry, row.checksum);
      if (problem !== undefined) {
        result.corrupt.set(row.key, problem);
        continue;
      }
      result.hits.set(row.key, entry);
    }
    return result;
  }

  /*
   * put: INSERT INTO cache_entries SELECT ... FROM json_array_elements($entries)
   *      ON CONFLICT (key, kind) DO UPDATE SET <every column> = excluded.<column>
   * Inputs: entries (one json array parameter; a key + kind given twice keeps the last; a string
   * holding U+0000 or a lone surrogate rejects the whole batch before it is sent). Result:
   * none (a durationMs that is not a whole number of ms from 0 to 2^53 - 1 rejects the batch
   * too). Side effects: each entry is inserted or replaces the stored one, with a fresh checksum
   * and created_at (the clock's time, else the database's now()).
   */
  async put(entries: readonly NewCacheEntry[]): Promise<void> {
    if (entries.length === 0) return;
    checkEntryDurations(entries);
    // ON CONFLICT cannot touch one row twice in a statement: the last entry per key + kind wins.
    const unique = new Map<string, NewCacheEntry>();
    for (const entry of entries) unique.set(`${entry.kind}\u0000${entry.key}`, entry);
    const documents = [...unique.values()].map((entry) => ({
      key: entry.key,
      kind: entry.kind,
      project: entry.project,
      domain: entry.domain,
      task: entry.task,
      parts: entry.parts,
      value: entry.value,
      valueHash: entry.valueHash,
      checksum: entryChecksum(entry),
      runId: entry.runId,
      nodeId: entry.nodeId,
      durationMs: entry.durationMs ?? null,
    }));
    const createdAt = this.#clock === undefined ? sql`date_trunc('milliseconds', now())` : sql`${this.#clock.now().toISOString()}::timestamptz`;
    try {
      await this.#write(documents, createdAt);
    } catch (error) {
      // The engine keeps the reason with each node and logs it: the database's message, not
      // drizzle's, which repeats the statement with every value of the batch.
      throw new MemoflowError('CATALOG_ERROR', `writing ${documents.length} cache entr${documents.length === 1 ? 'y' : 'ies'} failed: ${databaseMessage(error)}`, { cause: error });
    }
  }

  async #write(documents: { [column: string]: unknown }[], createdAt: SQL): Promise<void> {
    // json_array_elements and `->` return the json text as written: `parts` and `value` keep their
    // key order. (`->` rather than json_to_recordset: a value that is JSON null must stay JSON
    // null, where a recordset column would turn it into SQL NULL.)
    await this.#session.rows(sql`
      INSERT INTO ${cacheEntries} (key, kind, project, domain, task, parts, value, value_hash, checksum, run_id, node_id, duration_ms, created_at)
      SELECT e->>'key', e->>'kind', e->>'project', e->>'domain', e->>'task', e->'parts', e->'value',
             e->>'valueHash', e->>'checksum', e->>'runId', e->>'nodeId', (e->>'durationMs')::bigint, ${createdAt}
      FROM json_array_elements(${jsonParam(documents)}) AS e
      ON CONFLICT (key, kind) DO UPDATE SET
        project = excluded.project, domain = excluded.domain, task = excluded.task,
        parts = excluded.parts, value = excluded.value, value_hash = excluded.value_hash,
        checksum = excluded.checksum, run_id = excluded.run_id, node_id = excluded.node_id,
        duration_ms = excluded.duration_ms, created_at = excluded.created_at`);
  }

  /*
   * list: SELECT <all but value> FROM cache_entries WHERE <filter>
   *       ORDER BY created_at DESC, key, kind LIMIT $limit
   * Side effects: none.
   */
  async list(filter: CacheListFilter = {}): Promise<CacheEntrySummary[]> {
    const query = this.#session.db
      .select(summaryColumns)
      .from(cacheEntries)
      .where(entryCondition(filter))
      .orderBy(desc(cacheEntries.createdAt), asc(collateC(cacheEntries.key)), asc(collateC(cacheEntries.kind)));
    return filter.limit === undefined ? await query : await query.limit(Math.max(0, filter.limit));
  }

  /*
   * evict: WITH d AS (DELETE FROM cache_entries WHERE <filter> RETURNING 1) SELECT count(*) FROM d
   * Inputs: a filter (all given fields must match; an empty filter matches every entry; `keys`
   * travels as one json parameter). Result: how many entries were removed. Side effects: deletes.
   */
  async evict(filter: CacheEvictFilter): Promise<number> {
    const where = entryCondition(filter) ?? sql`true`;
    const [row] = await this.#session.rows<{ removed: number }>(sql`
      WITH d AS (DELETE FROM ${cacheEntries} WHERE ${where} RETURNING 1)
      SELECT count(*)::int AS removed FROM d`);
    return row?.removed ?? 0;
  }
}

function collateC(column: SQL | typeof cacheEntries.key | typeof cacheEntries.kind): SQL {
  return sql`${column} COLLATE "C"`;
}

/** A cache_entries row as `lookup` selects it: the entry's own fields as columns, the numbers as the driver brings them. */
type LookupRow = Pick<CacheEntry, 'key' | 'kind' | 'project' | 'domain' | 'task' | 'parts' | 'value'> & {
  value_hash: CacheEntry['valueHash'];
  checksum: string;
  run_id: CacheEntry['runId'];
  node_id: CacheEntry['nodeId'];
  duration_ms: number | string | null;
  created_ms: number | string;
};

/** Why a stored entry cannot be served, or undefined if it can. Never throws. */
function verify(entry: CacheEntry, checksum: string): string | undefined {
  const parts: unknown = entry.parts;
  if (typeof parts !== 'object' || parts === null || Array.isArray(parts)) return 'undecodable key parts';
  return checksumProblem(entry, checksum);
}

/** The WHERE condition of a filter, shared by list and evict; undefined when it matches everything. */
function entryCondition(filter: CacheEntryFilter): SQL | undefined {
  return and(
    filter.project === undefined ? undefined : eq(cacheEntries.project, filter.project),
    filter.domain === undefined ? undefined : eq(cacheEntries.domain, filter.domain),
    filter.task === undefined ? undefined : eq(cacheEntries.task, filter.task),
    filter.runId === undefined ? undefined : eq(cacheEntries.runId, filter.runId),
    filter.kind === undefined ? undefined : eq(cacheEntries.kind, filter.kind),
    filter.keys === undefined ? undefined : anyOf(cacheEntries.key, filter.keys),
  );
}
