import type { NodeValue } from '../../json.js';
import type { Binding } from '../../spec/workflow-spec.js';

/*
 * Which binding a node's input value was resolved from (see input-references.ts: the run store
 * keeps the binding instead of a second copy of values other nodes produced). Kept beside the
 * value object in a WeakMap, so it never changes the value, its cache key or what a task sees, and
 * dies with the value.
 */

const bindings = new WeakMap<NodeValue, Binding>();

/** Records that `value` is `resolveBinding(binding, <the run's state>)`; returns the value. */
export function recordInputBinding(value: NodeValue, binding: Binding): NodeValue {
  bindings.set(value, binding);
  return value;
}

/** The binding `value` was resolved from, if a node's input was resolved from one. */
export function inputBindingOf(value: NodeValue): Binding | undefined {
  return bindings.get(value);
}
