import { Graph, alg } from '@dagrejs/graphlib';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { topologicalOrder } from './topological-order.js';

/** What validateSpec used before: graphlib's order (stored specs and sub-workflow keys were made with it). */
function graphlibOrder(ids: readonly string[], deps: ReadonlyMap<string, readonly string[]>): string[] | 'cycle' {
  const graph = new Graph({ directed: true });
  for (const id of ids) graph.setNode(id);
  for (const id of ids) for (const dep of deps.get(id) ?? []) graph.setEdge(dep, id);
  return alg.isAcyclic(graph) ? alg.topsort(graph) : 'cycle';
}

/** Distinct ids, some integer-like (objects order those first), with edges drawn between them, duplicates included. */
const graphs = (acyclic: boolean, { maxIds = 30, maxEdges = 60 } = {}) =>
  fc
    .uniqueArray(fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,5}$/), fc.nat({ max: 50 }).map(String)), { minLength: 1, maxLength: maxIds })
    .chain((ids) =>
      fc.tuple(
        fc.constant(ids),
        fc.array(fc.tuple(fc.nat({ max: ids.length - 1 }), fc.nat({ max: ids.length - 1 })), { maxLength: maxEdges }),
      ),
    )
    .map(([ids, pairs]) => {
      const deps = new Map<string, string[]>(ids.map((id) => [id, []]));
      for (const [a, b] of pairs) {
        if (a === b && acyclic) continue;
        // Acyclic: an edge only from an earlier id to a later one (in the ids' own order).
        const [from, to] = acyclic ? [Math.min(a, b), Math.max(a, b)] : [a, b];
        deps.get(ids[to] as string)?.push(ids[from] as string);
      }
      return { ids, deps };
    });

describe('topologicalOrder', () => {
  test('gives exactly graphlib’s topsort order on any DAG (property)', () => {
    fc.assert(
      fc.property(graphs(true), ({ ids, deps }) => {
        const sorted = topologicalOrder(ids, (id) => deps.get(id) ?? []);
        expect(sorted).toEqual({ ok: true, order: graphlibOrder(ids, deps) });
      }),
      { numRuns: 500 },
    );
  });

  test('gives graphlib’s order on dense DAGs too: nodes with dozens of dependencies, duplicates among them (property)', () => {
    fc.assert(
      fc.property(graphs(true, { maxIds: 40, maxEdges: 600 }), ({ ids, deps }) => {
        expect(topologicalOrder(ids, (id) => deps.get(id) ?? [])).toEqual({ ok: true, order: graphlibOrder(ids, deps) });
      }),
      { numRuns: 200 },
    );
  });

  test('a fan-in of 100,000 dependencies, each given twice, sorts in linear time', () => {
    const ids = [...Array.from({ length: 100_000 }, (_, i) => `n${i}`), 'all'];
    const upstream = ids.slice(0, -1);
    const sorted = topologicalOrder(ids, (id) => (id === 'all' ? [...upstream, ...upstream] : []));
    expect(sorted.ok && sorted.order.length).toBe(100_001);
    expect(sorted.ok && sorted.order.at(-1)).toBe('all');
  });

  test('finds a cycle exactly when graphlib does (property)', () => {
    fc.assert(
      fc.property(graphs(false), ({ ids, deps }) => {
        const sorted = topologicalOrder(ids, (id) => deps.get(id) ?? []);
        const expected = graphlibOrder(ids, deps);
        if (expected === 'cycle') {
          expect(sorted.ok).toBe(false);
          if (!sorted.ok) expect(sorted.cycle.length).toBeGreaterThan(0);
        } else expect(sorted).toEqual({ ok: true, order: expected });
      }),
      { numRuns: 500 },
    );
  });

  test('sorts a chain of 100,000 nodes (graphlib’s recursive walk overflowed the stack between 2,000 and 5,000)', () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `n${i}`);
    const sorted = topologicalOrder(ids, (id) => (id === 'n0' ? [] : [`n${Number(id.slice(1)) - 1}`]));
    expect(sorted.ok && sorted.order.length).toBe(100_000);
    expect(sorted.ok && sorted.order.slice(0, 2)).toEqual(['n0', 'n1']);
  });

  test('ids that are Object.prototype keys are nodes like any other', () => {
    const sorted = topologicalOrder(['constructor', 'toString', '__proto__'], (id) => (id === 'toString' ? ['constructor', '__proto__'] : []));
    expect(sorted).toEqual({ ok: true, order: ['constructor', '__proto__', 'toString'] });
  });
});
