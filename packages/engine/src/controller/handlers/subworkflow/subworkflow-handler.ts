import type { SubworkflowNodeSpec } from '../../../spec/workflow-spec.js';
import type { NodeHandler } from '../node-handler.js';
import { settleContainer } from '../shared/outcomes.js';

/**
 * A sub-workflow: a container whose sub-workflow is in the spec. Executing it expands it (its
 * children become nodes of the run, under the same cache rules); it has no attempts. Its output
 * is its sub-workflow's outputs, once every child is done.
 */
export const subworkflowHandler: NodeHandler<SubworkflowNodeSpec> = {
  lookups: ['output'],
  execute(ctx, spec, message) {
    ctx.expand(spec, spec.workflow, message);
  },
  missed(ctx, spec, _outcomes, miss) {
    ctx.update(spec.id, { cacheStatus: miss.status, cacheReason: miss.reason });
    ctx.expand(spec, spec.workflow, miss.reason ?? undefined);
  },
  attemptFinished() {
    // Never dispatched, so no attempt of it can finish: a result naming it is stale.
  },
  childrenSettled(ctx, spec, children) {
    return settleContainer(ctx, spec, children);
  },
};
