import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { GraphEdge, GraphNode, VisibleGraph } from './graph.js';
import { boxWidth, LABEL_CHARS, layOut, type PlacedNode } from './layout.js';
import { fillOf } from './status-palette.js';

function graphNode(id: string, parent: string | null, childCount: number): GraphNode {
  return { id, task: `t.${id}`, kind: childCount > 0 ? 'dynamic' : 'task', parent, childCount, expanded: childCount > 0, phase: 'succeeded', cacheStatus: 'HIT', cacheReason: null, shade: 'HIT', fill: fillOf('HIT'), active: false, attempts: 0, durationMs: null };
}

/** A random DAG: top-level nodes, some of them open containers with a chain of children; edges point forward. */
const graphs: fc.Arbitrary<VisibleGraph> = fc
  .record({ top: fc.integer({ min: 1, max: 10 }), children: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 10, maxLength: 10 }), edges: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 20 }) })
  .map(({ top, children, edges }) => {
    const nodes: GraphNode[] = [];
    const links: GraphEdge[] = [];
    const tops: string[] = [];
    for (let i = 0; i < top; i++) {
      const id = `n${i}`;
      const count = children[i] ?? 0;
      nodes.push(graphNode(id, null, count));
      tops.push(id);
      for (let c = 0; c < count; c++) {
        nodes.push(graphNode(`${id}.c${c}`, id, 0));
        if (c > 0) links.push({ from: `${id}.c${c - 1}`, to: `${id}.c${c}` });
      }
    }
    const seen = new Set<string>();
    for (const [a, b] of edges) {
      const [from, to] = [tops[a % top], tops[b % top]] as [string, string];
      if (from >= to || seen.has(`${from}>${to}`)) continue;
      seen.add(`${from}>${to}`);
      links.push({ from, to });
    }
    return { nodes, edges: links, toggled: [] };
  });

const overlap = (a: PlacedNode, b: PlacedNode) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
const inside = (child: PlacedNode, parent: PlacedNode) => child.x >= parent.x && child.y >= parent.y && child.x + child.width <= parent.x + parent.width && child.y + child.height <= parent.y + parent.height;

describe('layOut (ELK)', () => {
  it('places every node, children inside their containers, no two siblings overlapping, every edge routed within the drawing', async () => {
    await fc.assert(
      fc.asyncProperty(graphs, async (graph) => {
        const layout = await layOut(graph);
        expect(layout.nodes.map((node) => node.id)).toEqual(graph.nodes.map((node) => node.id));
        const byId = new Map(layout.nodes.map((node) => [node.id, node]));
        for (const node of layout.nodes) {
          expect(node.width).toBeGreaterThan(0);
          expect(node.x + node.width).toBeLessThanOrEqual(layout.width);
          expect(node.y + node.height).toBeLessThanOrEqual(layout.height);
          if (node.parent !== null) expect(inside(node, byId.get(node.parent) as PlacedNode), node.id).toBe(true);
          for (const other of layout.nodes) if (other !== node && other.parent === node.parent) expect(overlap(node, other), `${node.id} ${other.id}`).toBe(false);
        }
        expect(layout.edges.map((edge) => [edge.from, edge.to])).toEqual(graph.edges.map((edge) => [edge.from, edge.to]));
        for (const edge of layout.edges) {
          expect(edge.points.length).toBeGreaterThanOrEqual(2);
          for (const point of edge.points) expect(point.x >= 0 && point.x <= layout.width && point.y >= 0 && point.y <= layout.height).toBe(true);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('keeps boxes of long ids bounded: one long id does not stretch its layer', () => {
    expect(boxWidth({ id: 'x'.repeat(500), task: 't' })).toBe(boxWidth({ id: 'x'.repeat(LABEL_CHARS), task: 't' }));
  });

  it("lays a wide graph out off the event loop: timers keep firing meanwhile, and the same picture again comes from the cache", async () => {
    const nodes = Array.from({ length: 150 }, (_, i) => graphNode(`wide-${i}`, null, 0));
    const edges = nodes.slice(1).map((node) => ({ from: 'wide-0', to: node.id }));
    let longestGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 10);
    try {
      const started = performance.now();
      const layout = await layOut({ nodes, edges, toggled: [] });
      const took = performance.now() - started;
      expect(layout.nodes).toHaveLength(150);
      // The layout takes far longer than any gap between ticks: it ran elsewhere.
      expect(longestGap).toBeLessThan(Math.max(250, took / 2));
      const again = performance.now();
      await layOut({ nodes: nodes.map((node) => ({ ...node, shade: 'POPULATED', fill: fillOf('POPULATED') })), edges, toggled: [] });
      expect(performance.now() - again).toBeLessThan(took / 2);
    } finally {
      clearInterval(ticker);
    }
  });
});
