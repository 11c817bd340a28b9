import { measuredMs } from '../../cache/entry-duration.js';
import type { CacheEntryKind } from '../../ports/cache-catalog.js';
import type { AttemptResult } from '../../ports/task-dispatcher.js';
import type { RunState } from '../../state/run-state.js';
import { directChildren } from './expand.js';

/*
 * Saved compute (issue 11, item 3): every entry records the compute its execution took, so a HIT
 * on it can say what it saved. What counts:
 * - a task: its successful attempt's run time on the worker (not queueing, not failed attempts:
 *   a hit saves one good execution, and failed attempts are not repeated by one);
 * - a dynamic node's future: its compile attempt's run time;
 * - a container's output (dynamic, sub-workflow): what producing it from scratch costs, its own
 *   attempt (a dynamic's compile; a sub-workflow has none) plus each child's: a child that ran
 *   counts its run time, a child that hit counts what its entry recorded, a nested container
 *   counts the same sum. If any part is unknown (an entry of an earlier release, a RECOVERED
 *   child) the sum is unknown (null) rather than understated.
 */

/** The run time of a successful attempt, the node's own compute. */
export function attemptComputeMs(result: AttemptResult): number {
  return measuredMs(result.startedAt, result.finishedAt);
}

/** The duration an entry of the node records (see above); null: unknown. */
export function entryDurationMs(state: RunState, nodeId: string, kind: CacheEntryKind): number | null {
  const node = state.nodes[nodeId];
  if (node === undefined) return null;
  if (kind === 'future') return node.computeMs ?? null;
  return resultComputeMs(state, nodeId);
}

/** What the node's result cost to produce, in ms, counted as above; null: unknown. */
function resultComputeMs(state: RunState, nodeId: string): number | null {
  const node = state.nodes[nodeId];
  if (node === undefined) return null;
  if (node.cacheStatus === 'HIT') return node.savedMs ?? null;
  if (node.subWorkflow == null) return node.computeMs ?? null;
  // A container: its own part and its children's. A FUTURE_HIT compiled nothing (its future
  // recorded the compile); a container with no attempts (a sub-workflow) runs nothing of its own.
  let total = node.cacheStatus === 'FUTURE_HIT' ? (node.savedMs ?? null) : node.attempts === 0 ? 0 : (node.computeMs ?? null);
  for (const child of directChildren(nodeId, state)) {
    if (total === null) return null;
    const part = resultComputeMs(state, child);
    total = part === null ? null : total + part;
  }
  return total === null ? null : Math.min(total, Number.MAX_SAFE_INTEGER);
}
