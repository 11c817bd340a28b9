import { MemoflowError, type NodeExecution } from '@memoflow/engine';
import { NODE_FIELD_COLUMNS } from './node-rows.js';
import { copyField, copyJsonField } from './copy-in.js';
import { storableJson } from './sql-session.js';

// A run's node rows as COPY's text format (SqlSession.copyIn), for the creates of large runs: the
// same columns and values as the json documents of `nodeRows`, without a column name per value.

/** Rows per chunk handed to the COPY stream: big enough to batch writes, small enough to stream. */
const ROWS_PER_CHUNK = 1_000;

/**
 * The rows of `nodes` under `runId`, in NODE_COLUMN_NAMES' order, ROWS_PER_CHUNK to a chunk,
 * made as the COPY reads them (the text of 100,000 rows is never held at once). A json column
 * holds the value's JSON text (checked storable, as a json parameter's is); a null or an absent
 * value is NULL, as a key left out of a json document reads.
 */
export function* nodeCopyChunks(runId: string, nodes: readonly NodeExecution[]): Generator<string> {
  const run = copyField(runId);
  for (let start = 0; start < nodes.length; start += ROWS_PER_CHUNK) {
    let chunk = '';
    for (const node of nodes.slice(start, start + ROWS_PER_CHUNK)) chunk += `${run}\t${copyField(node.nodeId)}${fieldsOf(node)}\n`;
    yield chunk;
  }
}

function fieldsOf(node: NodeExecution): string {
  let fields = '';
  for (const { column, type, value } of NODE_FIELD_COLUMNS) {
    const text = textOf(node, column, type, value(node));
    fields += `\t${type === 'json' && text !== null ? copyJsonField(text) : copyField(text)}`;
  }
  return fields;
}

/**
 * A column's text. Numbers are checked here, so Postgres has no reason to refuse a row for its
 * values (a refusal after the last row would cost the COPY's statement-after check, see copyIn):
 * what a json recordset refuses, this refuses too, saying which node and column.
 */
function textOf(node: NodeExecution, column: string, type: string, value: unknown): string | null {
  // NaN and the infinities too: JSON.stringify writes them as null, which a recordset reads as NULL.
  if (value === null || value === undefined || (typeof value === 'number' && !Number.isFinite(value))) return null;
  switch (type) {
    case 'json':
      return storableJson(value);
    case 'int':
      return wholeNumber(node, column, value, 2 ** 31);
    case 'bigint':
      return wholeNumber(node, column, value, 2 ** 63);
    default:
      // text, and timestamptz as the ISO 8601 text toISOString writes: strings, by COLUMNS' types.
      if (typeof value !== 'string') throw new MemoflowError('CATALOG_ERROR', `node '${node.nodeId}' of run '${node.runId}': ${column} must be text, not ${typeof value}`);
      return value;
  }
}

function wholeNumber(node: NodeExecution, column: string, value: unknown, limit: number): string {
  if (typeof value !== 'number' || !Number.isInteger(value) || value >= limit || value < -limit) {
    throw new MemoflowError('CATALOG_ERROR', `node '${node.nodeId}' of run '${node.runId}': ${column} must be a whole number below ${limit}, not ${String(value)}`);
  }
  return String(value);
}
