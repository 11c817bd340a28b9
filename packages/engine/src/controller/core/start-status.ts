import type { NodeSpec } from '../../spec/workflow-spec.js';
import type { SkipReason } from '../../state/cache-status.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { taintingUpstream } from './cascade.js';

/** Why a node starting now runs without a lookup. */
export interface Skip {
  reason: SkipReason;
  detail: string;
  /** For the cascade: the rerun node it comes from (what the early-cutoff report names). */
  upstream?: string;
}

/** What deciding a node's skip reads: the run as it stands and which container each child is in. */
export interface SkipContext {
  readonly state: RunState;
  readonly index: { readonly parentOf: ReadonlyMap<string, string>; readonly byId: ReadonlyMap<string, NodeSpec> };
}

/**
 * Why a node starting now runs without a lookup, or null if it is looked up (when cached): the
 * resume point and what is inside it, `overwriteCache`, the cascade (an upstream node that reran,
 * or a container fed by one). Decided by `start` in decide.ts, and by the planner for nodes it
 * cannot start (plan/pending-predictions.ts).
 */
export function skipReason(context: SkipContext, spec: NodeSpec): Skip | null {
  const resume = resumeReason(context, spec);
  if (resume !== null) return resume;
  if (context.state.run.options.overwriteCache) return { reason: 'overwrite', detail: 'overwrite-cache requested' };
  const culprit = taintingUpstream(spec, context.state);
  if (culprit !== null) return { reason: 'upstream-reran', detail: `upstream node '${culprit}' executed`, upstream: culprit };
  const container = containerOf(context, spec);
  if (container?.cacheStatus === 'SKIPPED' && container.cacheReason === 'upstream-reran') {
    const containerSpec = context.index.byId.get(container.nodeId);
    const origin = containerSpec === undefined ? null : cascadeOrigin(context, containerSpec);
    return { reason: 'upstream-reran', detail: `its container '${container.nodeId}' was fed by a rerun`, ...(origin === null ? {} : { upstream: origin }) };
  }
  return null;
}

/** The rerun node a cascade into `spec` comes from: what taints it, or what taints its container. */
function cascadeOrigin(context: SkipContext, spec: NodeSpec): string | null {
  const culprit = taintingUpstream(spec, context.state);
  if (culprit !== null) return culprit;
  const parent = context.index.parentOf.get(spec.id);
  const parentSpec = parent === undefined ? undefined : context.index.byId.get(parent);
  return parentSpec === undefined ? null : cascadeOrigin(context, parentSpec);
}

/**
 * The status of a node with caching off: DISABLED, but a container fed by a rerun still says so
 * (its children inherit the reason), and so does the resume point.
 */
export function uncachedStatus(spec: NodeSpec, skip: Skip | null): Pick<NodeExecution, 'cacheStatus' | 'cacheReason'> {
  return skip !== null && (skip.reason === 'resume' || (spec.kind !== 'task' && skip.reason === 'upstream-reran')) ? { cacheStatus: 'SKIPPED', cacheReason: skip.reason } : { cacheStatus: 'DISABLED', cacheReason: null };
}

/** The resume point reruns without a lookup, and so does everything inside it (a container's children). */
function resumeReason(context: SkipContext, spec: NodeSpec): Skip | null {
  const point = context.state.run.options.reuse?.resumePoint;
  if (point === undefined) return null;
  if (spec.id === point) return { reason: 'resume', detail: `resuming run ${context.state.run.options.reuse?.fromRun ?? '?'} from here` };
  const container = containerOf(context, spec);
  if (container?.cacheStatus === 'SKIPPED' && container.cacheReason === 'resume') return { reason: 'resume', detail: `inside the resume point '${point}'` };
  return null;
}

function containerOf(context: SkipContext, spec: NodeSpec): NodeExecution | undefined {
  const parent = context.index.parentOf.get(spec.id);
  return parent === undefined ? undefined : context.state.nodes[parent];
}
