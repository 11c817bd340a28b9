import { and, asc, desc, eq, getTableColumns, sql, type SQL } from 'drizzle-orm';
import type { Clock, LeaseOutcome, LeaseRequest, RunListFilter, RunSaveRequest, RunState, RunStatus, RunStore, RunSummary } from '@memoflow/engine';
import { MemoflowError, decodeStoredInputs, fencedSaveError, sqlState, type CancelRequestOutcome, type ErrorInfo } from '@memoflow/engine';
import { COPY_CREATE_NODES, CREATE_SLICE_NODES, createRunOnce, type RunCreation } from './run-create.js';
import { fromStoredNode, nodeColumns, nodeDocument, nodeRows, nodeValues, overwriteAll, overwriteChanged, type StoredNode } from './node-rows.js';
import { nodeExecutions, runs } from './schema.js';
import { anyOf, epochMs, jsonParam, nullableJsonParam, type SqlSession } from './sql-session.js';
import { loadedSpec, StoredSpecs } from './stored-specs.js';

/** Every runs column but the spec, which `load` reads once, through `loadedSpec` (the row's own or the digest's). */
const { spec: _spec, ...fixedRunColumns } = getTableColumns(runs);

const summaryColumns = {
  id: runs.id,
  workflow: runs.workflow,
  project: runs.project,
  domain: runs.domain,
  options: runs.options,
  status: runs.status,
  error: runs.error,
  version: runs.version,
  createdAt: runs.createdAt,
  updatedAt: runs.updatedAt,
  finishedAt: runs.finishedAt,
};

export interface SqlRunStoreOptions {
  /**
   * The clock leases are measured by. Default: the database's clock (`now()`), one clock for every
   * controller of a distributed deployment, whatever their machines' clocks say.
   */
  clock?: Clock;
  /** See CREATE_SLICE_NODES. */
  createSliceNodes?: number;
  /** See COPY_CREATE_NODES. */
  copyCreateNodes?: number;
}

/**
 * The RunStore over drizzle's Postgres query builder, shared by PostgresRunStore and
 * PgliteRunStore. Each write is one statement (a create of more than CREATE_SLICE_NODES nodes,
 * or by COPY, one transaction): a run and its node executions change together or not at all, and `save` is a
 * compare-and-set on `version`.
 */
export class SqlRunStore implements RunStore {
  readonly #session: SqlSession;
  readonly #clock: Clock | undefined;
  readonly #createSlice: number;
  readonly #copyFrom: number;
  readonly #specs = new StoredSpecs();

  constructor(session: SqlSession, options: SqlRunStoreOptions = {}) {
    this.#session = session;
    this.#clock = options.clock;
    this.#createSlice = Math.max(1, options.createSliceNodes ?? CREATE_SLICE_NODES);
    this.#copyFrom = Math.max(1, options.copyCreateNodes ?? COPY_CREATE_NODES);
  }

  /** The store's now, as SQL: the clock's time, else the database's. */
  #now(): SQL {
    return this.#clock === undefined ? sql`date_trunc('milliseconds', now())` : sql`${this.#clock.now().toISOString()}::timestamptz`;
  }

  /** now in ms since the epoch, as this store's clock tells it (the database's when it has none: close enough for a retry hint). */
  #clockMs(): number {
    return (this.#clock?.now() ?? new Date()).getTime();
  }

  /** now + ttl, as SQL. */
  #expiry(ttlMs: number): SQL {
    return sql`(${this.#now()} + ${Math.max(0, Math.round(ttlMs))}::int * interval '1 millisecond')`;
  }

  #creating(): RunCreation {
    return { session: this.#session, createSlice: this.#createSlice, copyFrom: this.#copyFrom, now: this.#now(), expiry: (ttlMs) => this.#expiry(ttlMs) };
  }

  /*
   * create: WITH s AS (INSERT INTO workflow_specs ($digest, $spec) ON CONFLICT DO NOTHING),
   *              r AS (INSERT INTO runs ... spec_digest $digest, version 0 RETURNING id),
   *              n AS (INSERT INTO node_executions SELECT ... FROM r CROSS JOIN json_to_recordset($nodes))
   *         SELECT count(*) FROM r
   *   or, when this store knows the spec row exists, without `s` and with
   *              r AS (INSERT INTO runs SELECT ... WHERE EXISTS (the spec row) RETURNING id)
   *   (no row: the store forgets the digest and creates again, with `s`).
   *   More than CREATE_SLICE_NODES nodes: in one transaction, the rest in slices of that many;
   *   COPY_CREATE_NODES or more on postgres.js: in one transaction, the statement without `n`,
   *   then every node row by COPY (node-copy.ts).
   * Inputs: the run and its node executions (one json parameter), optionally a lease. Result: none;
   * throws CATALOG_ERROR if the id exists. Side effects: inserts the spec (unless stored), the run
   * (leased to the creator, or free) and its nodes, or nothing.
   */
  async create(state: RunState, lease?: LeaseRequest): Promise<void> {
    const { run } = state;
    const nodes = Object.values(state.nodes);
    const spec = this.#specs.toWrite(run.spec);
    try {
      if (!(await createRunOnce(this.#creating(), state, lease, nodes, spec))) {
        // The spec row this store remembered is not there: create again, with the text.
        this.#specs.forget(spec.digest);
        if (!(await createRunOnce(this.#creating(), state, lease, nodes, { ...spec, sendText: true }))) {
          throw new MemoflowError('CATALOG_ERROR', `run '${run.id}' was not created: its spec could not be stored`);
        }
      }
    } catch (error) {
      if (sqlState(error) === '23505') {
        throw new MemoflowError('CATALOG_ERROR', `run '${run.id}' already exists`, { cause: error });
      }
      throw error;
    }
    this.#specs.remember(spec.digest);
  }

  /*
   * load: SELECT runs.*, (SELECT json_agg(node_executions row) WHERE run_id = $id) FROM runs
   *       WHERE id = $id
   * Inputs: a run id. Result: the run with its node executions, read from one snapshot (one
   * statement), or undefined. json_agg embeds the json columns' text as stored (to_jsonb would
   * reorder their keys). Side effects: none.
   */
  /** status: SELECT status FROM runs WHERE id = $1 — one indexed read, no node rows. */
  async status(runId: string): Promise<RunStatus | undefined> {
    const [row] = await this.#session.db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId));
    return row?.status;
  }

  async load(runId: string): Promise<RunState | undefined> {
    const [row] = await this.#session.db
      .select({
        run: fixedRunColumns,
        spec: loadedSpec,
        nodes: sql<StoredNode[]>`(
          SELECT coalesce(json_agg(ne), '[]'::json) FROM ${nodeExecutions} AS ne WHERE ne.run_id = ${runs.id}
        )`,
      })
      .from(runs)
      .where(eq(runs.id, runId));
    if (row === undefined) return undefined;
    // The lease is the store's business (acquireLease), not part of the run's decided state; the
    // spec is the row's own or the one its digest names (`loadedSpec`).
    const { owner: _owner, leaseExpiresAt: _expiry, specDigest, id, workflow, project, domain, ...rest } = row.run;
    if (row.spec === null) {
      throw new MemoflowError('RUN_STORE_CORRUPT', `run '${runId}' names spec ${String(specDigest)}, which the run store does not hold`, { workflow });
    }
    // The run's fields in their columns' order, the spec where its column is.
    const run = { id, workflow, project, domain, spec: row.spec, ...rest };
    const nodes: RunState['nodes'] = {};
    for (const stored of row.nodes) nodes[stored.node_id] = fromStoredNode(stored);
    decodeStoredInputs(run, nodes);
    return { run, nodes };
  }

  /*
   * save: WITH bumped AS (UPDATE runs SET status, outputs, error, updated_at, finished_at,
   *                       version = version + 1
   *                       WHERE id = $id AND version = $expected
   *                         AND (no $owner OR the lease is free, expired or $owner's) RETURNING id),
   *       n AS (SELECT * FROM json_to_recordset($nodes)),
   *       whole AS (INSERT INTO node_executions SELECT ... FROM bumped CROSS JOIN n
   *                 WHERE n.changed IS NULL ON CONFLICT (run_id, node_id) DO UPDATE ...),
   *       partial AS (UPDATE node_executions ne SET <col> = CASE WHEN (n.changed & <bit>) <> 0
   *                   THEN n.<col> ELSE ne.<col> END, ... FROM bumped, n
   *                   WHERE n.changed IS NOT NULL AND ne = (bumped.id, n.node_id))
   *       SELECT count(*) FROM bumped, and the run's live lease holder if it is not $owner
   * Inputs: the run's changing fields, the node writes (one json parameter, possibly empty: whole
   * records, and partial ones holding only their changed columns) and the version the caller
   * loaded. The run's fixed fields (workflow, project, domain, spec, inputs, options, created_at)
   * are written by `create` only: a save neither sends nor rewrites them (the spec of a 1,000-node
   * workflow is large), and ignores them in `run`. Likewise a node's unchanged columns (its inputs,
   * key and key parts once it started) are neither sent nor rewritten.
   * Result: true if the stored version matched; RUN_LEASED (thrown) if it matched but another
   * controller holds a live lease (RunSaveRequest.owner: a fenced save). Side effects: on a match, the run's status,
   * outputs, error, updated_at, finished_at, version + 1, the upserts of whole records and the
   * updates of partial ones (a partial write of a row that does not exist updates nothing);
   * otherwise nothing (the node writes read from `bumped`, which is then empty). Two racing saves:
   * the second UPDATE waits for the first's row lock, re-checks `version` and matches no row.
   */
  async save(request: RunSaveRequest): Promise<boolean> {
    const { run } = request;
    const owner = request.owner ?? null;
    const now = this.#now();
    const [row] = await this.#session.rows<{ saved: number; fenced_by: string | null; fenced_until: number | null }>(sql`
      WITH bumped AS (
        UPDATE ${runs} SET
          status = ${run.status}, outputs = ${nullableJsonParam(run.outputs)}, error = ${nullableJsonParam(run.error)},
          version = version + 1, updated_at = ${run.updatedAt.toISOString()}::timestamptz,
          finished_at = ${run.finishedAt?.toISOString() ?? null}::timestamptz
        WHERE id = ${run.id} AND version = ${request.expectedVersion}::int
          AND (${owner}::text IS NULL OR owner IS NULL OR owner = ${owner} OR lease_expires_at IS NULL OR lease_expires_at <= ${now})
        RETURNING id
      ),
      n AS MATERIALIZED (SELECT * FROM ${nodeRows(request.nodes.map(nodeDocument))}),
      whole AS (
        INSERT INTO ${nodeExecutions} (${nodeColumns})
        SELECT ${nodeValues(sql`bumped.id`)}
        FROM bumped CROSS JOIN n
        WHERE n.changed IS NULL
        ON CONFLICT (run_id, node_id) DO UPDATE SET ${overwriteAll}
        RETURNING 1
      ),
      partial AS (
        UPDATE ${nodeExecutions} AS ne SET ${overwriteChanged}
        FROM bumped, n
        WHERE n.changed IS NOT NULL AND ne.run_id = bumped.id AND ne.node_id = n.node_id
        RETURNING 1
      )
      SELECT (SELECT count(*)::int FROM bumped) AS saved, fence.owner AS fenced_by, ${epochMs(sql`fence.lease_expires_at`)} AS fenced_until
      FROM (SELECT 1) AS one LEFT JOIN ${runs} AS fence
        ON fence.id = ${run.id} AND fence.version = ${request.expectedVersion}::int AND ${owner}::text IS NOT NULL
          AND fence.owner <> ${owner} AND fence.lease_expires_at > ${now}`);
    if (row?.saved === 1) return true;
    // The version matched, but the run is another controller's (read from the statement's snapshot, before any write).
    if (row?.fenced_by != null) throw fencedSaveError(run.id, row.fenced_by, (row.fenced_until ?? 0) - this.#clockMs());
    return false;
  }

  /*
   * list: SELECT <all but spec, inputs, outputs> FROM runs WHERE <filter>
   *       ORDER BY created_at DESC, id DESC LIMIT $limit
   * Side effects: none.
   */
  async list(filter: RunListFilter = {}): Promise<RunSummary[]> {
    const query = this.#session.db
      .select(summaryColumns)
      .from(runs)
      .where(
        and(
          filter.workflow === undefined ? undefined : eq(runs.workflow, filter.workflow),
          filter.status === undefined ? undefined : eq(runs.status, filter.status),
        ),
      )
      .orderBy(desc(runs.createdAt), desc(sql`${runs.id} COLLATE "C"`));
    return filter.limit === undefined ? await query : await query.limit(Math.max(0, filter.limit));
  }

  /*
   * acquireLease: WITH prior AS (SELECT status, owner, lease_expires_at FROM runs WHERE id = $id),
   *   taken AS (UPDATE runs SET owner = $owner, lease_expires_at = now + ttl
   *             WHERE id = $id AND status = 'running' AND (owner IS NULL OR lease_expires_at IS NULL
   *               OR lease_expires_at <= now OR owner = $owner OR owner = $replacing)
   *             RETURNING lease_expires_at)
   *   SELECT taken's expiry, prior.* FROM prior
   * Inputs: a run id, the owner, the ttl, optionally a holder known to be gone. Result: acquired
   * (with the new expiry and the holder replaced), held (the holder and expiry `prior` saw),
   * finished, or missing.
   * Side effects: on acquiring, the run's owner and lease_expires_at (nothing else: not the version).
   * Two racing acquirers: the second UPDATE waits for the first's row lock, re-checks its WHERE on
   * the new row (owned, not expired) and matches nothing; it reports `prior`, read before the race.
   */
  async acquireLease(runId: string, lease: LeaseRequest & { replacing?: string }): Promise<LeaseOutcome> {
    const now = this.#now();
    const [row] = await this.#session.rows<{ acquired_until: number | null; status: RunStatus; owner: string | null; expires_at: number | null }>(sql`
      WITH prior AS (
        SELECT status, owner, lease_expires_at FROM ${runs} WHERE id = ${runId}
      ),
      taken AS (
        UPDATE ${runs} SET owner = ${lease.owner}, lease_expires_at = ${this.#expiry(lease.ttlMs)}
        WHERE id = ${runId} AND status = 'running'
          AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ${now}
               OR owner = ${lease.owner} OR owner = ${lease.replacing ?? null})
        RETURNING lease_expires_at
      )
      SELECT (SELECT ${epochMs(sql`lease_expires_at`)} FROM taken) AS acquired_until,
             prior.status, prior.owner, ${epochMs(sql`prior.lease_expires_at`)} AS expires_at
      FROM prior`);
    if (row === undefined) return { kind: 'missing' };
    if (row.acquired_until !== null) {
      // `prior` is the row before this statement: its owner is the one replaced.
      return { kind: 'acquired', expiresAt: new Date(row.acquired_until), previousOwner: row.owner === null || row.owner === lease.owner ? null : row.owner };
    }
    if (row.status !== 'running') return { kind: 'finished' };
    // Not acquired although `prior` saw it free: another caller took it in between (see above).
    return { kind: 'held', owner: row.owner ?? '', expiresAt: new Date(row.expires_at ?? 0) };
  }

  /*
   * renewLeases: UPDATE runs SET lease_expires_at = (running ? now + ttl : NULL),
   *                              owner = (running ? owner : NULL)
   *              WHERE owner = $owner RETURNING id, status
   * Inputs: the owner and the ttl. Result: the ids of its running runs. Side effects: their leases
   * extended, its leases on finished runs released. Reads only the owner's rows (runs_owner_idx).
   */
  async renewLeases(lease: LeaseRequest): Promise<string[]> {
    const rows = await this.#session.rows<{ id: string; status: RunStatus }>(sql`
      UPDATE ${runs} SET
        lease_expires_at = CASE WHEN status = 'running' THEN ${this.#expiry(lease.ttlMs)} ELSE NULL END,
        owner = CASE WHEN status = 'running' THEN owner ELSE NULL END
      WHERE owner = ${lease.owner}
      RETURNING id, status`);
    return rows.filter((row) => row.status === 'running').map((row) => row.id);
  }

  /*
   * releaseLeases: UPDATE runs SET owner = NULL, lease_expires_at = NULL
   *                WHERE owner = $owner [AND id = ANY($ids)]
   * Side effects: the owner's leases (on those runs) freed; nobody else's are touched.
   */
  async releaseLeases(owner: string, runIds?: readonly string[]): Promise<void> {
    if (runIds !== undefined && runIds.length === 0) return;
    await this.#session.rows(sql`
      UPDATE ${runs} SET owner = NULL, lease_expires_at = NULL
      WHERE owner = ${owner}${runIds === undefined ? sql`` : sql` AND ${anyOf(runs.id, runIds)}`}
      RETURNING 1`);
  }

  /*
   * listUnleased: SELECT <summary> FROM runs WHERE status = 'running'
   *               AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= now)
   *               ORDER BY updated_at, id LIMIT $limit
   * Side effects: none.
   */
  async listUnleased(limit?: number): Promise<RunSummary[]> {
    const query = this.#session.db
      .select(summaryColumns)
      .from(runs)
      .where(and(eq(runs.status, 'running'), sql`(${runs.owner} IS NULL OR ${runs.leaseExpiresAt} IS NULL OR ${runs.leaseExpiresAt} <= ${this.#now()})`))
      .orderBy(asc(runs.updatedAt), asc(sql`${runs.id} COLLATE "C"`));
    return limit === undefined ? await query : await query.limit(Math.max(0, limit));
  }

  /*
   * requestCancel: WITH prior AS (SELECT status, error->>'code' FROM runs WHERE id = $id),
   *   asked AS (UPDATE runs SET error = $error, updated_at = $at, version = version + 1
   *             WHERE id = $id AND status = 'running'
   *               AND (error IS NULL OR error->>'code' IS DISTINCT FROM 'RUN_CANCELLED')
   *             RETURNING id)
   *   SELECT (SELECT count(*) FROM asked), prior.* FROM prior
   * Inputs: a run id, the RUN_CANCELLED error to record, the time. Result: requested, already
   * requested, finished (with the status prior saw), or missing. Side effects: on requesting, the
   * run's error, updated_at and version (a save from an earlier load then matches no row); the
   * status and the lease are untouched. A save racing it: whichever takes the row lock second
   * re-checks its WHERE on the new row (a changed version, or a status no longer running) and
   * writes nothing, so a run whose request landed can only end cancelled.
   */
  async requestCancel(runId: string, error: ErrorInfo, at: Date): Promise<CancelRequestOutcome> {
    const [row] = await this.#session.rows<{ asked: number; status: RunStatus; code: string | null }>(sql`
      WITH prior AS (
        SELECT status, error->>'code' AS code FROM ${runs} WHERE id = ${runId}
      ),
      asked AS (
        UPDATE ${runs} SET error = ${jsonParam(error)}, updated_at = ${at.toISOString()}::timestamptz, version = version + 1
        WHERE id = ${runId} AND status = 'running' AND (error IS NULL OR error->>'code' IS DISTINCT FROM 'RUN_CANCELLED')
        RETURNING id
      )
      SELECT (SELECT count(*)::int FROM asked) AS asked, prior.status, prior.code FROM prior`);
    if (row === undefined) return { kind: 'missing' };
    if (row.asked === 1) return { kind: 'requested' };
    if (row.status !== 'running') return { kind: 'finished', status: row.status };
    if (row.code === 'RUN_CANCELLED') return { kind: 'already-requested' };
    // `prior` saw it running, but a save ended it before the update took the row: read it again.
    return this.requestCancel(runId, error, at);
  }

  /*
   * cancelRequested: SELECT id FROM runs WHERE id = ANY($ids) AND status = 'running'
   *                  AND error->>'code' = 'RUN_CANCELLED'
   * By primary key: one indexed read of the given runs. Side effects: none.
   */
  async cancelRequested(runIds: readonly string[]): Promise<string[]> {
    if (runIds.length === 0) return [];
    const rows = await this.#session.rows<{ id: string }>(sql`
      SELECT id FROM ${runs}
      WHERE ${anyOf(runs.id, runIds)} AND status = 'running' AND error->>'code' = 'RUN_CANCELLED'`);
    return rows.map((row) => row.id);
  }
}


/** Epoch milliseconds of a timestamptz, as a number (raw rows carry no timestamps; see SqlSession). */

