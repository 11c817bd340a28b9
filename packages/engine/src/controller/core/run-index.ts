import type { NodeSpec } from '../../spec/workflow-spec.js';
import { hasOutput, isTerminal, type NodePhase } from '../../state/node-phase.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { memoizedDependencies } from './dependencies.js';
import { childId, childNodes } from './expand.js';

/**
 * Derived state of one run that lets a round cost O(what changed) instead of O(nodes): which nodes
 * read from which, how many of each pending node's upstream nodes are still unsettled, how many of
 * each container's children are still running, how many nodes are not terminal, which failed cache
 * writes are scheduled, and the nodes a round must look at (`candidates`).
 *
 * It holds nothing the run state does not determine: `RunIndex.build(state)` derives it from
 * scratch (on load, O(nodes)); `observe` keeps it current as a decision changes nodes, and
 * `addChildren` as a container expands. Tests and the controller simulation check that the kept
 * index equals a fresh build after every decision (`snapshot`).
 *
 * "Settled for downstream" (`settles`) is a node with an output (`writing`, `succeeded`) or one that
 * will never have one (`failed`, `aborted`): either way a pending reader can now be decided, started
 * or aborted.
 */
export class RunIndex {
  /** Every node of the run (a container's children once it expanded), by id. */
  readonly byId = new Map<string, NodeSpec>();
  /** Child id -> its container's id. */
  readonly parentOf = new Map<string, string>();
  /** Pending nodes and expanded containers a round should look at: they may be able to move. */
  readonly candidates = new Set<string>();
  /** Nodes in `writing` whose failed cache write has a retry scheduled (`retryAtMs` set). */
  readonly scheduledWrites = new Set<string>();
  /** Nodes not yet terminal. */
  nonTerminal = 0;
  /** Upstream id -> the ids of the nodes that read from it. */
  private readonly dependents = new Map<string, string[]>();
  /** Pending node -> its upstream nodes not settled yet. */
  private readonly unsettledUpstream = new Map<string, number>();
  /** Expanded container -> its children not terminal yet. */
  private readonly runningChildren = new Map<string, number>();
  /** Node -> its place in run order (upstream first, a container's children right after it), for a deterministic visit order. */
  private readonly rank = new Map<string, readonly number[]>();

  private constructor() {}

  /** The index of `state`, derived from scratch. */
  static build(state: RunState): RunIndex {
    const index = new RunIndex();
    const visit = (specs: readonly NodeSpec[], parent: string | undefined, parentRank: readonly number[]): void => {
      specs.forEach((spec, i) => {
        index.register(spec, parent, [...parentRank, i]);
        const execution = state.nodes[spec.id];
        if (execution?.subWorkflow != null) visit(childNodes(spec.id, execution.subWorkflow, execution.inputs ?? {}), spec.id, [...parentRank, i]);
      });
    };
    visit(state.run.spec.nodes, undefined, []);
    for (const spec of index.byId.values()) index.account(spec, state.nodes);
    for (const [id, execution] of Object.entries(state.nodes)) {
      if (execution.phase !== 'expanded' || execution.subWorkflow == null) continue;
      const children = execution.subWorkflow.nodes.map((child) => childId(id, child.id));
      index.runningChildren.set(id, children.filter((child) => !isTerminal(phaseOf(state.nodes, child))).length);
      index.refreshContainer(id, state.nodes);
    }
    return index;
  }

  /**
   * Adds an expanded container's children, whose executions already exist in `nodes`, and counts
   * them. Call after the container's own change was observed.
   */
  addChildren(containerId: string, children: readonly NodeSpec[], nodes: RunState['nodes']): void {
    const parentRank = this.rank.get(containerId) ?? [];
    children.forEach((child, i) => this.register(child, containerId, [...parentRank, i]));
    for (const child of children) this.account(child, nodes);
    this.runningChildren.set(containerId, children.filter((child) => !isTerminal(phaseOf(nodes, child.id))).length);
    this.refreshContainer(containerId, nodes);
  }

  /** Keeps the index current with one node's change (`before` → `after`, same node id). */
  observe(before: NodeExecution, after: NodeExecution): void {
    const id = after.nodeId;
    const from = before.phase;
    const to = after.phase;
    if (from !== to) {
      if (from === 'pending') {
        this.unsettledUpstream.delete(id);
        this.candidates.delete(id);
      }
      if (from === 'expanded') {
        this.runningChildren.delete(id);
        this.candidates.delete(id);
      }
      if (!settles(from) && settles(to)) {
        for (const reader of this.dependents.get(id) ?? []) {
          const waiting = this.unsettledUpstream.get(reader);
          if (waiting === undefined) continue; // not pending
          this.unsettledUpstream.set(reader, waiting - 1);
          // A failed or aborted upstream aborts the reader whatever else it waits for.
          if (waiting - 1 === 0 || !hasOutput(to)) this.candidates.add(reader);
        }
      }
      if (!isTerminal(from) && isTerminal(to)) {
        this.nonTerminal -= 1;
        const parent = this.parentOf.get(id);
        const running = parent === undefined ? undefined : this.runningChildren.get(parent);
        if (parent !== undefined && running !== undefined) {
          this.runningChildren.set(parent, running - 1);
          if (running - 1 === 0) this.candidates.add(parent);
        }
      }
    }
    if (scheduledWrite(after)) this.scheduledWrites.add(id);
    else this.scheduledWrites.delete(id);
  }

  /** Candidates in run order (a container's children right after it), removed from the set. */
  takeCandidates(): string[] {
    const taken = this.inRunOrder(this.candidates);
    this.candidates.clear();
    return taken;
  }

  /**
   * The scheduled writes in run order. Not the set's own order: that is the order they were
   * scheduled in a kept index but run order in a fresh build, and a decision must not depend on
   * which of the two it got.
   */
  scheduledWritesInRunOrder(): string[] {
    return this.inRunOrder(this.scheduledWrites);
  }

  /** Whether every node that is not terminal is only waiting for a scheduled cache-write retry. */
  onlyScheduledWritesLeft(): boolean {
    return this.nonTerminal === this.scheduledWrites.size;
  }

  /** The index's counts as plain data, to compare a kept index with a fresh build. */
  snapshot(): RunIndexSnapshot {
    const sorted = <V>(map: Map<string, V>) => [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      nodes: [...this.byId.keys()].sort(),
      parentOf: sorted(this.parentOf),
      dependents: sorted(this.dependents).map(([id, readers]) => [id, [...readers].sort()] as [string, string[]]),
      unsettledUpstream: sorted(this.unsettledUpstream),
      runningChildren: sorted(this.runningChildren),
      scheduledWrites: [...this.scheduledWrites].sort(),
      nonTerminal: this.nonTerminal,
    };
  }

  private inRunOrder(ids: Iterable<string>): string[] {
    return [...ids].sort((a, b) => compareRanks(this.rank.get(a) ?? [], this.rank.get(b) ?? []));
  }

  private register(spec: NodeSpec, parent: string | undefined, rank: readonly number[]): void {
    this.byId.set(spec.id, spec);
    this.rank.set(spec.id, rank);
    if (parent !== undefined) this.parentOf.set(spec.id, parent);
    for (const upstream of memoizedDependencies(spec)) {
      const readers = this.dependents.get(upstream);
      if (readers === undefined) this.dependents.set(upstream, [spec.id]);
      else readers.push(spec.id);
    }
  }

  /** Counts one registered node from its execution record (build, or a new child). */
  private account(spec: NodeSpec, nodes: RunState['nodes']): void {
    const execution = nodes[spec.id];
    const phase = execution?.phase ?? 'pending';
    if (!isTerminal(phase)) this.nonTerminal += 1;
    if (execution !== undefined && scheduledWrite(execution)) this.scheduledWrites.add(spec.id);
    if (phase === 'pending') {
      const upstream = memoizedDependencies(spec).map((id) => phaseOf(nodes, id));
      const waiting = upstream.filter((p) => !settles(p)).length;
      this.unsettledUpstream.set(spec.id, waiting);
      if (waiting === 0 || upstream.some((p) => settles(p) && !hasOutput(p))) this.candidates.add(spec.id);
    }
  }

  /** An expanded container's running children, recounted; a container with none left is a candidate. */
  private refreshContainer(containerId: string, nodes: RunState['nodes']): void {
    if (phaseOf(nodes, containerId) !== 'expanded') return;
    if ((this.runningChildren.get(containerId) ?? 0) === 0) this.candidates.add(containerId);
  }
}

export interface RunIndexSnapshot {
  nodes: string[];
  parentOf: [string, string][];
  dependents: [string, string[]][];
  unsettledUpstream: [string, number][];
  runningChildren: [string, number][];
  scheduledWrites: string[];
  nonTerminal: number;
}

/** The node has an output, or will never have one: its pending readers can now be decided. */
function settles(phase: NodePhase): boolean {
  return hasOutput(phase) || phase === 'failed' || phase === 'aborted' || phase === 'cancelled';
}

function scheduledWrite(node: NodeExecution): boolean {
  return node.phase === 'writing' && node.cacheWriteRetry != null && node.cacheWriteRetry.retryAtMs !== null;
}

function phaseOf(nodes: RunState['nodes'], id: string): NodePhase {
  return nodes[id]?.phase ?? 'pending';
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
