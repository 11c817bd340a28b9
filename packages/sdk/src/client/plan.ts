import { MemoflowError, describeGiven, planWorkflow, type CacheCatalog, type WorkflowPlan } from '@memoflow/engine';
import { isWorkflowDefinition, type AnyWorkflow } from '../define/workflow.js';

export interface PlanOptions {
  /** As for a run: cache entries are never shared across projects and domains. */
  project?: string;
  domain?: string;
  /** Plan a run with `overwriteCache` (`--overwrite-cache`): every cached node SKIPPED(overwrite). */
  overwriteCache?: boolean;
}

/**
 * `mf.plan(workflow, inputs, options)` (DESIGN.md "Cache controls"): what a run of `workflow` with
 * these inputs would do now, node by node, read from the catalog without creating a run, dispatching
 * or writing anything (see the engine's `planWorkflow`). Bad definitions, inputs and options are
 * refused as `mf.run` refuses them, before the catalog is read; `defaults` are the client's
 * project and domain.
 */
export async function planRun(catalog: Pick<CacheCatalog, 'lookup'>, workflow: AnyWorkflow, inputs: unknown, options: PlanOptions, defaults: { project: string; domain: string }): Promise<WorkflowPlan> {
  if (!isWorkflowDefinition(workflow)) {
    throw new MemoflowError('INVALID_SPEC', `mf.plan needs a workflow made with workflow() as its first argument, got ${describeGiven(workflow)}`, { field: 'workflow' });
  }
  const given: unknown = options;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new MemoflowError('INVALID_OPTION', `plan options must be an object ({ project, domain, overwriteCache }), got ${describeGiven(given)}`, { workflow: workflow.workflowName, field: 'options' });
  }
  const overwrite: unknown = options.overwriteCache;
  if (overwrite !== undefined && typeof overwrite !== 'boolean') {
    throw new MemoflowError('INVALID_OPTION', `overwriteCache must be true or false, got ${describeGiven(overwrite)}`, { workflow: workflow.workflowName, field: 'overwriteCache' });
  }
  const spec = workflow.spec; // traces and validates: a bad definition fails here
  const prepared = workflow.prepareInputs(inputs);
  // `undefined` only: a null project is a mistake to name (newRunState does), not a request for the default.
  const project = options.project === undefined ? defaults.project : options.project;
  const domain = options.domain === undefined ? defaults.domain : options.domain;
  return planWorkflow({ spec, inputs: prepared, project, domain, overwriteCache: overwrite === true, now: new Date() }, catalog);
}
