import { MemoflowError, type ErrorLocation } from '../errors.js';
import { hashJson } from '../cache/canonical-hash.js';
import type { Json, NodeValue } from '../json.js';
import { validateSpec } from '../spec/validate-spec.js';
import { WORKFLOW_SPEC_VERSION, type WorkflowSpec } from '../spec/workflow-spec.js';

/**
 * Reads a dynamic node's compiled sub-workflow (what its body returned, or its future read back
 * from the catalog) and validates it like any workflow: cycles, references, bindings, types.
 *
 * With `where` (a body just returned it): an invalid sub-workflow is an Error naming the workflow
 * and the dynamic node, which fails the node. Without (read from the catalog): an unreadable future
 * is `null`, a miss, never a crash.
 */
export function parseFuture(value: Json, where?: ErrorLocation): WorkflowSpec | MemoflowError | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value['specVersion'] !== WORKFLOW_SPEC_VERSION || !Array.isArray(value['nodes'])) {
    return where === undefined ? null : new MemoflowError('INVALID_SPEC', 'the dynamic body did not produce a sub-workflow', where);
  }
  try {
    return validateSpec(value as unknown as WorkflowSpec);
  } catch (error) {
    if (where === undefined) return null;
    const message = error instanceof Error ? error.message : String(error);
    return new MemoflowError('INVALID_SPEC', `its sub-workflow is invalid: ${message}`, { ...where, cause: error });
  }
}

/**
 * Why a future read back from the catalog must not be replayed for a dynamic node with these
 * input values, or null if it may. A future binds the dynamic's inputs by reference where its body
 * passed them on as objects or arrays, so those always resolve to this run's values; a primitive
 * cannot be followed that way, so the body's trace pins each input whose primitives may appear in
 * the future's literals (see `pinnedInputs`). Equal keys imply equal values for the inputs the key
 * sees, so a pin can only differ for an ignored or `hashWith` input; then the body runs again rather
 * than feed children a value from the run that compiled it.
 */
export function staleFutureReason(sub: WorkflowSpec, inputs: { readonly [name: string]: NodeValue }): string | null {
  for (const [name, pinned] of Object.entries(sub.pinnedInputs ?? {})) {
    const current = Object.hasOwn(inputs, name) ? inputs[name] : undefined;
    const digest = current === undefined ? null : hashJson(current.value);
    if (digest !== pinned) {
      return `the compiled sub-workflow may hold input '${name}' as it was in the run that compiled it, and this run's value differs: the body runs again`;
    }
  }
  return null;
}
