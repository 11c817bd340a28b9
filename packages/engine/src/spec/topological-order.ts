import { Graph, alg } from '@dagrejs/graphlib';

/** Keyed like a plain object (integer-like keys first, ascending; then insertion order), with no inherited keys. */
type Dict<T> = Record<string, T>;
const dict = <T>(): Dict<T> => Object.create(null) as Dict<T>;

export type TopologicalOrder = { ok: true; order: string[] } | { ok: false; cycle: string[] };

/**
 * The nodes `ids` (each with the ids it depends on) in dependency order, or a cycle among them.
 *
 * The order is exactly @dagrejs/graphlib's `alg.topsort` on the graph built by `setNode` per id
 * and `setEdge(dependency, id)`: a depth-first postorder from the sinks (in id order), through
 * each node's distinct dependencies (first seen first), with objects' key order (integer-like ids
 * first) where graphlib has it. Stored specs list their nodes in that order, and a sub-workflow's
 * spec is part of its key, so the order must not change. But graphlib's walk recurses once per
 * node along a path: a chain of 5,000 nodes overflowed the stack ("Maximum call stack size
 * exceeded" from validateSpec). This walk keeps its own stack, and plain dictionaries instead of
 * graphlib's edge objects (a fifth of the time at 100,000 nodes). graphlib still names a cycle.
 * Every dependency must be one of `ids` (validateSpec checks references first).
 */
export function topologicalOrder(ids: readonly string[], dependencies: (id: string) => Iterable<string>): TopologicalOrder {
  const known = dict<true>();
  for (const id of ids) known[id] = true;
  const preds = dict<Dict<true>>();
  const outDegree = dict<number>();
  for (const id of Object.keys(known)) {
    preds[id] = dict<true>();
    outDegree[id] = 0;
  }
  for (const id of ids) {
    const mine = preds[id] as Dict<true>;
    for (const dependency of dependencies(id)) {
      if (!(dependency in known)) throw new Error(`topologicalOrder: '${id}' depends on '${dependency}', which is not one of the ids`);
      if (dependency in mine) continue;
      mine[dependency] = true;
      outDegree[dependency] = (outDegree[dependency] ?? 0) + 1;
    }
  }
  const visited = dict<true>();
  const onPath = dict<true>();
  const order: string[] = [];
  const stack: { id: string; next: string[]; at: number }[] = [];
  const enter = (id: string): void => {
    onPath[id] = true;
    visited[id] = true;
    stack.push({ id, next: Object.keys(preds[id] as Dict<true>), at: 0 });
  };
  for (const sink of Object.keys(known)) {
    if (outDegree[sink] !== 0 || sink in visited) continue;
    enter(sink);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { id: string; next: string[]; at: number };
      if (top.at < top.next.length) {
        const dependency = top.next[top.at++] as string;
        if (dependency in onPath) return { ok: false, cycle: cycleOf(ids, dependencies) };
        if (!(dependency in visited)) enter(dependency);
      } else {
        stack.pop();
        delete onPath[top.id];
        order.push(top.id);
      }
    }
  }
  // A node no sink reaches sits on a cycle (or depends on one).
  if (order.length !== Object.keys(known).length) return { ok: false, cycle: cycleOf(ids, dependencies) };
  return { ok: true, order };
}

/** One cycle, as graphlib names it (for the error message only: the graph is built just for it). */
function cycleOf(ids: readonly string[], dependencies: (id: string) => Iterable<string>): string[] {
  const graph = new Graph({ directed: true });
  for (const id of ids) graph.setNode(id);
  for (const id of ids) for (const dependency of dependencies(id)) graph.setEdge(dependency, id);
  return alg.findCycles(graph)[0] ?? [];
}
