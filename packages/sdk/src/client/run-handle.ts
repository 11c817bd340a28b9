import { MemoflowError, runNodes, type CacheStatus, type ErrorInfo, type Json, type NodePhase, type RunState, type RunStatus, type RunStore } from '@memoflow/engine';
import type { Controller } from '@memoflow/engine';

/** One node execution as users see it (`run.nodes()`, `memoflow runs show`). */
export interface NodeReport {
  id: string;
  /** For a child of a dynamic node or sub-workflow (`<container>.<child>`): the container's id. */
  parent: string | null;
  task: string;
  status: NodePhase;
  cacheStatus: CacheStatus | null;
  cacheReason: string | null;
  cacheKey: string | null;
  /** `cache.serialize`: whose reservation the node waited for (it was WAITING), or null if it never waited. */
  waitedFor: { runId: string; nodeId: string } | null;
  attempts: number;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  output: Json | null;
  error: ErrorInfo | null;
}

export interface RunReport {
  id: string;
  workflow: string;
  project: string;
  domain: string;
  status: RunStatus;
  outputs: { [name: string]: Json } | null;
  error: ErrorInfo | null;
  createdAt: Date;
  finishedAt: Date | null;
  nodes: NodeReport[];
}

/** A submitted run. */
export class RunHandle<R> {
  constructor(
    readonly id: string,
    private readonly controller: Controller,
    private readonly runStore: RunStore,
  ) {}

  /** Waits for the run and returns its outputs; a failed run throws RUN_FAILED naming the failed node. */
  async result(): Promise<R> {
    const state = await this.controller.wait(this.id);
    if (state.run.status === 'failed') {
      const failed = Object.values(state.nodes).filter((node) => node.phase === 'failed');
      throw new MemoflowError('RUN_FAILED', `run ${this.id} failed: ${state.run.error?.message ?? 'unknown error'}`, {
        workflow: state.run.workflow,
        ...(failed[0] === undefined ? {} : { node: failed[0].nodeId }),
      });
    }
    return state.run.outputs as R;
  }

  /** Waits for the run to finish, failed or not, and returns its full report. */
  async wait(): Promise<RunReport> {
    return toRunReport(await this.controller.wait(this.id));
  }

  /** Node executions as they are now, in workflow order. */
  async nodes(): Promise<NodeReport[]> {
    const state = await this.runStore.load(this.id);
    if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${this.id}' does not exist`);
    return toRunReport(state).nodes;
  }
}

export function toRunReport(state: RunState): RunReport {
  // Every node in run order: a container's children (dynamic, sub-workflow) right after it.
  const { order, parentOf } = runNodes(state);
  const nodes = order.map((spec): NodeReport => {
    const node = state.nodes[spec.id];
    if (node === undefined) throw new MemoflowError('NODE_NOT_FOUND', `run ${state.run.id} has no record of node '${spec.id}'`);
    return {
      id: node.nodeId,
      parent: parentOf.get(node.nodeId) ?? null,
      task: node.task,
      status: node.phase,
      cacheStatus: node.cacheStatus,
      cacheReason: node.cacheReason,
      cacheKey: node.cacheKey,
      waitedFor: node.waitedFor ?? null,
      attempts: node.attempts,
      startedAt: node.startedAt,
      finishedAt: node.finishedAt,
      durationMs: node.startedAt !== null && node.finishedAt !== null ? node.finishedAt.getTime() - node.startedAt.getTime() : null,
      output: node.output?.value ?? null,
      error: node.error,
    };
  });
  return {
    id: state.run.id,
    workflow: state.run.workflow,
    project: state.run.project,
    domain: state.run.domain,
    status: state.run.status,
    outputs: state.run.outputs,
    error: state.run.error,
    createdAt: state.run.createdAt,
    finishedAt: state.run.finishedAt,
    nodes,
  };
}
