import { and, asc, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { CacheWriteRetry, Clock, LeaseOutcome, LeaseRequest, NodeExecution, RunListFilter, RunSaveRequest, RunState, RunStatus, RunStore, RunSummary } from '@memoflow/engine';
import { MemoflowError, sqlState } from '@memoflow/engine';
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
 * A node execution as one element of the statements' json parameter: keys are the column names
 * (json_to_recordset matches them), dates are ISO text.
 */
function nodeDocument(node: NodeExecution) {
  return {
    node_id: node.nodeId,
    task: node.task,
    phase: node.phase,
    cache_status: node.cacheStatus,
    cache_reason: node.cacheReason,
    cache_key: node.cacheKey,
    cache_key_parts: node.cacheKeyParts,
    attempts: node.attempts,
    inputs: node.inputs,
    output: node.output,
    error: node.error,
    started_at: node.startedAt?.toISOString() ?? null,
    finished_at: node.finishedAt?.toISOString() ?? null,
    sub_workflow: node.subWorkflow,
    cache_write_retry: node.cacheWriteRetry ?? null,
  };
}

/**
 * The node executions of one json array parameter as rows `n`. The json-typed fields keep their
 * text as written (key order included); a JSON null becomes SQL NULL, so a null comes back as
 * null, not as a JSON null.
 */
const nodeRows = (nodes: readonly NodeExecution[]) => sql`json_to_recordset(${jsonParam(nodes.map(nodeDocument))}) AS n(
  node_id text, task text, phase text, cache_status text, cache_reason text, cache_key text, cache_key_parts json,
  attempts int, inputs json, output json, error json, started_at timestamptz, finished_at timestamptz, sub_workflow json,
  cache_write_retry json)`;

/** The node columns selected from `n`. */
const nodeValues = (runId: SQL) => sql`
  ${runId}, n.node_id, n.task, n.phase, n.cache_status, n.cache_reason, n.cache_key, n.cache_key_parts,
  n.attempts, n.inputs, n.output, n.error, n.started_at, n.finished_at, n.sub_workflow, n.cache_write_retry`;

const nodeColumns = sql.raw(
  'run_id, node_id, task, phase, cache_status, cache_reason, cache_key, cache_key_parts, attempts, inputs, output, error, started_at, finished_at, sub_workflow, cache_write_retry',
);

export interface SqlRunStoreOptions {
  /**
   * The clock leases are measured by. Default: the database's clock (`now()`), one clock for every
   * controller of a distributed deployment, whatever their machines' clocks say.
   */
  clock?: Clock;
}

/**
 * The RunStore over drizzle's Postgres query builder, shared by PostgresRunStore and
 * PgliteRunStore. Each write is one statement: a run and its node executions change together or
 * not at all, and `save` is a compare-and-set on `version`.
 */
export class SqlRunStore implements RunStore {
  readonly #session: SqlSession;
  readonly #clock: Clock | undefined;

  constructor(session: SqlSession, options: SqlRunStoreOptions = {}) {
    this.#session = session;
    this.#clock = options.clock;
  }

  /** The store's now, as SQL: the clock's time, else the database's. */
  #now(): SQL {
    return this.#clock === undefined ? sql`date_trunc('milliseconds', now())` : sql`${this.#clock.now().toISOString()}::timestamptz`;
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
    try {
      await this.#session.rows(sql`
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
        FROM r CROSS JOIN ${nodeRows(Object.values(state.nodes))}`);
    } catch (error) {
      if (sqlState(error) === '23505') {
        throw new MemoflowError('CATALOG_ERROR', `run '${run.id}' already exists`, { cause: error });
      }
      throw error;
    }
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
    // The lease is the store's business (acquireLease), not part of the run's decided state.
    const { owner: _owner, leaseExpiresAt: _expiry, ...run } = row.run;
    return { run, nodes };
  }

  /*
   * save: WITH bumped AS (UPDATE runs SET status, outputs, error, updated_at, finished_at,
   *                       version = version + 1
   *                       WHERE id = $id AND version = $expected RETURNING id),
   *       written AS (INSERT INTO node_executions SELECT ... FROM bumped CROSS JOIN
   *                   json_to_recordset($nodes) ON CONFLICT (run_id, node_id) DO UPDATE ...)
   *       SELECT count(*) FROM bumped
   * Inputs: the run's changing fields, the changed node executions (one json parameter, possibly
   * empty) and the version the caller loaded. The run's fixed fields (workflow, project, domain,
   * spec, inputs, options, created_at) are written by `create` only: a save neither sends nor
   * rewrites them (the spec of a 1,000-node workflow is large), and ignores them in `run`.
   * Result: true if the stored version matched. Side effects: on a match, the run's status,
   * outputs, error, updated_at, finished_at, version + 1 and the node upserts; otherwise nothing
   * (the nodes' SELECT reads from `bumped`, which is then empty). Two racing saves: the second
   * UPDATE waits for the first's row lock, re-checks `version` and matches no row.
   */
  async save(request: RunSaveRequest): Promise<boolean> {
    const { run } = request;
    const [row] = await this.#session.rows<{ saved: number }>(sql`
      WITH bumped AS (
        UPDATE ${runs} SET
          status = ${run.status}, outputs = ${nullableJsonParam(run.outputs)}, error = ${nullableJsonParam(run.error)},
          version = version + 1, updated_at = ${run.updatedAt.toISOString()}::timestamptz,
          finished_at = ${run.finishedAt?.toISOString() ?? null}::timestamptz
        WHERE id = ${run.id} AND version = ${request.expectedVersion}::int
        RETURNING id
      ),
      written AS (
        INSERT INTO ${nodeExecutions} (${nodeColumns})
        SELECT ${nodeValues(sql`bumped.id`)}
        FROM bumped CROSS JOIN ${nodeRows(request.nodes)}
        ON CONFLICT (run_id, node_id) DO UPDATE SET
          task = excluded.task, phase = excluded.phase, cache_status = excluded.cache_status,
          cache_reason = excluded.cache_reason, cache_key = excluded.cache_key,
          cache_key_parts = excluded.cache_key_parts, attempts = excluded.attempts, inputs = excluded.inputs,
          output = excluded.output, error = excluded.error, started_at = excluded.started_at,
          finished_at = excluded.finished_at, sub_workflow = excluded.sub_workflow,
          cache_write_retry = excluded.cache_write_retry
        RETURNING 1
      )
      SELECT count(*)::int AS saved FROM bumped`);
    return row?.saved === 1;
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
  };
}
