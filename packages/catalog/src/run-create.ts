import { sql, type SQL } from 'drizzle-orm';
import type { LeaseRequest, NodeExecution, RunState } from '@memoflow/engine';
import { nodeCopyChunks } from './node-copy.js';
import { NODE_COLUMN_NAMES, nodeColumns, nodeRows, nodeValues, wholeDocument } from './node-rows.js';
import { nodeExecutions, runs } from './schema.js';
import { jsonParam, nullableJsonParam, type SqlSession } from './sql-session.js';
import { specExists, specInsert, type SpecToWrite } from './stored-specs.js';

// The statements of SqlRunStore.create (its contract is there): one statement, slices in a
// transaction, or COPY in a transaction, by the run's size and the back end.

/**
 * A run of more nodes than this is created in slices of this many node rows, in one transaction:
 * one json parameter of 100,000 rows is ~55 MB of text that the controller holds (with its UTF-8
 * copy) while Postgres parses it into a tuplestore that spills to disk past work_mem.
 */
export const CREATE_SLICE_NODES = 5_000;

/**
 * A run of at least this many nodes has its node rows created by COPY where the back end has it
 * (postgres.js: SqlSession.copyIn), in the create's transaction: 100,000 rows in ~0.5 s against
 * ~1.15 s as json recordsets. Below it the one statement wins: a COPY costs a transaction and
 * ~40-90 ms of TCP delayed acknowledgement (postgres.js writes COPY's end as its own small packet).
 */
export const COPY_CREATE_NODES = 20_000;

/** What a create needs of its store: the session, the size thresholds, and the store's clock as SQL. */
export interface RunCreation {
  readonly session: SqlSession;
  readonly createSlice: number;
  readonly copyFrom: number;
  readonly now: SQL;
  readonly expiry: (ttlMs: number) => SQL;
}

/** One create: false when it sent the spec's digest alone and no row has it (nothing was written). */
export async function createRunOnce(creation: RunCreation, state: RunState, lease: LeaseRequest | undefined, nodes: readonly NodeExecution[], spec: SpecToWrite): Promise<boolean> {
  const { session, createSlice, copyFrom } = creation;
  const copy = nodes.length >= copyFrom && session.copies === true;
  if (nodes.length <= createSlice && !copy) return createWith(creation, session, state, lease, nodes, spec);
  return session.transaction(async (tx) => {
    if (copy && tx.copyIn !== undefined) {
      // The run row first (it decides whether the spec row exists), then every node row by COPY.
      if (!(await createWith(creation, tx, state, lease, [], spec))) return false;
      await tx.copyIn('node_executions', NODE_COLUMN_NAMES, nodeCopyChunks(state.run.id, nodes));
      return true;
    }
    // The run row and the first slice in one statement, the other slices after it.
    if (!(await createWith(creation, tx, state, lease, nodes.slice(0, createSlice), spec))) return false;
    for (let start = createSlice; start < nodes.length; start += createSlice) {
      await tx.rows(sql`
        INSERT INTO ${nodeExecutions} (${nodeColumns})
        SELECT ${nodeValues(sql`${state.run.id}`)}
        FROM ${nodeRows(nodes.slice(start, start + createSlice).map(wholeDocument))}`);
    }
    return true;
  });
}

/**
 * The create's first statement: the spec row (when its text is sent), the run row naming it, and
 * `nodes` (all of them, or the first slice). False when the run row was not inserted because
 * the spec was sent by digest and no row has it.
 */
async function createWith(creation: RunCreation, session: SqlSession, state: RunState, lease: LeaseRequest | undefined, nodes: readonly NodeExecution[], spec: SpecToWrite): Promise<boolean> {
  const { run } = state;
  const [row] = await session.rows<{ created: number }>(sql`
    WITH ${specInsert(spec, creation.now)}
    r AS (
      INSERT INTO ${runs} (id, workflow, project, domain, spec, spec_digest, inputs, options, status, outputs, error, version, created_at, updated_at, finished_at, owner, lease_expires_at)
      SELECT ${run.id}, ${run.workflow}, ${run.project}, ${run.domain}, NULL, ${spec.digest}, ${jsonParam(run.inputs)},
             ${jsonParam(run.options)}, ${run.status}, ${nullableJsonParam(run.outputs)}, ${nullableJsonParam(run.error)}, 0,
             ${run.createdAt.toISOString()}::timestamptz, ${run.updatedAt.toISOString()}::timestamptz,
             ${run.finishedAt?.toISOString() ?? null}::timestamptz,
             ${lease?.owner ?? null}, ${lease === undefined ? sql`NULL` : creation.expiry(lease.ttlMs)}
      ${specExists(spec)}
      RETURNING id
    ),
    n AS (
      INSERT INTO ${nodeExecutions} (${nodeColumns})
      SELECT ${nodeValues(sql`r.id`)}
      FROM r CROSS JOIN ${nodeRows(nodes.map(wholeDocument))}
      RETURNING 1
    )
    SELECT count(*)::int AS created FROM r`);
  return row?.created === 1;
}

