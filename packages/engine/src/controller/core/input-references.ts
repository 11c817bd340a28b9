import { MemoflowError } from '../../errors.js';
import type { Json, NodeValue } from '../../json.js';
import type { NodeExecution } from '../../state/run-state.js';
import { atPath } from './resolve-binding.js';
import { inputSourceOf, recordInputSource } from './input-sources.js';

/*
 * Each value is stored once (issue 9, item 8): a node input bound straight to another node's output
 * (`total({ rows: clean({ rows }) })`, or a field of it, `split(...).train`) is that output, or a
 * field of it, so the run store keeps a reference to the producer instead of a second copy. A 10 KB
 * output read by 1,000 consumers cost 10 MB of node rows; now it costs 1,000 references.
 *
 * Provenance is recorded where the engine resolves a binding (`resolveBinding`), on the resolved
 * value object itself, in a WeakMap: it never changes the value, its key, or what a task sees, and
 * a value copied or built any other way simply has none and is stored whole. A SQL run store
 * writes a referenced input as `{ from, path }` (no `value` field, so it cannot be mistaken for a
 * stored NodeValue, whose `value` is always present) and `decodeStoredInputs` resolves it on load
 * against the producer's stored output with the same `atPath` the binding used, so the loaded
 * input equals, field for field, the value that was resolved. Rows of earlier releases hold every
 * input whole and load as they always did.
 */

/** An input as a run store writes it: the value, or a reference to its producer's output. */
export type StoredInput = NodeValue | { from: string; path?: readonly string[] };

/** A node's inputs as a run store writes them: each input resolved from an output becomes a reference. */
export function encodeStoredInputs(inputs: NodeExecution['inputs']): { [name: string]: StoredInput } | null {
  if (inputs === null) return null;
  const stored: { [name: string]: StoredInput } = {};
  for (const [name, value] of Object.entries(inputs)) {
    const source = inputSourceOf(value);
    stored[name] = source === undefined ? value : source.path === undefined || source.path.length === 0 ? { from: source.node } : { from: source.node, path: source.path };
  }
  return stored;
}

/**
 * Resolves the references in loaded node rows, in place, against the producers' outputs in the
 * same rows (one run's). A producer always has its output by the time a consumer's inputs are
 * written (a node starts only once its upstream has), and outputs are never rewritten, so a
 * reference that does not resolve means a damaged store: a clear error naming run, node and input.
 */
export function decodeStoredInputs(nodes: { [nodeId: string]: NodeExecution }): void {
  for (const node of Object.values(nodes)) {
    const inputs = node.inputs as { [name: string]: StoredInput } | null;
    if (inputs === null) continue;
    for (const [name, stored] of Object.entries(inputs)) {
      if (!isReference(stored)) continue;
      const output = nodes[stored.from]?.output;
      if (output === undefined || output === null) {
        throw new MemoflowError('RUN_STORE_CORRUPT', `run '${node.runId}': input '${name}' of node '${node.nodeId}' refers to the output of node '${stored.from}', which the run store does not hold`, { node: node.nodeId, field: name });
      }
      const value = atPath(output, stored.path);
      recordInputSource(value, stored.path === undefined ? { node: stored.from } : { node: stored.from, path: stored.path });
      (node.inputs as { [name: string]: NodeValue })[name] = value;
    }
  }
}

function isReference(stored: StoredInput | Json): stored is { from: string; path?: readonly string[] } {
  return typeof stored === 'object' && stored !== null && !Array.isArray(stored) && !('value' in stored) && typeof (stored as { from?: unknown }).from === 'string';
}
