import { MemoflowError, type RunStore, type SubmitRequest, type TaskImplementation, type WorkflowSpec } from '@memoflow/engine';
import { isWorkflowDefinition, type AnyWorkflow } from '../define/workflow.js';

/**
 * What `mf.retry(runId)` submits: the run's workflow (as it is now when given, else as recorded),
 * its inputs, project and domain, and `retryOf`, from which the controller plans what to reuse.
 * `registry` (in-process modes): the tasks this connection can run; a recorded workflow whose tasks
 * are not all there is refused here, before anything runs, instead of failing node by node.
 */
export async function retryRequest(runStore: RunStore, runId: string, options: { workflow?: AnyWorkflow; source?: { module: string; workflow: string } }, registry: ReadonlyMap<string, TaskImplementation> | undefined): Promise<SubmitRequest> {
  if (typeof runId !== 'string' || runId === '') throw new MemoflowError('INVALID_OPTION', 'mf.retry needs the id of the run to retry', { field: 'runId' });
  const source = await runStore.load(runId);
  if (source === undefined) throw new MemoflowError('RUN_NOT_FOUND', `cannot retry run '${runId}': no such run`, { field: 'run' });
  const { workflow } = options;
  if (workflow !== undefined && !isWorkflowDefinition(workflow)) {
    throw new MemoflowError('INVALID_OPTION', 'mf.retry: `workflow` must be a workflow made with workflow()', { field: 'workflow' });
  }
  if (workflow !== undefined && workflow.workflowName !== source.run.workflow) {
    throw new MemoflowError('WORKFLOW_MISMATCH', `cannot retry run ${runId}: it is a run of workflow '${source.run.workflow}', not '${workflow.workflowName}'`, { workflow: workflow.workflowName, field: 'workflow' });
  }
  const spec = workflow?.spec ?? source.run.spec;
  if (workflow === undefined && registry !== undefined) {
    const missing = specTasks(spec).filter((task) => !registry.has(task));
    if (missing.length > 0) {
      throw new MemoflowError(
        'UNKNOWN_TASK',
        `cannot retry run ${runId} here: this connection has not registered its task(s) ${missing.join(', ')}; pass the workflow (mf.retry(id, { workflow })) or run it with \`memoflow runs retry\``,
        { workflow: source.run.workflow, field: 'workflow' },
      );
    }
  }
  const origin = options.source ?? source.run.options.source;
  return {
    spec,
    inputs: source.run.inputs,
    project: source.run.project,
    domain: source.run.domain,
    options: { overwriteCache: false, retryOf: runId, ...(origin === undefined ? {} : { source: origin }) },
  };
}

/** The tasks a spec's nodes name (a sub-workflow's inside it; a dynamic's children are not known before it runs). */
function specTasks(spec: WorkflowSpec): string[] {
  const tasks = new Set<string>();
  const visit = (nodes: WorkflowSpec['nodes']): void => {
    for (const node of nodes) {
      if (node.kind === 'subworkflow') visit(node.workflow.nodes);
      else tasks.add(node.task);
    }
  };
  visit(spec.nodes);
  return [...tasks];
}
