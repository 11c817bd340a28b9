import { MemoflowError } from '../errors.js';

/**
 * A node execution's phase.
 *
 *   pending ──ready, cacheable──▶ looking-up ──hit──────────────────────────▶ succeeded
 *      │                             │ miss / lookup failure                    ▲
 *      │ ready, no lookup            ▼                                          │ written / put failed
 *      └─────────────────────────▶ dispatched ──ok, cacheable──▶ writing ───────┘
 *      │                           │   ▲  │ ok, not cacheable ─────────────────▶ succeeded
 *      │                           │   └──┘ failed, retries left (next attempt)
 *      │                           └──failed, no retries left──▶ failed
 *      ├──an upstream node failed──▶ aborted
 *      └──reused from an earlier run (RECOVERED, see core/reuse.ts)──▶ succeeded
 *
 * Any node not finished when its run is cancelled (pending, looking-up, dispatched, expanded)
 * becomes `cancelled`: terminal, never cached, rerun by a retry. It is its own phase, not `aborted`
 * with a reason: `aborted` says an upstream failed, `cancelled` that a user stopped the node
 * (possibly mid-attempt), and logs, `run.nodes()` and retry tell them apart by phase alone. A
 * `writing` node is finished (its output is known, downstream may have read it): it ends `succeeded`.
 *
 * Container nodes (dynamic, sub-workflow) also pass through `expanded`: their children run, and
 * when they are all done the container resolves its output (then `writing` or `succeeded`, or
 * `failed` if a child failed). A dynamic node gets there from `dispatched` (its body compiled the
 * sub-workflow) or from `looking-up` (FUTURE_HIT); a sub-workflow from `pending` or `looking-up`.
 *
 * `writing` already has its output: downstream nodes may start while the entry is written.
 */
export type NodePhase = 'pending' | 'looking-up' | 'dispatched' | 'expanded' | 'writing' | 'succeeded' | 'failed' | 'aborted' | 'cancelled';

export const NODE_PHASES: readonly NodePhase[] = ['pending', 'looking-up', 'dispatched', 'expanded', 'writing', 'succeeded', 'failed', 'aborted', 'cancelled'];

const TRANSITIONS: { readonly [from in NodePhase]: readonly NodePhase[] } = {
  pending: ['looking-up', 'dispatched', 'expanded', 'aborted', 'succeeded', 'cancelled'],
  'looking-up': ['succeeded', 'dispatched', 'expanded', 'cancelled'],
  dispatched: ['dispatched', 'expanded', 'writing', 'succeeded', 'failed', 'cancelled'],
  expanded: ['writing', 'succeeded', 'failed', 'cancelled'],
  writing: ['succeeded'],
  succeeded: [],
  failed: [],
  aborted: [],
  cancelled: [],
};

export function isTerminal(phase: NodePhase): boolean {
  return phase === 'succeeded' || phase === 'failed' || phase === 'aborted' || phase === 'cancelled';
}

/**
 * An attempt of the node may still be dispatched: it has no output and has not expanded. (What an
 * attempt sent beside a save that never landed, or its early result, can belong to.)
 */
export function mayDispatchAttempt(phase: NodePhase): boolean {
  return phase === 'pending' || phase === 'looking-up' || phase === 'dispatched';
}

/** The node's output is known (downstream nodes may read it). */
export function hasOutput(phase: NodePhase): boolean {
  return phase === 'writing' || phase === 'succeeded';
}

/** The one place a phase changes; an illegal move is a bug in the decision logic, not user error. */
export function transition(nodeId: string, from: NodePhase, to: NodePhase): NodePhase {
  if (!TRANSITIONS[from].includes(to)) {
    throw new MemoflowError('ILLEGAL_TRANSITION', `illegal phase change ${from} -> ${to}`, { node: nodeId });
  }
  return to;
}
