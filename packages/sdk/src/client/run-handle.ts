import { MemoflowError, runNodes, type CacheStatus, type CutoffHint, type ErrorInfo, type Json, type NodePhase, type RunState, type RunStatus, type RunStore } from '@memoflow/engine';
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
  /** HIT (and FUTURE_HIT): the compute its entry recorded, which the hit saved; null otherwise, or unknown (an entry of an earlier release). */
  savedMs: number | null;
  /** Reran only because of the cascade, yet its own key had an entry: it would have hit had `upstream`'s output been content-hashed (`hashWith`). */
  cutoffHint: CutoffHint | null;
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
  /** Resume: the run and node it resumed from. */
  resumedFrom: { run: string; node: string } | null;
  /** Retry: the run it retried. */
  retryOf: string | null;
  /** Where its workflow came from, when the CLI started it (what `memoflow runs retry` loads). */
  source: { module: string; workflow: string } | null;
  nodes: NodeReport[];
}

/** What `run.cancel()` did. */
export interface CancelResult {
  /** True if this call (or an earlier one still being applied) cancelled the run. */
  cancelled: boolean;
  /** The run's status now: `cancelled`; what it already was (a no-op); or `running` if its controller has not applied the request yet. */
  status: RunStatus;
  /** One line for people: what happened, or why nothing did. */
  message: string;
}

/** How long `cancel()` waits for the run's controller to apply the request, by default. */
export const DEFAULT_CANCEL_WAIT_MS = 10_000;

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
    if (state.run.status === 'cancelled') {
      throw new MemoflowError('RUN_CANCELLED', `run ${this.id} was cancelled: ${state.run.error?.message ?? 'cancelled on request'}`, { workflow: state.run.workflow });
    }
    return state.run.outputs as R;
  }

  /**
   * Cancels the run: pending nodes never start, running attempts see their `signal` abort (in this
   * process or on the worker pools), nothing of an unfinished node is cached, and `result()`
   * rejects with RUN_CANCELLED. Resolves once the run has ended `cancelled`, or at once with a
   * no-op message if it was already over. The request is recorded on the run first, so if its
   * controller does not apply it within `waitMs` (it is away), this resolves with status `running`
   * and the run ends cancelled when a controller picks it up. A cancelled run can be retried.
   */
  async cancel(options: { reason?: string; waitMs?: number } = {}): Promise<CancelResult> {
    const outcome = await this.controller.cancel(this.id, options.reason ?? 'cancelled on request');
    switch (outcome.kind) {
      case 'missing':
        throw new MemoflowError('RUN_NOT_FOUND', `run '${this.id}' does not exist`);
      case 'finished':
        return { cancelled: false, status: outcome.status, message: `run ${this.id} already ${outcome.status}; nothing to cancel` };
      case 'requested':
      case 'already-requested':
        break;
    }
    const waitMs = options.waitMs ?? DEFAULT_CANCEL_WAIT_MS;
    const ended = this.controller.wait(this.id);
    ended.catch(() => undefined); // it may settle after the timeout below: never unhandled
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), waitMs);
    });
    try {
      const state = await Promise.race([ended, late]);
      if (state === null) {
        return { cancelled: true, status: 'running', message: `run ${this.id}: cancel requested; its controller has not applied it within ${waitMs} ms, it ends cancelled when a controller picks the run up` };
      }
      if (state.run.status !== 'cancelled') return { cancelled: false, status: state.run.status, message: `run ${this.id} already ${state.run.status}; nothing to cancel` };
      const nodes = Object.values(state.nodes).filter((node) => node.phase === 'cancelled');
      const stopped = nodes.filter((node) => node.startedAt !== null).length;
      return { cancelled: true, status: 'cancelled', message: `run ${this.id} cancelled (${stopped} running node(s) stopped, ${nodes.length - stopped} never started)` };
    } finally {
      clearTimeout(timer);
    }
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
      savedMs: node.savedMs ?? null,
      cutoffHint: node.cutoffHint ?? null,
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
    resumedFrom: state.run.options.resumeFrom ?? null,
    retryOf: state.run.options.retryOf ?? null,
    source: state.run.options.source ?? null,
    nodes,
  };
}
