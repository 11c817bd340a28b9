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
 * exceeded" from validateSpec). This walk keeps its own stack, over node indices and typed arrays
 * instead of graphlib's edge objects or a dictionary per node (100,000 nodes: 400 ms -> see the
 * test's timing note). graphlib still names a cycle.
 * Every dependency must be one of `ids` (validateSpec checks references first).
 */
export function topologicalOrder(ids: readonly string[], dependencies: (id: string) => Iterable<string>): TopologicalOrder {
  // Node order as graphlib has it: an object's key order (integer-like ids first, ascending).
  const known = dict<true>();
  for (const id of ids) known[id] = true;
  const names = Object.keys(known);
  const indexOf = new Map<string, number>();
  for (const [i, name] of names.entries()) indexOf.set(name, i);
  // Per node, its distinct dependencies as indices, in the order graphlib's `preds` gives them.
  const preds: number[][] = names.map(() => []);
  const outDegree = new Int32Array(names.length);
  let integerLike = false;
  for (const id of ids) {
    const mine = preds[indexOf.get(id) as number] as number[];
    // Duplicates are skipped: by a scan while a node has few dependencies, by a set past that (a
    // fan-in reading 100,000 outputs must not cost 100,000 squared).
    let seen: Set<number> | undefined;
    for (const dependency of dependencies(id)) {
      const at = indexOf.get(dependency);
      if (at === undefined) throw new Error(`topologicalOrder: '${id}' depends on '${dependency}', which is not one of the ids`);
      if (seen === undefined && mine.length >= 16) seen = new Set(mine);
      if (seen === undefined ? mine.includes(at) : seen.has(at)) continue;
      seen?.add(at);
      mine.push(at);
      outDegree[at] = (outDegree[at] as number) + 1;
      integerLike ||= isArrayIndex(dependency);
    }
  }
  if (integerLike) for (const mine of preds) keyOrder(mine, names);
  const visited = new Uint8Array(names.length);
  const onPath = new Uint8Array(names.length);
  const order: string[] = [];
  // The walk's own stack: a node, and how many of its dependencies it has gone through.
  const stackNode: number[] = [];
  const stackAt: number[] = [];
  const enter = (node: number): void => {
    onPath[node] = 1;
    visited[node] = 1;
    stackNode.push(node);
    stackAt.push(0);
  };
  for (let sink = 0; sink < names.length; sink++) {
    if (outDegree[sink] !== 0 || visited[sink] === 1) continue;
    enter(sink);
    while (stackNode.length > 0) {
      const top = stackNode.length - 1;
      const node = stackNode[top] as number;
      const next = preds[node] as number[];
      const at = stackAt[top] as number;
      if (at < next.length) {
        stackAt[top] = at + 1;
        const dependency = next[at] as number;
        if (onPath[dependency] === 1) return { ok: false, cycle: cycleOf(ids, dependencies) };
        if (visited[dependency] === 0) enter(dependency);
      } else {
        stackNode.pop();
        stackAt.pop();
        onPath[node] = 0;
        order.push(names[node] as string);
      }
    }
  }
  // A node no sink reaches sits on a cycle (or depends on one).
  if (order.length !== names.length) return { ok: false, cycle: cycleOf(ids, dependencies) };
  return { ok: true, order };
}

/** Whether an object orders `key` as an integer index (before every other key, ascending). */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(key) && Number(key) <= 4_294_967_294;
}

/** Reorders `nodes` (indices into `names`, first seen first) into the key order of an object holding them. */
function keyOrder(nodes: number[], names: readonly string[]): void {
  const integer = nodes.filter((n) => isArrayIndex(names[n] as string)).sort((a, b) => Number(names[a]) - Number(names[b]));
  if (integer.length === 0) return;
  const rest = nodes.filter((n) => !isArrayIndex(names[n] as string));
  // In place, one by one (a spread into splice passes every node as an argument: a stack overflow past ~120,000).
  let at = 0;
  for (const n of integer) nodes[at++] = n;
  for (const n of rest) nodes[at++] = n;
}

/** One cycle, as graphlib names it (for the error message only: the graph is built just for it). */
function cycleOf(ids: readonly string[], dependencies: (id: string) => Iterable<string>): string[] {
  const graph = new Graph({ directed: true });
  for (const id of ids) graph.setNode(id);
  for (const id of ids) for (const dependency of dependencies(id)) graph.setEdge(dependency, id);
  try {
    return alg.findCycles(graph)[0] ?? [];
  } catch (error) {
    // graphlib's Tarjan recurses once per node of the cycle: past ~2,000 it overflows the stack.
    if (!(error instanceof RangeError)) throw error;
    return cycleByWalk(ids, dependencies);
  }
}

/**
 * One cycle, found by an iterative depth-first walk (no recursion, any size): the walk's path from
 * the dependency met again on it to its top, each node followed by the one it depends on (as
 * graphlib lists a cycle).
 */
function cycleByWalk(ids: readonly string[], dependencies: (id: string) => Iterable<string>): string[] {
  const state = new Map<string, 'on-path' | 'done'>();
  for (const start of ids) {
    if (state.has(start)) continue;
    const path: string[] = [start];
    const pending: Iterator<string>[] = [dependencies(start)[Symbol.iterator]()];
    state.set(start, 'on-path');
    while (path.length > 0) {
      const next = (pending[pending.length - 1] as Iterator<string>).next();
      if (next.done === true) {
        state.set(path.pop() as string, 'done');
        pending.pop();
        continue;
      }
      const dependency = next.value;
      if (state.get(dependency) === 'on-path') return path.slice(path.indexOf(dependency));
      if (state.has(dependency)) continue;
      state.set(dependency, 'on-path');
      path.push(dependency);
      pending.push(dependencies(dependency)[Symbol.iterator]());
    }
  }
  return [];
}
