import { sql, type SQL } from 'drizzle-orm';
import type { CacheWriteRetry, CutoffHint, NodeExecution, NodeField, NodeWrite, ReservationWait } from '@memoflow/engine';
import { encodeStoredInputs } from '@memoflow/engine';
import { jsonParam } from './sql-session.js';

// node_executions rows as the run store's statements write them (json documents, one parameter per
// batch) and as its load reads them back (json_agg rows).

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
  startedAt: ['started_at', 'timestamptz', (n) => isoOf(n.startedAt)],
  finishedAt: ['finished_at', 'timestamptz', (n) => isoOf(n.finishedAt)],
  subWorkflow: ['sub_workflow', 'json', (n) => n.subWorkflow],
  cacheWriteRetry: ['cache_write_retry', 'json', (n) => n.cacheWriteRetry ?? null],
  waitedFor: ['waited_for', 'json', (n) => n.waitedFor ?? null],
  computeMs: ['compute_ms', 'bigint', (n) => n.computeMs ?? null],
  savedMs: ['saved_ms', 'bigint', (n) => n.savedMs ?? null],
  cutoffHint: ['cutoff_hint', 'json', (n) => n.cutoffHint ?? null],
};
const FIELDS = Object.keys(COLUMNS) as NodeField[];

/**
 * A node time as ISO 8601 text, the last one remembered: the nodes a round settles share its one
 * `now`, and toISOString for each of a 100,000-node create's two times cost ~140 ms. Compared by
 * value too, so a Date changed in place is never written stale.
 */
function isoOf(date: Date | null): string | null {
  if (date === null) return null;
  const time = date.getTime();
  if (date !== lastDate || time !== lastTime) {
    lastIso = date.toISOString();
    lastDate = date;
    lastTime = time;
  }
  return lastIso;
}
let lastDate: Date | undefined;
let lastTime = Number.NaN;
let lastIso = '';
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
export function nodeDocument({ node, changed }: NodeWrite): Record<string, unknown> {
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

export const wholeDocument = (node: NodeExecution) => nodeDocument({ node });

/**
 * The node writes of one json array parameter as rows `n`. The json-typed fields keep their
 * text as written (key order included); a JSON null becomes SQL NULL, so a null comes back as
 * null, not as a JSON null. `changed` is NULL for a whole record.
 */
export const nodeRows = (documents: readonly Record<string, unknown>[]) =>
  sql`json_to_recordset(${jsonParam(documents)}) AS n(node_id text, changed int, ${sql.raw(FIELDS.map((f) => `${COLUMNS[f][0]} ${COLUMNS[f][1]}`).join(', '))})`;

/** node_executions' columns in the order creates write them (`nodeColumns`, and COPY's rows: node-copy.ts). */
export const NODE_COLUMN_NAMES: readonly string[] = ['run_id', 'node_id', ...FIELDS.map(columnOf)];

export const nodeColumns = sql.raw(NODE_COLUMN_NAMES.join(', '));

/** Per field after run_id and node_id, in NODE_COLUMN_NAMES' order: its recordset type and value. */
export const NODE_FIELD_COLUMNS: readonly { readonly column: string; readonly type: string; readonly value: (node: NodeExecution) => unknown }[] = FIELDS.map((f) => ({
  column: COLUMNS[f][0],
  type: COLUMNS[f][1],
  value: COLUMNS[f][2],
}));

/** The node columns selected from `n`. */
export const nodeValues = (runId: SQL) => sql`${runId}, n.node_id, ${sql.raw(FIELDS.map((f) => `n.${columnOf(f)}`).join(', '))}`;

/** An upsert's update: every column from the proposed row. */
export const overwriteAll = sql.raw(FIELDS.map((f) => `${columnOf(f)} = excluded.${columnOf(f)}`).join(', '));

/** A partial update: the columns in the mask from `n`, every other one as stored in `ne`. */
export const overwriteChanged = sql.raw(
  FIELDS.map((f) => {
    const c = columnOf(f);
    return `${c} = CASE WHEN (n.changed & ${bitOf(f)}) <> 0 THEN n.${c} ELSE ne.${c} END`;
  }).join(', '),
);

/** A node_executions row as `json_agg` renders it: column names, timestamps as ISO 8601 text. */
export interface StoredNode {
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

export function fromStoredNode(stored: StoredNode): NodeExecution {
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
