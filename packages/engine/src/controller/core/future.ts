import { MemoflowError, type ErrorLocation } from '../../errors.js';
import { hashJson } from '../../cache/canonical-hash.js';
import type { Json, NodeValue } from '../../json.js';
import { validateSpec } from '../../spec/validate-spec.js';
import { WORKFLOW_SPEC_VERSION, type WorkflowSpec } from '../../spec/workflow-spec.js';

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
    return validateSpec(expandFuture(value));
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

/**
 * The field of a stored future holding what its nodes share, per task name: kind, signature,
 * cache settings, retries, timeout (and a sub-workflow's spec). A fan-out's children all carry the
 * same ones; stored once, a child is its id, task and bindings (about 125 bytes instead of 450).
 */
const SHARED = 'sharedNodeFields';
/** A node stored in full, not merged with its task's shared fields (its fields differ in which exist). */
const OWN = 'ownFields';

/** A future as the catalog stores it: each task's shared node fields once (see SHARED). */
export function compactFuture(sub: WorkflowSpec): Json {
  const shared: { [task: string]: { [field: string]: Json } } = {};
  const sharedText = new Map<string, Map<string, string>>();
  const nodes = sub.nodes.map((node): Json => {
    const { id, task, inputs, ...rest } = node as unknown as { id: string; task: string; inputs: Json } & { [field: string]: Json };
    const base = shared[task];
    if (base === undefined) {
      shared[task] = rest;
      sharedText.set(task, new Map(Object.entries(rest).map(([field, value]) => [field, JSON.stringify(value)])));
      return { id, task, inputs };
    }
    const texts = sharedText.get(task) as Map<string, string>;
    const fields = Object.keys(rest);
    if (fields.length !== texts.size || fields.some((field) => !texts.has(field))) return { ...rest, id, task, inputs, [OWN]: true };
    const out: { [field: string]: Json } = { id, task, inputs };
    for (const field of fields) if (JSON.stringify(rest[field]) !== texts.get(field)) out[field] = rest[field] as Json;
    return out;
  });
  return { ...(sub as unknown as { [field: string]: Json }), nodes, [SHARED]: shared };
}

/** The inverse of compactFuture; a future stored before it (nodes in full) is returned as it is. */
function expandFuture(value: { [field: string]: Json }): WorkflowSpec {
  const shared = value[SHARED];
  if (shared === undefined) return value as unknown as WorkflowSpec;
  if (shared === null || typeof shared !== 'object' || Array.isArray(shared)) throw new TypeError(`${SHARED} is not an object`);
  const { [SHARED]: _, ...spec } = value;
  const nodes = (value['nodes'] as Json[]).map((node) => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) throw new TypeError('a node is not an object');
    const { [OWN]: own, ...fields } = node;
    if (own === true) return fields;
    const task = typeof fields['task'] === 'string' ? fields['task'] : JSON.stringify(fields['task']);
    const base = Object.hasOwn(shared, task) ? shared[task] : undefined;
    if (base === null || typeof base !== 'object' || Array.isArray(base)) throw new TypeError(`no shared fields for task ${task}`);
    return { ...base, ...fields };
  });
  return { ...spec, nodes } as unknown as WorkflowSpec;
}
