import { MemoflowError } from '../../errors.js';
import type { NodeValue } from '../../json.js';
import type { Binding } from '../../spec/workflow-spec.js';
import type { NodeExecution, RunRecord } from '../../state/run-state.js';
import { inputBindingOf, recordInputBinding } from './input-sources.js';
import { resolveBinding } from './resolve-binding.js';

/*
 * Each value is stored once (issue 9, item 8): a node input bound to other nodes' outputs
 * (`total({ rows: clean({ rows }) })`, a field of one, `split(...).train`, or a fan-in of fifty
 * results, `merge({ xs: parts })`) is made of values the run store already holds in the producers'
 * rows, so it keeps the binding instead of a second copy. A 10 KB output read by 1,000 consumers
 * cost 10 MB of node rows; now it costs 1,000 bindings.
 *
 * The engine records the binding when it resolves a node's inputs (`start` in decide.ts), on the
 * resolved value object itself (input-sources.ts), so nothing else about the value changes. A SQL
 * run store writes such an input as `{ binding }` (no `value` field, so it is never mistaken for a
 * stored NodeValue, whose `value` is always present), and `decodeStoredInputs` resolves it again on
 * load with the same `resolveBinding`, against the same producers' outputs (an output is never
 * rewritten once a node has it, and a node starts only once its upstream has) and the run's inputs
 * (fixed at create): the loaded input equals, field and hash for field and hash, the value that was
 * resolved. A binding with no output in it (literals, workflow inputs) is stored as its value. Rows
 * of earlier releases hold every input whole and load as they always did.
 */

/** An input as a run store writes it: the value, or the binding it is resolved from. */
export type StoredInput = NodeValue | { binding: Binding };

/** A node's inputs as a run store writes them: each input resolved from other nodes' outputs becomes its binding. */
export function encodeStoredInputs(inputs: NodeExecution['inputs']): { [name: string]: StoredInput } | null {
  if (inputs === null) return null;
  const stored: { [name: string]: StoredInput } = {};
  for (const [name, value] of Object.entries(inputs)) {
    const binding = inputBindingOf(value);
    stored[name] = binding !== undefined && readsOutputs(binding) ? { binding } : value;
  }
  return stored;
}

/**
 * Resolves the stored bindings of loaded node rows, in place, against the outputs in the same rows
 * (one run's) and the run's inputs. A binding that does not resolve means a damaged store (an
 * output the rows do not hold): a clear error naming run, node and input.
 */
export function decodeStoredInputs(run: RunRecord, nodes: { [nodeId: string]: NodeExecution }): void {
  const state = { run, nodes };
  for (const node of Object.values(nodes)) {
    const inputs = node.inputs as { [name: string]: StoredInput } | null;
    if (inputs === null) continue;
    for (const [name, stored] of Object.entries(inputs)) {
      if (!isStoredBinding(stored)) continue;
      let value: NodeValue;
      try {
        value = resolveBinding(stored.binding, state);
      } catch (error) {
        throw new MemoflowError('RUN_STORE_CORRUPT', `run '${run.id}': input '${name}' of node '${node.nodeId}' is stored as a reference to outputs the run store does not hold (${error instanceof Error ? error.message : String(error)})`, { workflow: run.workflow, node: node.nodeId, field: name, cause: error });
      }
      (node.inputs as { [name: string]: NodeValue })[name] = recordInputBinding(value, stored.binding);
    }
  }
}

function readsOutputs(binding: Binding): boolean {
  switch (binding.kind) {
    case 'output':
      return true;
    case 'literal':
    case 'input':
      return false;
    case 'array':
      return binding.items.some(readsOutputs);
    case 'object':
      return Object.values(binding.fields).some(readsOutputs);
  }
}

function isStoredBinding(stored: StoredInput): stored is { binding: Binding } {
  return typeof stored === 'object' && stored !== null && !('value' in stored) && 'binding' in stored;
}
