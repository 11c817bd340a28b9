import { MemoflowError } from '../../errors.js';
import type { AttemptResult, TaskDispatcher } from '../../ports/task-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import type { RunState } from '../../state/run-state.js';

/*
 * Which controller a run's work belongs to. Two questions, both answered by what the store says,
 * never by what a controller happens to hold in memory: may this controller drive the run at all
 * (its worker pool is the one the run records), and who drives it now (the holder of its lease,
 * RunLeases), to whom its results are routed.
 */

/**
 * Whether `dispatcher` reaches the worker pool the run's tasks go to (runs of earlier releases name
 * none). `tasks`: what driving it needs here, by default every task it names (cancelling needs none).
 */
export function mayDrive(dispatcher: TaskDispatcher, state: RunState, tasks: readonly string[] = runTasks(state)): boolean {
  const pool = state.run.options.pool ?? dispatcher.pool;
  return dispatcher.mayDrive?.(pool, tasks) ?? pool === dispatcher.pool;
}

/** Whether runs recorded under `pool` may be `dispatcher`'s (the precise check needs the run's tasks: mayDrive). */
export function mayDrivePool(dispatcher: TaskDispatcher, pool: string | undefined): boolean {
  return dispatcher.mayDrive !== undefined || (pool ?? dispatcher.pool) === dispatcher.pool;
}

/**
 * A result for a run another controller leases: handed to that controller (TaskDispatcher.route),
 * so the transport may acknowledge the original. If it cannot be handed over (no `route`, or the
 * owner is gone and its lease not yet expired) it is refused with RUN_LEASED, retryable, saying
 * when to try again: when the lease ends (bounded by one lease: the store's clock and this one may
 * differ), by which time the run has been taken over and the result goes to its new owner.
 */
export async function routeToOwner(
  result: AttemptResult,
  lease: { owner: string; expiresAt: Date },
  context: { dispatcher: TaskDispatcher; self: string; ttlMs: number; now: Date },
): Promise<void> {
  const { dispatcher } = context;
  const retryAfterMs = Math.min(context.ttlMs, Math.max(100, lease.expiresAt.getTime() - context.now.getTime()));
  const leased = `run ${result.runId} is leased to controller ${lease.owner === '' ? '(unknown)' : lease.owner}`;
  if (dispatcher.route !== undefined && lease.owner !== '' && lease.owner !== context.self) {
    try {
      await dispatcher.route(result, lease.owner);
      return;
    } catch (error) {
      throw new MemoflowError('RUN_LEASED', `${leased}, which cannot take its results (${error instanceof Error ? error.message : String(error)}); try again in ${retryAfterMs} ms`, { retryable: true, retryAfterMs, cause: error });
    }
  }
  throw new MemoflowError('RUN_LEASED', `${leased}; try again in ${retryAfterMs} ms`, { retryable: true, retryAfterMs });
}

/** Every task a run's own nodes name (sub-workflows' inner nodes included; a dynamic's children are not known before it runs). */
function runTasks(state: RunState): string[] {
  const tasks = new Set<string>();
  const visit = (nodes: WorkflowSpec['nodes']): void => {
    for (const node of nodes) {
      if (node.kind === 'subworkflow') visit(node.workflow.nodes);
      else tasks.add(node.task);
    }
  };
  visit(state.run.spec.nodes);
  return [...tasks];
}
