import { nodeDependencies, runNodes, type CacheStatus, type NodeExecution, type NodeKind, type NodePhase, type RunState } from '@memoflow/engine';
import { fillOf, isActive, shadeOf, type Shade } from './status-palette.js';

/** Containers with at most this many children are drawn open until the user closes them. */
export const OPEN_CONTAINER_LIMIT = 12;

/** A node's state as the page colours it: what the live stream sends when it changes. */
export interface NodeState {
  id: string;
  phase: NodePhase;
  cacheStatus: CacheStatus | null;
  cacheReason: string | null;
  shade: Shade;
  fill: string;
  active: boolean;
  attempts: number;
  durationMs: number | null;
}

export interface GraphNode extends NodeState {
  task: string;
  kind: NodeKind;
  /** The container this node is a child of (`<container>.<child>`), or null at the top level. */
  parent: string | null;
  /** Children recorded so far (a container expands once its body ran or its future was read). */
  childCount: number;
  expanded: boolean;
}

export interface GraphEdge {
  from: string;
  to: string;
}

/** The nodes and edges to draw, before layout: children of closed containers are left out. */
export interface VisibleGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Containers whose open/closed state differs from the default (what the page asked for). */
  toggled: string[];
}

export function nodeState(node: NodeExecution): NodeState {
  const shade = shadeOf(node.phase, node.cacheStatus);
  return {
    id: node.nodeId,
    phase: node.phase,
    cacheStatus: node.cacheStatus,
    cacheReason: node.cacheReason,
    shade,
    fill: fillOf(shade),
    active: isActive(node.phase),
    attempts: node.attempts,
    durationMs: node.startedAt !== null && node.finishedAt !== null ? node.finishedAt.getTime() - node.startedAt.getTime() : null,
  };
}

/**
 * The run's nodes with each container open or closed: open by default when it has at most
 * OPEN_CONTAINER_LIMIT children, flipped for the ids in `toggled`. Edges join visible nodes only;
 * a child reads only its siblings and its container's inputs, so closing a container hides edges
 * inside it and none that cross it.
 */
export function visibleGraph(state: RunState, toggled: ReadonlySet<string>): VisibleGraph {
  const { order, parentOf } = runNodes(state);
  const childCount = new Map<string, number>();
  for (const parent of parentOf.values()) childCount.set(parent, (childCount.get(parent) ?? 0) + 1);
  const expanded = (id: string): boolean => {
    const count = childCount.get(id) ?? 0;
    if (count === 0) return false;
    return (count <= OPEN_CONTAINER_LIMIT) !== toggled.has(id);
  };
  const visible = (id: string): boolean => {
    for (let parent = parentOf.get(id); parent !== undefined; parent = parentOf.get(parent)) if (!expanded(parent)) return false;
    return true;
  };
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  for (const spec of order) {
    if (!visible(spec.id)) continue;
    const execution = state.nodes[spec.id];
    if (execution === undefined) continue;
    nodes.push({ ...nodeState(execution), task: spec.task, kind: spec.kind, parent: parentOf.get(spec.id) ?? null, childCount: childCount.get(spec.id) ?? 0, expanded: expanded(spec.id) });
    for (const dependency of nodeDependencies(spec)) if (visible(dependency)) edges.push({ from: dependency, to: spec.id });
  }
  return { nodes, edges, toggled: [...toggled].filter((id) => childCount.has(id)).sort() };
}

/** A digest of which nodes exist: when it changes (a container expanded), the page asks for a new layout. */
export function structureOf(state: RunState): string {
  return Object.keys(state.nodes).length.toString() + ':' + Object.values(state.nodes).filter((node) => node.subWorkflow !== null).map((node) => node.nodeId).sort().join('\u0000');
}
