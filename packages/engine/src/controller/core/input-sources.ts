import type { NodeValue } from '../../json.js';

/*
 * Which node's output a resolved input value is (see input-references.ts: the run store keeps a
 * reference instead of a second copy). Kept beside the value object in a WeakMap, so it never
 * changes the value, its cache key or what a task sees, and dies with the value.
 */

/** Where a resolved input value came from: a node's output, or a field path in it. */
export interface InputSource {
  node: string;
  path?: readonly string[];
}

const sources = new WeakMap<NodeValue, InputSource>();

/** Records that `value` is `atPath(<node's output>, path)` (called by resolveBinding). */
export function recordInputSource(value: NodeValue, source: InputSource): NodeValue {
  sources.set(value, source);
  return value;
}

/** The producer `value` was resolved from, if it was resolved from one. */
export function inputSourceOf(value: NodeValue): InputSource | undefined {
  return sources.get(value);
}

