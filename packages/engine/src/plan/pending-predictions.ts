import { taintingUpstream } from '../controller/core/cascade.js';
import { runNodes } from '../controller/core/expand.js';
import type { RunIndex } from '../controller/core/run-index.js';
import { skipReason, uncachedStatus } from '../controller/core/start-status.js';
import type { NodeExecution, RunState } from '../state/run-state.js';
import { UNKNOWN_HASH_PREFIX, type SeenStatus } from './planner.js';

/** A status known for a node the scratch run could not start, and the upstream node that decides it. */
export interface PendingPrediction extends SeenStatus {
  culprit: string | null;
}

/**
 * Nodes the planned run never started, because they wait on a node whose outcome or output is not
 * known (an UNKNOWN node, a dynamic body that runs), whose status is known all the same: a task with
 * caching off (DISABLED), `overwriteCache` (SKIPPED overwrite), or an upstream node that certainly
 * runs feeds them data that is not content-hashed (SKIPPED upstream-reran, whatever the unknown
 * node does).
 *
 * Decided by the controller's own `skipReason` and `uncachedStatus` on a copy of the run in which
 * every node whose outcome is not known counts as served from the catalog: the one outcome under
 * which reading it taints nothing, so a cascade found there happens in every outcome. A task
 * predicted here runs: its output is a stand-in (hashed if its type is), as for the planner's
 * dispatched tasks. A container predicted here counts as unknown for what reads it (which of its
 * children's data reaches its output is not known before they are).
 */
export function predictPending(state: RunState, index: RunIndex, unknownKeys: ReadonlySet<string>): Map<string, PendingPrediction> {
  const predictions = new Map<string, PendingPrediction>();
  const lenient: RunState = { run: state.run, nodes: { ...state.nodes } };
  const servedLike = (node: NodeExecution): NodeExecution => ({ ...node, cacheStatus: 'HIT', subWorkflow: null });
  for (const spec of runNodes(state).order) {
    const node = state.nodes[spec.id];
    if (node === undefined) continue;
    const bodyRuns = spec.kind === 'dynamic' && node.phase === 'dispatched';
    if (unknownKeys.has(spec.id) || bodyRuns) {
      lenient.nodes[spec.id] = servedLike(node);
      continue;
    }
    if (node.phase !== 'pending') continue;
    const skip = skipReason({ state: lenient, index }, spec);
    const status = spec.cache === null || !spec.cache.enabled ? uncachedStatus(spec, skip) : skip === null ? null : { cacheStatus: 'SKIPPED' as const, cacheReason: skip.reason };
    // A container with caching off is SKIPPED once an upstream node reruns, and that may be the
    // unknown one: only its SKIPPED is certain here (a task with caching off is DISABLED either way).
    const uncertain = status?.cacheStatus === 'DISABLED' && spec.kind !== 'task';
    if (status === null || status.cacheStatus === null || uncertain) {
      lenient.nodes[spec.id] = servedLike(node);
      continue;
    }
    const culprit = skip?.reason === 'upstream-reran' ? taintingUpstream(spec, lenient) : null;
    predictions.set(spec.id, { status: status.cacheStatus, reason: status.cacheReason, culprit });
    lenient.nodes[spec.id] =
      spec.kind === 'task'
        ? { ...node, ...status, output: spec.signature.outputHashed ? { value: null, hash: `${UNKNOWN_HASH_PREFIX}${spec.id}` } : { value: null } }
        : servedLike(node);
  }
  return predictions;
}
