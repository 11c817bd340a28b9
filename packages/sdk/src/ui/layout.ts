import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk.bundled.js';
import { layoutInThread } from './layout-thread.js';
import type { GraphNode, VisibleGraph } from './graph.js';

/** A node's box, in page coordinates (top-left corner), with its state. */
export interface PlacedNode extends GraphNode {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge {
  from: string;
  to: string;
  /** The polyline from the source's side to the target's, bends included. */
  points: { x: number; y: number }[];
}

export interface Layout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

const NODE_HEIGHT = 58;
/** Room for a node id of this many characters; longer ids are cut with an ellipsis on the page (the full id in its tooltip and panel). */
export const LABEL_CHARS = 34;
const CHAR_WIDTH = 7.4;
const CONTAINER_HEADER = 64;
/** Room for the status line (`SKIPPED(upstream-reran)` and the phase). */
const STATUS_CHARS = 24;
/**
 * ELK's model-order strategy (siblings kept in the order the workflow made them) grows steeply with
 * the graph: measured on a fan-out/fan-in, 0.5 s at 150 nodes, 9 s at 500, over the thread's
 * 2-minute limit at 2,000, blocking every other page's layout meanwhile (one thread). Above this
 * many boxes it is left out (2,000 nodes then take about 4 s); above LARGE_GRAPH_NODES the simple
 * node placement is used too (10,000 nodes in about 6 s).
 */
const MODEL_ORDER_NODES = 200;
const LARGE_GRAPH_NODES = 1000;


/**
 * Recent layouts by their input (ids, sizes, nesting, edges; no statuses): a page re-asks for the
 * same picture as it reloads, and a live run changes colours far more often than structure.
 */
const recent = new Map<string, Promise<ElkNode>>();
const RECENT_LAYOUTS = 32;

function cachedLayout(root: ElkNode): Promise<ElkNode> {
  const key = JSON.stringify(root);
  let laid = recent.get(key);
  if (laid === undefined) {
    laid = layoutInThread(root);
    laid.catch(() => recent.delete(key));
    if (recent.size >= RECENT_LAYOUTS) recent.delete(recent.keys().next().value as string);
  } else {
    recent.delete(key); // re-inserted below: most recently used last
  }
  recent.set(key, laid);
  return laid;
}

/** A box wide enough for the node's id and task, within bounds, so one long id does not stretch a layer. */
export function boxWidth(node: Pick<GraphNode, 'id' | 'task'>): number {
  const chars = Math.min(LABEL_CHARS, Math.max(node.id.length, node.task.length, STATUS_CHARS));
  return Math.round(chars * CHAR_WIDTH + 24);
}

/**
 * Lays the graph out with ELK's layered (Sugiyama) algorithm, left to right, open containers as
 * boxes around their children (edges may cross container borders: hierarchy handling on). Done on
 * the server so the page needs no layout code and no bundler.
 */
export async function layOut(graph: VisibleGraph): Promise<Layout> {
  const elkNodes = new Map<string, ElkNode>();
  const roots: ElkNode[] = [];
  for (const node of graph.nodes) {
    const elkNode: ElkNode = node.expanded
      ? { id: node.id, children: [], layoutOptions: { 'elk.padding': `[top=${CONTAINER_HEADER},left=14,bottom=14,right=14]` } }
      : { id: node.id, width: boxWidth(node), height: NODE_HEIGHT };
    elkNodes.set(node.id, elkNode);
    const parent = node.parent === null ? undefined : elkNodes.get(node.parent);
    // Parents come before their children (run order), so a visible child's parent is placed already.
    (parent?.children ?? roots).push(elkNode);
  }
  // A container open with no visible children would be laid out as a dot: give it a body.
  for (const node of graph.nodes) {
    const elkNode = elkNodes.get(node.id);
    if (elkNode?.children !== undefined && elkNode.children.length === 0) {
      delete elkNode.children;
      elkNode.width = boxWidth(node);
      elkNode.height = NODE_HEIGHT;
    }
  }
  const edges: ElkExtendedEdge[] = graph.edges.map((edge, index) => ({ id: `e${index}`, sources: [edge.from], targets: [edge.to] }));
  const root: ElkNode = {
    id: '__root__',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '48',
      'elk.spacing.nodeNode': '18',
      'elk.edgeRouting': 'POLYLINE',
      // Siblings in the order the workflow made them (square, square-2, ...), where edges allow.
      'elk.layered.considerModelOrder.strategy': elkNodes.size <= MODEL_ORDER_NODES ? 'NODES_AND_EDGES' : 'NONE',
      ...(elkNodes.size > LARGE_GRAPH_NODES ? { 'elk.layered.nodePlacement.strategy': 'SIMPLE' } : {}),
      'elk.padding': '[top=16,left=16,bottom=16,right=16]',
    },
    children: roots,
    edges,
  };
  const laid = await cachedLayout(root);

  // ELK gives positions relative to the parent; the page wants them absolute.
  const origin = new Map<string, { x: number; y: number }>([['__root__', { x: 0, y: 0 }]]);
  const boxes = new Map<string, { x: number; y: number; width: number; height: number }>();
  const walk = (node: ElkNode, offset: { x: number; y: number }) => {
    for (const child of node.children ?? []) {
      const at = { x: offset.x + (child.x ?? 0), y: offset.y + (child.y ?? 0) };
      origin.set(child.id, at);
      boxes.set(child.id, { ...at, width: child.width ?? 0, height: child.height ?? 0 });
      walk(child, at);
    }
  };
  walk(laid, { x: 0, y: 0 });

  const nodes = graph.nodes.map((node): PlacedNode => {
    const box = boxes.get(node.id) ?? { x: 0, y: 0, width: boxWidth(node), height: NODE_HEIGHT };
    return { ...node, ...box };
  });
  const placedEdges = (laid.edges ?? []).map((edge, index): PlacedEdge => {
    const source = graph.edges[index];
    if (source === undefined) throw new Error(`ELK returned an edge the graph does not have (${edge.id})`);
    // Edge coordinates are relative to the edge's container (the nodes' lowest common ancestor).
    const at = origin.get((edge as { container?: string }).container ?? '__root__') ?? { x: 0, y: 0 };
    const points = (edge.sections ?? []).flatMap((section) => [section.startPoint, ...(section.bendPoints ?? []), section.endPoint]).map((point) => ({ x: at.x + point.x, y: at.y + point.y }));
    return { from: source.from, to: source.to, points };
  });
  return { width: laid.width ?? 0, height: laid.height ?? 0, nodes, edges: placedEdges };
}
