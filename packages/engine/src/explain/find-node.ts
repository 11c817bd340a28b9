import { distance } from 'fastest-levenshtein';
import { MemoflowError } from '../errors.js';
import type { NodeExecution, RunState } from '../state/run-state.js';

/** How many node ids a NODE_NOT_FOUND error suggests. */
const SUGGESTIONS = 5;

/**
 * The node `nodeId` of a run (a container's children are `<container>.<child>`), or a
 * NODE_NOT_FOUND error naming the run and node and suggesting the closest ids the run has (by edit
 * distance, then by name), so a typo or a child id written without its container is one glance away.
 */
export function findNode(state: RunState, nodeId: string): NodeExecution {
  const node = Object.hasOwn(state.nodes, nodeId) ? state.nodes[nodeId] : undefined;
  if (node !== undefined) return node;
  const ids = Object.keys(state.nodes);
  const close = closestIds(nodeId, ids);
  const hint = ids.length === 0 ? 'it has no nodes' : `${close.length < ids.length ? 'closest' : 'its'} nodes: ${close.join(', ')}`;
  throw new MemoflowError('NODE_NOT_FOUND', `run ${state.run.id} has no node '${printable(nodeId)}' (${hint})`, { workflow: state.run.workflow, node: printable(nodeId), field: 'node' });
}

/** The ids nearest to `wanted`: a child whose own id matches counts as near as an exact match of its tail. */
export function closestIds(wanted: string, ids: readonly string[], limit = SUGGESTIONS): string[] {
  const probe = wanted.slice(0, 200);
  const score = (id: string): number => {
    const tail = id.slice(id.lastIndexOf('.') + 1);
    return Math.min(distance(probe, id.slice(0, 200)), distance(probe, tail) + 1);
  };
  return ids
    .map((id) => ({ id, score: score(id) }))
    .sort((a, b) => a.score - b.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, limit)
    .map((entry) => entry.id);
}

/** An id as an error message may quote it: control characters escaped, at most 200 characters. */
function printable(id: string): string {
  const text = JSON.stringify(id.length > 200 ? `${id.slice(0, 200)}…` : id).slice(1, -1);
  return text;
}
