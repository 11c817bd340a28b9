import { describeGiven, MemoflowError } from '../../errors.js';
import type { RunStore } from '../../ports/run-store.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import type { ReusePlan } from '../../state/reuse-plan.js';
import type { RunOptions, RunState } from '../../state/run-state.js';
import { planReuse, retryRoots } from '../core/reuse-plan.js';
import type { EngineEvent, ReusePreview } from '../vocabulary/commands.js';

/**
 * The reuse plan of a run submitted with `resumeFrom` or `retryOf`, or undefined for a plain run.
 * Every mistake is refused here, before the run is created: an earlier run that does not exist, is
 * of another workflow or is still running, a resume point it does not have.
 */
export async function reusePlanFor(runStore: RunStore, spec: WorkflowSpec, options: Partial<RunOptions> | undefined): Promise<ReusePlan | undefined> {
  const resumeFrom: unknown = options?.resumeFrom;
  const retryOf: unknown = options?.retryOf;
  if (resumeFrom === undefined && retryOf === undefined) return undefined;
  if (resumeFrom !== undefined && retryOf !== undefined) {
    throw new MemoflowError('INVALID_OPTION', 'a run resumes from one run or retries one, not both', { workflow: spec.name, field: 'resumeFrom' });
  }
  if (retryOf !== undefined) {
    if (typeof retryOf !== 'string') throw new MemoflowError('INVALID_OPTION', `the run to retry must be a run id, got ${describeGiven(retryOf)}`, { workflow: spec.name, field: 'retryOf' });
    const source = await finishedRunOf(runStore, retryOf, spec, 'retry');
    return planReuse(source, retryRoots(source), 'retry');
  }
  const { run, node } = (typeof resumeFrom === 'object' && resumeFrom !== null ? resumeFrom : {}) as { run?: unknown; node?: unknown };
  if (typeof run !== 'string' || typeof node !== 'string' || run === '' || node === '') {
    throw new MemoflowError('INVALID_OPTION', `resumeFrom must be { run, node } with a run id and a node id (the CLI's <run>:<node>), got ${describeGiven(resumeFrom)}`, { workflow: spec.name, field: 'resumeFrom' });
  }
  const source = await finishedRunOf(runStore, run, spec, 'resume from');
  if (source.nodes[node] === undefined) {
    const known = spec.nodes.map((n) => n.id);
    throw new MemoflowError('NODE_NOT_FOUND', `cannot resume run ${run} from node '${node}': the run has no such node (its nodes: ${known.join(', ')})`, { workflow: spec.name, node, field: 'resumeFrom' });
  }
  // A child (`<container>.<child>`) is known once its container expands; a top-level node must still be in the workflow.
  if (!node.includes('.') && !spec.nodes.some((n) => n.id === node)) {
    throw new MemoflowError('NODE_NOT_FOUND', `cannot resume from node '${node}': workflow '${spec.name}' as it is now has no such node`, { workflow: spec.name, node, field: 'resumeFrom' });
  }
  return planReuse(source, new Set([node]), 'resume', node);
}

async function finishedRunOf(runStore: RunStore, runId: string, spec: WorkflowSpec, verb: string): Promise<RunState> {
  const source = await runStore.load(runId);
  if (source === undefined) throw new MemoflowError('RUN_NOT_FOUND', `cannot ${verb} run '${runId}': no such run`, { workflow: spec.name, field: 'run' });
  if (source.run.workflow !== spec.name) {
    throw new MemoflowError('WORKFLOW_MISMATCH', `cannot ${verb} run ${runId}: it is a run of workflow '${source.run.workflow}', not '${spec.name}'`, { workflow: spec.name, field: 'run' });
  }
  if (source.run.status === 'running') {
    throw new MemoflowError('RUN_NOT_FINISHED', `cannot ${verb} run ${runId}: it is still running (wait for it to finish, or cancel it)`, { workflow: spec.name, field: 'run' });
  }
  return source;
}

/** The options a resumed or retried run records: what it was asked, and its plan. */
export function reuseOptions(requested: Partial<RunOptions>, plan: ReusePlan): Partial<RunOptions> {
  const options: Partial<RunOptions> = { reuse: plan };
  if (requested.resumeFrom !== undefined) options.resumeFrom = { run: requested.resumeFrom.run, node: requested.resumeFrom.node };
  if (requested.retryOf !== undefined) options.retryOf = requested.retryOf;
  return options;
}

/** The event that prints a resumed or retried run's plan before anything of it runs. */
export function planEvent(state: RunState, plan: ReusePreview): EngineEvent {
  const verb = plan.reason === 'resume' ? `resuming run ${plan.fromRun}` : `retrying run ${plan.fromRun}`;
  const list = (ids: readonly string[]) => (ids.length === 0 ? 'none' : ids.length > 20 ? `${ids.slice(0, 20).join(', ')} and ${ids.length - 20} more` : ids.join(', '));
  return {
    type: 'run:reuse-planned',
    level: 'info',
    runId: state.run.id,
    workflow: state.run.workflow,
    message: `${verb}: reusing ${plan.reuse.length} node(s): ${list(plan.reuse)}; running ${plan.run.length}: ${list(plan.run)}`,
    plan,
  };
}
