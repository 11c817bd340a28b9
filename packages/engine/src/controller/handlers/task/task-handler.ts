import type { TaskNodeSpec } from '../../../spec/workflow-spec.js';
import { attemptComputeMs } from '../../core/compute.js';
import type { NodeHandler } from '../node-handler.js';
import { retryOrFail, succeed } from '../shared/outcomes.js';

/**
 * A task: its body runs on a worker, one attempt at a time, retried while its error is retryable
 * and retries are left. Its output is the attempt's (with the `hashWith` hash, if the output type
 * declares one).
 */
export const taskHandler: NodeHandler<TaskNodeSpec> = {
  lookups: ['output'],
  execute(ctx, spec, message) {
    ctx.dispatch(spec.id, message);
  },
  missed(ctx, spec, _outcomes, miss) {
    ctx.update(spec.id, { cacheStatus: miss.status, cacheReason: miss.reason });
    ctx.dispatch(spec.id, miss.reason ?? undefined);
  },
  attemptFinished(ctx, spec, result) {
    if (!result.ok) {
      retryOrFail(ctx, spec, result);
      return;
    }
    // Its run time goes with its entry: what a HIT on it saves (core/compute.ts).
    succeed(ctx, spec, result.outputHash === null ? { value: result.output } : { value: result.output, hash: result.outputHash }, { computeMs: attemptComputeMs(result) });
  },
  childrenSettled() {
    return false; // a task has no children
  },
};
