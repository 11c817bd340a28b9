import { nodeDependencies, type NodeSpec } from '../../spec/workflow-spec.js';

const cache = new WeakMap<NodeSpec, string[]>();

/** A node's upstream ids, computed once per spec object (decide runs every round over every node). */
export function memoizedDependencies(node: NodeSpec): string[] {
  let deps = cache.get(node);
  if (deps === undefined) {
    deps = [...nodeDependencies(node)];
    cache.set(node, deps);
  }
  return deps;
}
