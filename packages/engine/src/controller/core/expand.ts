import { fieldOf, itemOf, withTree } from '../../cache/hash-tree.js';
import type { HashTree, Json, NodeValue } from '../../json.js';
import type { Binding, NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import type { RunState } from '../../state/run-state.js';

/** The output name a dynamic node's compiled sub-workflow binds its single result to. */
export const DYNAMIC_RESULT = 'result';

/** A child's id in the run: `<container>.<child>` (nested: `a.b.c`). */
export function childId(containerId: string, id: string): string {
  return `${containerId}.${id}`;
}

export interface RunNodes {
  /** Every node of the run in an order where each comes after everything it reads from. */
  order: NodeSpec[];
  byId: Map<string, NodeSpec>;
  /** Child id -> its container's id. */
  parentOf: Map<string, string>;
}

/**
 * The nodes of a run as `decide` walks them: the workflow's own, with each expanded container's
 * children (ids prefixed, bindings rewritten) right after the container, recursively.
 */
export function runNodes(state: RunState): RunNodes {
  const order: NodeSpec[] = [];
  const byId = new Map<string, NodeSpec>();
  const parentOf = new Map<string, string>();
  const visit = (node: NodeSpec, parent: string | undefined) => {
    order.push(node);
    byId.set(node.id, node);
    if (parent !== undefined) parentOf.set(node.id, parent);
    const execution = state.nodes[node.id];
    if (execution?.subWorkflow == null) return;
    for (const child of childNodes(node.id, execution.subWorkflow, execution.inputs ?? {})) visit(child, node.id);
  };
  for (const node of state.run.spec.nodes) visit(node, undefined);
  return { order, byId, parentOf };
}

const prefixed = new WeakMap<WorkflowSpec, Map<string, NodeSpec[]>>();

/**
 * A container's children as run nodes: ids prefixed, references to siblings prefixed, and
 * references to the sub-workflow's inputs replaced by the container's resolved input values: a
 * sub-workflow's inputs, and a dynamic future's references to the dynamic node's inputs, so a
 * replayed future feeds its children this run's values. (Futures written before they had inputs
 * hold literals only; they replay as they are.)
 *
 * An input the container left out (an optional one) stays out of a child input bound to it as a
 * whole, as a top-level optional input does (see `start` in decide.ts): the child's key does not
 * contain it and its task sees it unset. Inside an array or object, or through a path, it reads as
 * null (as in resolveBinding).
 */
export function childNodes(containerId: string, sub: WorkflowSpec, containerInputs: { readonly [name: string]: NodeValue }): NodeSpec[] {
  let byContainer = prefixed.get(sub);
  if (byContainer === undefined) {
    byContainer = new Map();
    prefixed.set(sub, byContainer);
  }
  let children = byContainer.get(containerId);
  if (children === undefined) {
    children = sub.nodes.map((node) => {
      const inputs: { [name: string]: Binding } = {};
      for (const [name, binding] of Object.entries(node.inputs)) {
        if (isWholeInput(binding) && !Object.hasOwn(containerInputs, binding.name)) continue;
        inputs[name] = rebind(binding, containerId, containerInputs);
      }
      return { ...node, id: childId(containerId, node.id), inputs };
    });
    byContainer.set(containerId, children);
  }
  return children;
}

/** The binding of a container's output in run terms. */
export function containerOutputBinding(container: NodeSpec, sub: WorkflowSpec, containerInputs: { readonly [name: string]: NodeValue }): Binding {
  if (container.kind === 'dynamic') {
    const result = sub.outputs[DYNAMIC_RESULT];
    return result === undefined ? { kind: 'literal', value: null } : rebind(result, container.id, containerInputs);
  }
  const fields: { [name: string]: Binding } = {};
  for (const [name, binding] of Object.entries(sub.outputs)) fields[name] = rebind(binding, container.id, containerInputs);
  return { kind: 'object', fields };
}

function isWholeInput(binding: Binding): binding is Extract<Binding, { kind: 'input' }> {
  return binding.kind === 'input' && (binding.path === undefined || binding.path.length === 0);
}

export function rebind(binding: Binding, containerId: string, inputs: { readonly [name: string]: NodeValue }): Binding {
  switch (binding.kind) {
    case 'literal':
      return binding;
    case 'input': {
      const value = Object.hasOwn(inputs, binding.name) ? inputs[binding.name] : undefined;
      const resolved: NodeValue = value === undefined ? { value: null } : containerInputAt(value, binding.path);
      // Keep what is hashed in the value (a whole hash, or hashed members of a fan-in): a child is
      // keyed by those hashes exactly as it would be at the top level, never by raw values.
      const literal: Binding = { kind: 'literal', value: resolved.value };
      if (resolved.hash !== undefined) literal.hash = resolved.hash;
      if (resolved.members !== undefined) literal.members = resolved.members;
      return literal;
    }
    case 'output':
      return { ...binding, node: childId(containerId, binding.node) };
    case 'array':
      return { kind: 'array', items: binding.items.map((item) => rebind(item, containerId, inputs)) };
    case 'object':
      return { kind: 'object', fields: Object.fromEntries(Object.entries(binding.fields).map(([name, field]) => [name, rebind(field, containerId, inputs)])) };
  }
}

/**
 * A container input's value at `path`, with what is hashed there: a whole input keeps its `hashWith`
 * hash; a hashed member of a composite input keeps its own; a step inside a hashed value leaves the
 * hash (the part is not what was hashed). A future's paths also index arrays (`['rows', '3']`, what
 * a dynamic body passed as `rows[3]`); a segment that does not exist reads as null. Own properties
 * only: a path never reaches `constructor` or `__proto__` of a value.
 */
export function containerInputAt(value: NodeValue, path: readonly string[] | undefined): NodeValue {
  if (path === undefined || path.length === 0) return value;
  let current: Json = value.value;
  let tree: HashTree | undefined = value.members;
  for (const segment of path) {
    if (Array.isArray(current)) {
      const index = /^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : -1;
      ({ value: current, tree } = itemOf(current, tree, index));
    } else {
      ({ value: current, tree } = fieldOf(current, tree, segment));
    }
  }
  return withTree(current, tree);
}

/** The ids of a container's direct children. */
export function directChildren(containerId: string, state: RunState): string[] {
  const sub = state.nodes[containerId]?.subWorkflow;
  return sub == null ? [] : sub.nodes.map((node) => childId(containerId, node.id));
}
