import { fitText, oneLine, padTo, textWidth } from '../log/fit-text.js';

/**
 * Draws a DAG as a tree in the terminal (what `memoflow run`'s live view, `runs show` and `plan`
 * print), in the style of `npm ls` or `turbo run --graph`'s text:
 *
 *   extract        POPULATED  key 3f2a9c1b0e  12 ms
 *   ├─ clean       POPULATED  key 9d1e22a0b4   8 ms
 *   │  └─ total    POPULATED  key 71c0fe3a99   2 ms  ← also needs load
 *   └─ fan         MISS       key 0be1c2d3e4  40 ms
 *      ├─ .item-0  HIT        key 5a5a5a5a5a   0 ms
 *      └─ .item-1  HIT        key 6b6b6b6b6b   0 ms
 *   load           HIT        key 4e4e4e4e4e   0 ms
 *
 * A node hangs under its first parent in topological order; its other parents are named after its
 * columns ("← also needs ..."), so every node is drawn exactly once however many parents it has.
 * A container's children (a dynamic node's or sub-workflow's, ids `<container>.<child>`) hang
 * under the container, drawn with their local names after a dot, before its dependents.
 * Every line fits `width` columns (measured as the terminal does: CJK and emoji are two wide):
 * long ids are cut in the middle with an ellipsis, deep indentation is folded, and on a narrow
 * terminal the rightmost fixed columns are dropped before the tree gets too thin to read.
 */
export interface DagTreeNode {
  id: string;
  /** The nodes this one depends on. Ids not in the drawing are ignored. */
  parents: readonly string[];
  /** The container (dynamic node or sub-workflow) this node is a child of, if any. */
  container?: string | null;
  /**
   * Label columns after the tree (e.g. status, key, duration, note). All but the last are aligned;
   * the last is free text that gets what width is left.
   */
  columns?: readonly string[];
}

export interface DagTreeOptions {
  /** The terminal's width; every line fits it. Default 120. */
  width?: number;
  /** Titles of the tree column and of each label column, drawn as a first row. */
  headers?: readonly string[];
}

export interface DagTreeRow {
  /** The node drawn on this row; null for the header row. */
  nodeId: string | null;
  /** Depth in the drawn tree (0 for roots). */
  depth: number;
  text: string;
}

/** Width of a gap between columns. */
const GAP = '  ';
/** An aligned label column is cut to this many columns, so one odd value cannot push the rest off. */
const MAX_CELL_WIDTH = 28;
/** The tree column is not squeezed below this while a fixed column can be dropped instead. */
const MIN_TREE_WIDTH = 16;
/**
 * The free column (notes, "also needs") keeps this share of the line (at least MIN_FREE_RESERVE
 * columns) when ids are long; the tree comes first, a note can be read cut.
 */
const FREE_SHARE = 0.15;
const MIN_FREE_RESERVE = 12;
/** However long the ids, the tree column takes at most half the line (they are cut in the middle). */
const MAX_TREE_SHARE = 0.5;
/** A free column narrower than this is left out rather than shown as a stub. */
const MIN_FREE_WIDTH = 4;
/** Indentation takes at most this share of the tree column; deeper levels are folded into "…". */
const MAX_INDENT_SHARE = 0.6;
/** How many other parents the "also needs" mark names before it counts the rest. */
const NAMED_OTHER_PARENTS = 3;

export function drawDagTree(nodes: readonly DagTreeNode[], options: DagTreeOptions = {}): string[] {
  return dagTreeRows(nodes, options).map((row) => row.text);
}

export function dagTreeRows(nodes: readonly DagTreeNode[], options: DagTreeOptions = {}): DagTreeRow[] {
  const width = Math.max(1, Math.floor(options.width ?? 120));
  const forest = buildForest(nodes);
  const lines = flatten(forest);
  const columnCount = widest(nodes, (node) => node.columns?.length ?? 0, (options.headers?.length ?? 1) - 1);
  const fixedCount = Math.max(0, columnCount - 1);
  const headers = options.headers;
  const cell = (values: readonly string[] | undefined, i: number) => oneLine(values?.[i] ?? '');
  const headerCell = (i: number) => oneLine(headers?.[i + 1] ?? '');

  let fixedWidths = Array.from({ length: fixedCount }, (_, i) =>
    Math.min(MAX_CELL_WIDTH, widest(lines, (line) => textWidth(cell(line.node.columns, i)), headers === undefined ? 0 : textWidth(headerCell(i)))),
  );
  const naturalTree = widest(lines, (line) => line.prefixWidth + line.nameWidth, headers === undefined ? 0 : textWidth(oneLine(headers[0] ?? '')));
  const fixedTotal = () => fixedWidths.reduce((sum, w) => sum + w + GAP.length, 0);
  // Narrow terminal: drop fixed columns from the right (keeping the first, the status) before the tree gets unreadable.
  while (fixedWidths.length > 1 && width - fixedTotal() < Math.min(MIN_TREE_WIDTH, naturalTree)) fixedWidths = fixedWidths.slice(0, -1);
  // Long ids give way to the notes: the tree takes at most what leaves the free column a share of the line.
  const naturalFree = widest(lines, (line) => textWidth(freeText(line, columnCount)), 0);
  const freeReserve = Math.min(naturalFree + GAP.length, Math.max(MIN_FREE_RESERVE, Math.floor(width * FREE_SHARE)));
  const room = width - fixedTotal();
  const treeWidth = Math.max(1, Math.min(naturalTree, room, Math.max(MIN_TREE_WIDTH, room - freeReserve, 0), Math.max(MIN_TREE_WIDTH, Math.floor(width * MAX_TREE_SHARE))));
  const kept = fixedWidths.length;

  // Widths are added up, not measured again: measuring every composed row (box-drawing characters
  // are not ASCII) made ten thousand rows take seconds.
  const compose = (tree: Cell, fixed: readonly string[], free: string): string => {
    const treeCut = tree.width <= treeWidth ? tree : measured(fitText(tree.text, treeWidth, 'end'));
    let text = padTo(treeCut.text, treeWidth, treeCut.width);
    let used = Math.max(treeWidth, treeCut.width);
    fixed.slice(0, kept).forEach((value, i) => {
      const columnWidth = fixedWidths[i] ?? 0;
      const cut = measured(fitText(value, columnWidth, 'end'));
      text += GAP + padTo(cut.text, columnWidth, cut.width);
      used += GAP.length + Math.max(columnWidth, cut.width);
    });
    const left = width - used - GAP.length;
    // The free column is cut to what is left, or left out when only a sliver would show.
    if (free !== '' && left >= MIN_FREE_WIDTH) {
      const cut = measured(fitText(free, left, 'end'));
      text += GAP + cut.text;
      used += GAP.length + cut.width;
    }
    text = text.trimEnd();
    return used <= width ? text : fitText(text, width, 'end');
  };

  const rows: DagTreeRow[] = [];
  if (headers !== undefined) {
    const fixed = Array.from({ length: fixedCount }, (_, i) => headerCell(i));
    rows.push({ nodeId: null, depth: 0, text: compose(measured(oneLine(headers[0] ?? '')), fixed, columnCount > 0 ? headerCell(columnCount - 1) : '') });
  }
  for (const line of lines) {
    const columns = line.node.columns ?? [];
    const fixed = Array.from({ length: fixedCount }, (_, i) => cell(columns, i));
    rows.push({ nodeId: line.node.id, depth: line.depth, text: compose(treeCell(line, treeWidth), fixed, freeText(line, columnCount)) });
  }
  return rows;
}

/** The free column of a row: its last label column, then the "also needs" mark. */
function freeText(line: FlatLine, columnCount: number): string {
  const note = columnCount > 0 ? oneLine(line.node.columns?.[columnCount - 1] ?? '') : '';
  return [note, line.alsoNeeds].filter((part) => part !== '').join(GAP);
}

interface TreeNode {
  node: DagTreeNode;
  /** Contained children first, then dependents, each in topological order. */
  children: TreeNode[];
  contained: boolean;
  name: string;
  alsoNeeds: string;
}

interface Level {
  continues: boolean;
  up: Level | null;
}

interface FlatLine {
  node: DagTreeNode;
  depth: number;
  /**
   * The ancestor levels, nearest first: whether each one's branch continues below this row. A
   * linked list shared by siblings, so a chain of ten thousand nodes costs no quadratic copying.
   */
  levels: Level | null;
  last: boolean;
  name: string;
  nameWidth: number;
  alsoNeeds: string;
  prefixWidth: number;
}

/**
 * Places each node under one tree parent that comes before it in a topological order (its
 * container for a root of the container's sub-DAG, else its first parent in the same container),
 * so the tree has no cycles and each node is drawn once, even for input that is not a DAG.
 */
function buildForest(input: readonly DagTreeNode[]): TreeNode[] {
  const byId = new Map<string, DagTreeNode>();
  for (const node of input) if (!byId.has(node.id)) byId.set(node.id, node);
  const nodes = [...byId.values()];
  const order = topologicalOrder(nodes, byId);
  const rank = new Map(order.map((node, i) => [node.id, i]));
  const before = (a: string, b: string) => (rank.get(a) ?? Infinity) < (rank.get(b) ?? -Infinity);
  const scopeOf = (node: DagTreeNode): string | null => {
    const container = node.container ?? null;
    return container !== null && container !== node.id && byId.has(container) && before(container, node.id) ? container : null;
  };

  const treeNodes = new Map<string, TreeNode>();
  const roots: TreeNode[] = [];
  for (const node of order) {
    const scope = scopeOf(node);
    const knownParents = unique(node.parents).filter((parent) => parent !== node.id && byId.has(parent));
    const sameScope = knownParents.filter((parent) => before(parent, node.id) && scopeOf(byId.get(parent) as DagTreeNode) === scope);
    const treeParent = sameScope.sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0))[0] ?? null;
    const others = knownParents.filter((parent) => parent !== treeParent).sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0));
    const contained = treeParent === null && scope !== null;
    const tree: TreeNode = {
      node,
      children: [],
      contained,
      name: scope !== null && node.id.startsWith(`${scope}.`) && node.id.length > scope.length + 1 ? `.${node.id.slice(scope.length + 1)}` : node.id,
      alsoNeeds: alsoNeedsMark(others.map((parent) => displayName(byId.get(parent) as DagTreeNode, scope, scopeOf))),
    };
    treeNodes.set(node.id, tree);
    const host = treeParent ?? scope;
    const hostTree = host === null ? undefined : treeNodes.get(host);
    if (hostTree === undefined) roots.push(tree);
    else hostTree.children.push(tree);
  }
  // Contained children first: they are part of the container, its dependents come after it.
  for (const tree of treeNodes.values()) tree.children.sort((a, b) => Number(b.contained) - Number(a.contained));
  return roots;
}

/** Kahn's algorithm, ties in input order; what a cycle leaves is appended in input order. */
function topologicalOrder(nodes: readonly DagTreeNode[], byId: ReadonlyMap<string, DagTreeNode>): DagTreeNode[] {
  const dependents = new Map<string, string[]>();
  const waiting = new Map<string, number>();
  for (const node of nodes) {
    const before = unique([...node.parents, ...(node.container == null ? [] : [node.container])]).filter((id) => id !== node.id && byId.has(id));
    waiting.set(node.id, before.length);
    for (const id of before) {
      const list = dependents.get(id);
      if (list === undefined) dependents.set(id, [node.id]);
      else list.push(node.id);
    }
  }
  const order: DagTreeNode[] = [];
  const placed = new Set<string>();
  const queue = nodes.filter((node) => waiting.get(node.id) === 0).map((node) => node.id);
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head] as string;
    placed.add(id);
    order.push(byId.get(id) as DagTreeNode);
    for (const next of dependents.get(id) ?? []) {
      const left = (waiting.get(next) ?? 0) - 1;
      waiting.set(next, left);
      if (left === 0) queue.push(next);
    }
  }
  for (const node of nodes) if (!placed.has(node.id)) order.push(node);
  return order;
}

function flatten(roots: readonly TreeNode[]): FlatLine[] {
  const lines: FlatLine[] = [];
  // Iterative, so a chain of ten thousand nodes does not overflow the stack.
  const stack: { tree: TreeNode; depth: number; levels: Level | null; last: boolean }[] = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push({ tree: roots[i] as TreeNode, depth: 0, levels: null, last: true });
  while (stack.length > 0) {
    const { tree, depth, levels, last } = stack.pop() as (typeof stack)[number];
    const name = oneLine(tree.name);
    lines.push({ node: tree.node, depth, levels, last, name, nameWidth: textWidth(name), alsoNeeds: tree.alsoNeeds, prefixWidth: depth * 3 });
    const below = depth === 0 ? null : { continues: !last, up: levels };
    for (let i = tree.children.length - 1; i >= 0; i--) stack.push({ tree: tree.children[i] as TreeNode, depth: depth + 1, levels: below, last: i === tree.children.length - 1 });
  }
  return lines;
}

/** Text with its width in terminal columns. */
interface Cell {
  text: string;
  width: number;
}

function measured(text: string): Cell {
  return { text, width: textWidth(text) };
}

/** The tree cell: branches, then the name cut in the middle to what is left. */
function treeCell(line: FlatLine, treeWidth: number): Cell {
  let prefix = '';
  if (line.depth > 0) {
    const connector = line.last ? '└─ ' : '├─ ';
    const maxIndent = Math.max(3, Math.floor(treeWidth * MAX_INDENT_SHARE));
    const ancestors = line.depth - 1;
    // Too deep to indent in full: keep the nearest levels and fold the rest into one "…" level.
    const folded = (ancestors + 1) * 3 > maxIndent;
    const keep = folded ? Math.max(0, Math.floor(maxIndent / 3) - 2) : ancestors;
    const shown: string[] = [];
    for (let level = line.levels; level !== null && shown.length < keep; level = level.up) shown.push(level.continues ? '│  ' : '   ');
    prefix = `${folded ? '…  ' : ''}${shown.reverse().join('')}${connector}`;
    if (prefix.length > treeWidth) prefix = prefix.slice(prefix.length - treeWidth);
  }
  // The branches and "…" are one column each.
  const room = Math.max(0, treeWidth - prefix.length);
  const name = line.nameWidth <= room ? { text: line.name, width: line.nameWidth } : measured(fitText(line.name, room, 'middle'));
  return { text: `${prefix}${name.text}`, width: prefix.length + name.width };
}

function alsoNeedsMark(names: readonly string[]): string {
  if (names.length === 0) return '';
  const named = names.slice(0, NAMED_OTHER_PARENTS).map((name) => fitText(name, 32, 'middle'));
  return `← also needs ${named.join(', ')}${names.length > named.length ? ` and ${names.length - named.length} more` : ''}`;
}

function displayName(node: DagTreeNode, scope: string | null, scopeOf: (node: DagTreeNode) => string | null): string {
  return scope !== null && scopeOf(node) === scope && node.id.startsWith(`${scope}.`) ? `.${node.id.slice(scope.length + 1)}` : node.id;
}

/** The largest of `measure` over `items` (a loop: spreading ten thousand values into Math.max is fragile). */
function widest<T>(items: readonly T[], measure: (item: T) => number, least: number): number {
  let most = Math.max(0, least);
  for (const item of items) most = Math.max(most, measure(item));
  return most;
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}
