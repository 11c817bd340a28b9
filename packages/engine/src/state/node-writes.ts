import type { NodeField, NodeWrite } from '../ports/run-store.js';
import type { NodeExecution, RunState } from './run-state.js';

/**
 * Every field a save can write, as a table the compiler checks: a field added to NodeExecution
 * does not compile until it is listed here, so no field is ever silently left out of a save.
 */
const FIELDS: { readonly [K in NodeField]-?: true } = {
  task: true,
  phase: true,
  cacheStatus: true,
  cacheReason: true,
  cacheKey: true,
  cacheKeyParts: true,
  attempts: true,
  inputs: true,
  output: true,
  error: true,
  startedAt: true,
  finishedAt: true,
  subWorkflow: true,
  cacheWriteRetry: true,
  waitedFor: true,
  computeMs: true,
  savedMs: true,
  cutoffHint: true,
};
const NODE_FIELDS = Object.keys(FIELDS) as NodeField[];

/**
 * Whether a field kept its value. By reference: `decide` copies a record on write and keeps every
 * field it does not set, so an unchanged input, key or output is the very object the store gave
 * (or was given). A new object with equal content counts as changed, which only costs bytes, never
 * correctness: whatever differs in value differs in reference. Dates compare by time, and an
 * absent field equals null (the stores keep both as NULL).
 */
function same(before: unknown, after: unknown): boolean {
  if (before === after) return true;
  if ((before ?? null) === null && (after ?? null) === null) return true;
  return before instanceof Date && after instanceof Date && before.getTime() === after.getTime();
}

/** The fields of `after` that differ from `before` (the record the store holds). */
export function changedFields(before: NodeExecution, after: NodeExecution): NodeField[] {
  return NODE_FIELDS.filter((field) => !same(before[field], after[field]));
}

/**
 * What a save writes of one node: the whole record when the store does not hold it yet (`stored`
 * undefined), else only the fields that changed since `stored`; null when nothing did.
 */
export function nodeWrite(stored: NodeExecution | undefined, node: NodeExecution): NodeWrite | null {
  if (stored === undefined) return { node };
  const changed = changedFields(stored, node);
  return changed.length === 0 ? null : { node, changed };
}

/**
 * The writes of a save: for each id, `next`'s record against what the store holds for it
 * (`stored(id)`, undefined for a node the save creates). Ids whose record did not change are left out.
 */
export function nodeWrites(ids: Iterable<string>, stored: (id: string) => NodeExecution | undefined, next: RunState['nodes']): NodeWrite[] {
  const writes: NodeWrite[] = [];
  for (const id of ids) {
    const node = next[id];
    if (node === undefined) throw new Error(`no node '${id}' to save`);
    const write = nodeWrite(stored(id), node);
    if (write !== null) writes.push(write);
  }
  return writes;
}
