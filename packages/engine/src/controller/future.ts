import { MemoflowError, type ErrorLocation } from '../errors.js';
import type { Json } from '../json.js';
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
