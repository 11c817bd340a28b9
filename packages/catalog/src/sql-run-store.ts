import { and, asc, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { CacheWriteRetry, Clock, CutoffHint, LeaseOutcome, LeaseRequest, NodeExecution, NodeField, NodeWrite, ReservationWait, RunListFilter, RunSaveRequest, RunState, RunStatus, RunStore, RunSummary } from '@memoflow/engine';
import { MemoflowError, decodeStoredInputs, fencedSaveError, encodeStoredInputs, sqlState, type CancelRequestOutcome, type ErrorInfo } from '@memoflow/engine';
import { nodeExecutions, runs } from './schema.js';
import { anyOf, jsonParam, nullableJsonParam, type SqlSession } from './sql-session.js';

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

/**
 * The node_executions columns a save can write: per NodeExecution field, its column, the column's
 * type in the json parameter's recordset, and its value there (dates as ISO text). A mapped type,
 * so a new field does not compile until it has a column.
 */
const COLUMNS: { readonly [F in NodeField]-?: readonly [column: string, type: string, value: (node: NodeExecution) => unknown] } = {
  task: ['task', 'text', (n) => n.task],
  phase: ['phase', 'text', (n) => n.phase],
  cacheStatus: ['cache_status', 'text', (n) => n.cacheStatus],
  cacheReason: ['cache_reason', 'text', (n) => n.cacheReason],
  cacheKey: ['cache_key', 'text', (n) => n.cacheKey],
  cacheKeyParts: ['cache_key_parts', 'json', (n) => n.cacheKeyParts],
  attempts: ['attempts', 'int', (n) => n.attempts],
  // An input bound to other nodes' outputs is stored as its binding (each value stored once).
  inputs: ['inputs', 'json', (n) => encodeStoredInputs(n.inputs)],
  output: ['output', 'json', (n) => n.output],
  error: ['error', 'json', (n) => n.error],
  startedAt: ['started_at', 'timestamptz', (n) => n.startedAt?.toISOString() ?? null],
  finishedAt: ['finished_at', 'timestamptz', (n) => n.finishedAt?.toISOString() ?? null],
  subWorkflow: ['sub_workflow', 'json', (n) => n.subWorkflow],
  cacheWriteRetry: ['cache_write_retry', 'json', (n) => n.cacheWriteRetry ?? null],
  waitedFor: ['waited_for', 'json', (n) => n.waitedFor ?? null],
  computeMs: ['compute_ms', 'bigint', (n) => n.computeMs ?? null],
  savedMs: ['saved_ms', 'bigint', (n) => n.savedMs ?? null],
  cutoffHint: ['cutoff_hint', 'json', (n) => n.cutoffHint ?? null],
};
const FIELDS = Object.keys(COLUMNS) as NodeField[];
const columnOf = (field: NodeField) => COLUMNS[field][0];
/** Each field's bit in a partial write's `changed` mask: its place in FIELDS. */
const bitOf = (field: NodeField) => 1 << FIELDS.indexOf(field);

/**
 * A node write as one element of the statements' json parameter: keys are the column names
 * (json_to_recordset matches them, and reads a key left out as NULL, so null values are left out).
 * A whole record has every column; a partial one has `node_id`, the changed columns and `changed`,
 * a mask of their bits (`bitOf`), so a column left out is told from one set to null by the mask,
 * never by its value. (A mask, not a list of names: a list cost a cached 1,000-node run's one save
 * 27 KB more than it saved.)
 */
function nodeDocument({ node, changed }: NodeWrite): Record<string, unknown> {
  const fields = changed ?? FIELDS;
  const doc: Record<string, unknown> = { node_id: node.nodeId };
  for (const field of fields) {
    const [column, , value] = COLUMNS[field];
    const v = value(node);
    // A key left out reads as NULL in json_to_recordset, as a null does: most columns of a node are
    // null most of the time, and each costs its name in a parameter of up to 100,000 rows.
    if (v !== null && v !== undefined) doc[column] = v;
  }
  if (changed !== undefined) doc['changed'] = changed.reduce((mask, field) => mask | bitOf(field), 0);
  return doc;
}

const wholeDocument = (node: NodeExecution) => nodeDocument({ node });

/**
 * The node writes of one json array parameter as rows `n`. The json-typed fields keep their
 * text as written (key order included); a JSON null becomes SQL NULL, so a null comes back as
 * null, not as a JSON null. `changed` is NULL for a whole record.
 */
const nodeRows = (documents: readonly Record<string, unknown>[]) =>
  sql`json_to_recordset(${jsonParam(documents)}) AS n(node_id text, changed int, ${sql.raw(FIELDS.map((f) => `${COLUMNS[f][0]} ${COLUMNS[f][1]}`).join(', '))})`;

const nodeColumns = sql.raw(['run_id', 'node_id', ...FIELDS.map(columnOf)].join(', '));

/** The node columns selected from `n`. */
const nodeValues = (runId: SQL) => sql`${runId}, n.node_id, ${sql.raw(FIELDS.map((f) => `n.${columnOf(f)}`).join(', '))}`;

/** An upsert's update: every column from the proposed row. */
const overwriteAll = sql.raw(FIELDS.map((f) => `${columnOf(f)} = excluded.${columnOf(f)}`).join(', '));

/** A partial update: the columns in the mask from `n`, every other one as stored in `ne`. */
const overwriteChanged = sql.raw(
  FIELDS.map((f) => {
    const c = columnOf(f);
    return `${c} = CASE WHEN (n.changed & ${bitOf(f)}) <> 0 THEN n.${c} ELSE ne.${c} END`;
  }).join(', '),
);

export interface SqlRunStoreOptions {
  /**
   * The clock leases are measured by. Default: the database's clock (`now()`), one clock for every
   * controller of a distributed deployment, whatever their machines' clocks say.
   */
  clock?: Clock;
  /** See CREATE_SLICE_NODES. */
  createSliceNodes?: number;
}

/**
 * A run of more nodes than this is created in slices of this many node rows, in one transaction:
 * one json parameter of 100,000 rows is ~55 MB of text that the controller holds (with its UTF-8
 * copy) while Postgres parses it into a tuplestore that spills to disk past work_mem.
 */
export const CREATE_SLICE_NODES = 5_000;

/**
 * The RunStore over drizzle's Postgres query builder, shared by PostgresRunStore and
 * PgliteRunStore. Each write is one statement (a create of more than CREATE_SLICE_NODES nodes,
 * one transaction): a run and its node executions change together or not at all, and `save` is a
 * compare-and-set on `version`.
 */
export class SqlRunStore implements RunStore {
  readonly #session: SqlSession;
  readonly #clock: Clock | undefined;
  readonly #createSlice: number;

  constructor(session: SqlSession, options: SqlRunStoreOptions = {}) {
    this.#session = session;
    this.#clock = options.clock;
    this.#createSlice = Math.max(1, options.createSliceNodes ?? CREATE_SLICE_NODES);
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

  /*
   * create: WITH r AS (INSERT INTO runs ... version 0 RETURNING id)
   *         INSERT INTO node_executions SELECT ... FROM r CROSS JOIN json_to_recordset($nodes)
   * Inputs: the run and its node executions (one json parameter), optionally a lease. Result: none;
   * throws CATALOG_ERROR if the id exists. Side effects: inserts the run (leased to the creator, or
   * free) and its nodes, or nothing.
   */
  async create(state: RunState, lease?: LeaseRequest): Promise<void> {
    const { run } = state;
    const nodes = Object.values(state.nodes);
    try {
      if (nodes.length <= this.#createSlice) {
        await this.#createWith(this.#session, state, lease, nodes);
        return;
      }
      // The run row and the first slice in one statement, the other slices after it: one transaction.
      await this.#session.transaction(async (tx) => {
        await this.#createWith(tx, state, lease, nodes.slice(0, this.#createSlice));
        for (let start = this.#createSlice; start < nodes.length; start += this.#createSlice) {
          await tx.rows(sql`
            INSERT INTO ${nodeExecutions} (${nodeColumns})
            SELECT ${nodeValues(sql`${run.id}`)}
            FROM ${nodeRows(nodes.slice(start, start + this.#createSlice).map(wholeDocument))}`);
        }
      });
    } catch (error) {
      if (sqlState(error) === '23505') {
        throw new MemoflowError('CATALOG_ERROR', `run '${run.id}' already exists`, { cause: error });
      }
      throw error;
    }
  }

  /** The create's first statement: the run row, and `nodes` (all of them, or its first slice). */
  async #createWith(session: SqlSession, state: RunState, lease: LeaseRequest | undefined, nodes: readonly NodeExecution[]): Promise<void> {
    const { run } = state;
    await session.rows(sql`
      WITH r AS (
        INSERT INTO ${runs} (id, workflow, project, domain, spec, inputs, options, status, outputs, error, version, created_at, updated_at, finished_at, owner, lease_expires_at)
        VALUES (${run.id}, ${run.workflow}, ${run.project}, ${run.domain}, ${jsonParam(run.spec)}, ${jsonParam(run.inputs)},
                ${jsonParam(run.options)}, ${run.status}, ${nullableJsonParam(run.outputs)}, ${nullableJsonParam(run.error)}, 0,
                ${run.createdAt.toISOString()}::timestamptz, ${run.updatedAt.toISOString()}::timestamptz,
                ${run.finishedAt?.toISOString() ?? null}::timestamptz,
                ${lease?.owner ?? null}, ${lease === undefined ? sql`NULL` : this.#expiry(lease.ttlMs)})
        RETURNING id
      )
      INSERT INTO ${nodeExecutions} (${nodeColumns})
      SELECT ${nodeValues(sql`r.id`)}
      FROM r CROSS JOIN ${nodeRows(nodes.map(wholeDocument))}`);
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
        run: runs,
        nodes: sql<StoredNode[]>`(
          SELECT coalesce(json_agg(ne), '[]'::json) FROM ${nodeExecutions} AS ne WHERE ne.run_id = ${runs.id}
        )`,
      })
      .from(runs)
      .where(eq(runs.id, runId));
    if (row === undefined) return undefined;
    const nodes: RunState['nodes'] = {};
    for (const stored of row.nodes) nodes[stored.node_id] = fromStoredNode(stored);
    decodeStoredInputs(row.run, nodes);
    // The lease is the store's business (acquireLease), not part of the run's decided state.
    const { owner: _owner, leaseExpiresAt: _expiry, ...run } = row.run;
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
const epochMs = (column: SQL) => sql`(extract(epoch FROM ${column}) * 1000)::float8`;

/** A node_executions row as `json_agg` renders it: column names, timestamps as ISO 8601 text. */
interface StoredNode {
  run_id: string;
  node_id: string;
  task: string;
  phase: NodeExecution['phase'];
  cache_status: NodeExecution['cacheStatus'];
  cache_reason: string | null;
  cache_key: string | null;
  cache_key_parts: NodeExecution['cacheKeyParts'];
  attempts: number;
  inputs: NodeExecution['inputs'];
  output: NodeExecution['output'];
  error: NodeExecution['error'];
  started_at: string | null;
  finished_at: string | null;
  sub_workflow: NodeExecution['subWorkflow'];
  /** Absent (NULL) in rows written by the release before it existed. */
  cache_write_retry?: CacheWriteRetry | null;
  /** Absent (NULL) in rows written before serialized reservations. */
  waited_for?: ReservationWait | null;
  /** Absent (NULL) in rows written before durations; bigint columns come back as text or number depending on the driver. */
  compute_ms?: string | number | null;
  saved_ms?: string | number | null;
  cutoff_hint?: CutoffHint | null;
}

function fromStoredNode(stored: StoredNode): NodeExecution {
  return {
    runId: stored.run_id,
    nodeId: stored.node_id,
    task: stored.task,
    phase: stored.phase,
    cacheStatus: stored.cache_status,
    cacheReason: stored.cache_reason,
    cacheKey: stored.cache_key,
    cacheKeyParts: stored.cache_key_parts,
    attempts: stored.attempts,
    inputs: stored.inputs,
    output: stored.output,
    error: stored.error,
    startedAt: stored.started_at === null ? null : new Date(stored.started_at),
    finishedAt: stored.finished_at === null ? null : new Date(stored.finished_at),
    subWorkflow: stored.sub_workflow ?? null,
    ...(stored.cache_write_retry == null ? {} : { cacheWriteRetry: stored.cache_write_retry }),
    ...(stored.waited_for == null ? {} : { waitedFor: stored.waited_for }),
    ...(stored.compute_ms == null ? {} : { computeMs: Number(stored.compute_ms) }),
    ...(stored.saved_ms == null ? {} : { savedMs: Number(stored.saved_ms) }),
    ...(stored.cutoff_hint == null ? {} : { cutoffHint: stored.cutoff_hint }),
  };
}
