import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import stringWidth from 'string-width';
import { dagTreeRows, drawDagTree, type DagTreeNode } from './dag-tree.js';

const diamond: DagTreeNode[] = [
  { id: 'extract', parents: [], columns: ['POPULATED', 'key 3f2a9c1b0e', '12 ms', ''] },
  { id: 'clean', parents: ['extract'], columns: ['POPULATED', 'key 9d1e22a0b4', '8 ms', ''] },
  { id: 'load', parents: ['extract'], columns: ['HIT', 'key 4e4e4e4e4e', '0 ms', 'served from the cache'] },
  { id: 'total', parents: ['clean', 'load'], columns: ['POPULATED', 'key 71c0fe3a99', '2 ms', ''] },
];

describe('drawDagTree', () => {
  it('draws a diamond with box-drawing branches, aligned columns and the second parent named', () => {
    expect(drawDagTree(diamond, { width: 100 })).toEqual([
      'extract      POPULATED  key 3f2a9c1b0e  12 ms',
      '├─ clean     POPULATED  key 9d1e22a0b4  8 ms',
      '│  └─ total  POPULATED  key 71c0fe3a99  2 ms   ← also needs load',
      '└─ load      HIT        key 4e4e4e4e4e  0 ms   served from the cache',
    ]);
  });

  it("draws a container's children under it with their local names, before its dependents", () => {
    const lines = drawDagTree(
      [
        { id: 'fan', parents: [], columns: ['FUTURE_HIT'] },
        { id: 'total', parents: ['fan'], columns: ['POPULATED'] },
        { id: 'fan.item-0', parents: [], container: 'fan', columns: ['HIT'] },
        { id: 'fan.item-1', parents: [], container: 'fan', columns: ['HIT'] },
        { id: 'fan.sum', parents: ['fan.item-0', 'fan.item-1'], container: 'fan', columns: ['MISS'] },
      ],
      { width: 80 },
    );
    expect(lines).toEqual([
      'fan         FUTURE_HIT',
      '├─ .item-0  HIT',
      '│  └─ .sum  MISS  ← also needs .item-1',
      '├─ .item-1  HIT',
      '└─ total    POPULATED',
    ]);
  });

  it('draws a header row over the columns', () => {
    const [header, first] = drawDagTree(diamond, { width: 100, headers: ['NODE', 'CACHE', 'KEY', 'DURATION', ''] });
    expect(header).toBe('NODE         CACHE      KEY             DURATION');
    expect(first).toBe('extract      POPULATED  key 3f2a9c1b0e  12 ms');
  });

  it('cuts 200-character and unicode ids in the middle so the columns stay aligned', () => {
    const long = 'x'.repeat(200);
    const wide = '数据清洗'.repeat(20);
    const lines = drawDagTree(
      [
        { id: 'a', parents: [], columns: ['HIT', 'key 1', 'one'] },
        { id: long, parents: ['a'], columns: ['MISS', 'key 2', 'two'] },
        { id: wide, parents: ['a'], columns: ['POPULATED', 'key 3', 'three'] },
        { id: 'emoji-🚀-ünïcödé', parents: [], columns: ['HIT', 'key 4', 'four'] },
      ],
      { width: 80 },
    );
    for (const line of lines) expect(stringWidth(line)).toBeLessThanOrEqual(80);
    // The status column starts at the same terminal column on every row.
    const statusAt = lines.map((line) => stringWidth(line.slice(0, line.search(/(HIT|MISS|POPULATED) /))));
    expect(new Set(statusAt).size).toBe(1);
    expect(lines[1]).toMatch(/^├─ x+…x+ +MISS +key 2 +two$/);
    expect(lines[2]).toContain('…');
    expect(lines[3]).toMatch(/^emoji-🚀-ünïcödé +HIT/);
  });

  it('drops the rightmost fixed columns on a narrow terminal before the tree gets unreadable', () => {
    const lines = drawDagTree(diamond, { width: 30 });
    expect(lines[0]).toBe('extract      POPULATED');
    for (const line of lines) expect(stringWidth(line)).toBeLessThanOrEqual(30);
  });

  it('folds deep indentation so a long chain keeps its columns', () => {
    const chain = Array.from({ length: 500 }, (_, i) => ({ id: `n${i}`, parents: i === 0 ? [] : [`n${i - 1}`], columns: ['HIT', `${i} ms`] }));
    const lines = drawDagTree(chain, { width: 60 });
    expect(lines).toHaveLength(500);
    expect(lines[499]).toMatch(/^… +└─ n499 +HIT +499 ms$/);
    for (const line of lines) expect(stringWidth(line)).toBeLessThanOrEqual(60);
  });

  it('draws input that is not a DAG (a cycle, unknown parents, a missing container) once per node', () => {
    const rows = dagTreeRows([
      { id: 'a', parents: ['c'] },
      { id: 'b', parents: ['a', 'ghost'] },
      { id: 'c', parents: ['b'] },
      { id: 'd', parents: ['d'], container: 'nowhere' },
      { id: 'a', parents: [] },
    ]);
    expect(rows.map((row) => row.nodeId).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('shows control characters in ids and notes as spaces, so a row stays one line', () => {
    const [line] = drawDagTree([{ id: 'a\nb', parents: [], columns: ['HIT', 'x\ty'] }]);
    expect(line).toBe('a b  HIT  x y');
  });

  it('draws nothing for no nodes', () => {
    expect(drawDagTree([])).toEqual([]);
  });
});

/** A random DAG: each node's parents come before it, some nodes are containers of later ones. */
const randomDag = fc
  .record({
    size: fc.integer({ min: 1, max: 300 }),
    seed: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat(4)), { minLength: 300, maxLength: 300 }),
    width: fc.integer({ min: 8, max: 200 }),
    idStyle: fc.constantFrom('short', 'long', 'unicode'),
  })
  .map(({ size, seed, width, idStyle }) => {
    const nodes: DagTreeNode[] = [];
    for (let i = 0; i < size; i++) {
      const [a, b, c, parentCount] = seed[i] ?? [0, 0, 0, 0];
      const containerOf = i > 0 && c % 4 === 0 ? nodes[c % i] : undefined;
      const local = idStyle === 'short' ? `n${i}` : idStyle === 'long' ? `${'node'.repeat(1 + (a % 60))}-${i}` : `节点-${i}-🚀`;
      const id = containerOf === undefined ? local : `${containerOf.id}.${local}`;
      // Parents among earlier nodes of the same container, as the engine's specs have them.
      const peers = nodes.filter((node) => (node.container ?? null) === (containerOf?.id ?? null));
      const parents = peers.length === 0 ? [] : Array.from({ length: parentCount }, (_, k) => (peers[(a + b * k) % peers.length] as DagTreeNode).id);
      nodes.push({ id, parents, container: containerOf?.id ?? null, columns: ['POPULATED', `key ${(b % 1e10).toString(16)}`, `${c % 100000} ms`, 'x'.repeat(a % 50)] });
    }
    return { nodes, width };
  });

describe('drawDagTree over random DAGs', () => {
  it('draws every node exactly once, every line within the width, children inside their container', () => {
    fc.assert(
      fc.property(randomDag, ({ nodes, width }) => {
        const rows = dagTreeRows(nodes, { width });
        expect(rows.map((row) => row.nodeId).sort()).toEqual(nodes.map((node) => node.id).sort());
        for (const row of rows) expect(stringWidth(row.text)).toBeLessThanOrEqual(width);
        const at = new Map(rows.map((row, i) => [row.nodeId, i]));
        for (const node of nodes) {
          if (node.container == null) continue;
          const start = at.get(node.container) as number;
          const end = subtreeEnd(rows, start);
          const index = at.get(node.id) as number;
          expect(index).toBeGreaterThan(start);
          expect(index).toBeLessThan(end);
        }
      }),
      { numRuns: 60 },
    );
  });
});

/** The row after the last one of the subtree that starts at `start`. */
function subtreeEnd(rows: readonly { depth: number }[], start: number): number {
  const depth = rows[start]?.depth ?? 0;
  let end = start + 1;
  while (end < rows.length && (rows[end]?.depth ?? 0) > depth) end++;
  return end;
}
