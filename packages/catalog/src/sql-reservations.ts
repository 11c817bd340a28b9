import type {
  CacheEntryKind,
  CacheReservations,
  Clock,
  ReleasedReservation,
  ReleaseSubscription,
  ReservationOutcome,
  ReservationRelease,
  ReservationRequest,
} from '@memoflow/engine';
import { sql, type SQL } from 'drizzle-orm';
import { cacheReservations } from './schema.js';
import { jsonParam, type SqlSession } from './sql-session.js';

/**
 * The NOTIFY channel releases are announced on. Channels are database-wide, so the payload names
 * the schema and a subscriber ignores other schemas' releases (each deployment and test has its own).
 */
export const RESERVATION_CHANNEL = 'memoflow_reservation_released';

interface ReservationRow extends Record<string, unknown> {
  key: string;
  kind: CacheEntryKind;
  owner: string;
  run_id: string;
  node_id: string;
  expires_at_ms: number;
}

/**
 * Reservations (engine ports/cache-reservations.ts) over drizzle's Postgres back ends, shared by the
 * Postgres and PGlite catalogs. Every method is one statement; batches travel as one json parameter.
 */
export class SqlReservations implements CacheReservations {
  constructor(
    private readonly session: SqlSession,
    /** Measures expiry; default: the database's clock, one clock for every controller. */
    private readonly clock: Clock | undefined,
  ) {}

  #now(): SQL {
    return this.clock === undefined ? sql`date_trunc('milliseconds', now())` : sql`${this.clock.now().toISOString()}::timestamptz`;
  }

  /*
   * acquireReservations:
   *   INSERT INTO cache_reservations SELECT <request>, now + ttl FROM json_array_elements($requests)
   *   ON CONFLICT (key, kind) DO UPDATE SET <every column> = CASE WHEN <expired or mine>
   *     THEN excluded.<column> ELSE cache_reservations.<column> END
   *   RETURNING key, kind, owner, run_id, node_id, expires_at
   * Inputs: requests (one json array parameter; a key + kind asked twice is sent once, the first
   * asker's). Result: the row each key has after the statement: acquired when its owner is the
   * asker's, else held by that owner. Side effects: each reservation is created, taken over
   * (expired), renewed (already the asker's), or rewritten unchanged (held: one row lock, so racing
   * askers queue on the row and exactly one acquires).
   */
  async acquireReservations(requests: readonly ReservationRequest[]): Promise<ReservationOutcome[]> {
    if (requests.length === 0) return [];
    const unique = new Map<string, ReservationRequest>();
    for (const request of requests) {
      const id = identity(request.kind, request.key);
      if (!unique.has(id)) unique.set(id, request);
    }
    const documents = [...unique.values()].map((r) => ({ key: r.key, kind: r.kind, owner: r.owner, runId: r.runId, nodeId: r.nodeId, ttlMs: Math.max(0, Math.round(r.ttlMs)) }));
    const now = this.#now();
    const free = sql`(${cacheReservations}.expires_at <= ${now} OR ${cacheReservations}.owner = excluded.owner)`;
    const keep = (column: string) => sql`${sql.raw(column)} = CASE WHEN ${free} THEN excluded.${sql.raw(column)} ELSE ${cacheReservations}.${sql.raw(column)} END`;
    const rows = await this.session.rows<ReservationRow>(sql`
      INSERT INTO ${cacheReservations} (key, kind, owner, run_id, node_id, expires_at)
      SELECT e->>'key', e->>'kind', e->>'owner', e->>'runId', e->>'nodeId',
             ${now} + (e->>'ttlMs')::int * interval '1 millisecond'
      FROM json_array_elements(${jsonParam(documents)}) AS e
      ON CONFLICT (key, kind) DO UPDATE SET ${keep('owner')}, ${keep('run_id')}, ${keep('node_id')}, ${keep('expires_at')}
      RETURNING key, kind, owner, run_id, node_id, (extract(epoch FROM expires_at) * 1000)::float8 AS expires_at_ms`);
    const byId = new Map(rows.map((row) => [identity(row.kind, row.key), row]));
    return requests.map((request): ReservationOutcome => {
      const row = byId.get(identity(request.kind, request.key));
      const base = { key: request.key, kind: request.kind, owner: request.owner };
      if (row === undefined) throw new Error(`reservation of ${request.kind} ${request.key} came back without a row`);
      const expiresAt = new Date(Number(row.expires_at_ms));
      if (row.owner === request.owner) return { ...base, outcome: 'acquired', expiresAt };
      return { ...base, outcome: 'held', holder: { owner: row.owner, runId: row.run_id, nodeId: row.node_id, expiresAt } };
    });
  }

  /*
   * extendReservations: UPDATE cache_reservations SET expires_at = now + ttl
   *                     WHERE owner = ANY($owners) RETURNING owner
   * Inputs: owners (one json array parameter) and the ttl. Result: the owners whose reservations
   * were extended. Side effects: those reservations' expiry (reads them by cache_reservations_owner_idx).
   */
  async extendReservations(owners: readonly string[], ttlMs: number): Promise<string[]> {
    if (owners.length === 0) return [];
    const rows = await this.session.rows<{ owner: string }>(sql`
      UPDATE ${cacheReservations} SET expires_at = ${this.#now()} + ${Math.max(0, Math.round(ttlMs))}::int * interval '1 millisecond'
      WHERE owner = ANY(ARRAY(SELECT json_array_elements_text(${jsonParam(owners)})))
      RETURNING owner`);
    return [...new Set(rows.map((row) => row.owner))];
  }

  /*
   * releaseReservations:
   *   WITH freed AS (DELETE FROM cache_reservations r USING json_array_elements($releases) e
   *                  WHERE r.key = e->>'key' AND r.kind = e->>'kind' AND r.owner = e->>'owner'
   *                  RETURNING r.key, r.kind)
   *   SELECT pg_notify($channel, json_build_object('schema', current_schema(), 'key', key, 'kind', kind)::text) FROM freed
   * Inputs: releases (one json array parameter). Result: none. Side effects: each reservation its
   * owner still holds is deleted, and one NOTIFY per freed key is sent (delivered when it commits).
   */
  async releaseReservations(releases: readonly ReservationRelease[]): Promise<void> {
    if (releases.length === 0) return;
    const documents = releases.map((r) => ({ key: r.key, kind: r.kind, owner: r.owner }));
    await this.session.rows(sql`
      WITH freed AS (
        DELETE FROM ${cacheReservations} AS r USING json_array_elements(${jsonParam(documents)}) AS e
        WHERE r.key = e->>'key' AND r.kind = e->>'kind' AND r.owner = e->>'owner'
        RETURNING r.key, r.kind
      )
      SELECT pg_notify(${RESERVATION_CHANNEL}, json_build_object('schema', current_schema(), 'key', key, 'kind', kind)::text) FROM freed`);
  }

  /**
   * LISTEN for releases in this catalog's schema. A back end that cannot listen gets a subscription
   * that never calls: waiters then learn by polling alone (the shell's backstop).
   */
  async watchReleases(listener: (released: ReleasedReservation) => void): Promise<ReleaseSubscription> {
    const listen = this.session.listen;
    if (listen === undefined) return { close: async () => undefined };
    const [row] = await this.session.rows<{ schema: string }>(sql`SELECT current_schema() AS schema`);
    const schema = row?.schema;
    const unlisten = await listen(RESERVATION_CHANNEL, (payload) => {
      const released = parseRelease(payload, schema);
      if (released !== undefined) listener(released);
    });
    let closed: Promise<void> | undefined;
    return { close: () => (closed ??= unlisten()) };
  }
}

/** A notification's release, if it is one of this schema's; anything else (another schema, a stray NOTIFY) is ignored. */
function parseRelease(payload: string, schema: string | undefined): ReleasedReservation | undefined {
  try {
    const parsed = JSON.parse(payload) as { schema?: unknown; key?: unknown; kind?: unknown };
    if (parsed.schema !== schema || typeof parsed.key !== 'string' || (parsed.kind !== 'output' && parsed.kind !== 'future')) return undefined;
    return { key: parsed.key, kind: parsed.kind };
  } catch {
    return undefined;
  }
}

function identity(kind: CacheEntryKind, key: string): string {
  return `${kind}\u0000${key}`;
}
