import type { DynamicNodeSpec } from '../../../spec/workflow-spec.js';
import { isExpired } from '../../core/cache-expiry.js';
import { attemptComputeMs } from '../../core/compute.js';
import { entryProblem } from '../../core/cache-write-checks.js';
import { parseFuture, staleFutureReason } from '../../core/future.js';
import type { NodeContext, NodeHandler } from '../node-handler.js';
import { retryOrFail, settleContainer } from '../shared/outcomes.js';

/**
 * A dynamic node: its body runs on a worker and returns a sub-workflow (its "future"), which is
 * stored in the catalog under the node's key and expanded: its children become nodes of the run.
 * Its output is the sub-workflow's result once every child is done. When its output misses but its
 * future hits (a retry after a failed child), the stored sub-workflow expands without running the
 * body again (FUTURE_HIT), unless it was compiled from inputs it no longer matches.
 */
export const dynamicHandler: NodeHandler<DynamicNodeSpec> = {
  lookups: ['output', 'future'],
  execute(ctx, spec, message) {
    ctx.dispatch(spec.id, message);
  },
  missed(ctx, spec, outcomes, miss) {
    let reason = miss.reason;
    const future = outcomes.find((o) => o.kind === 'future');
    const ttlMs = spec.cache?.ttlMs ?? 0;
    if (future?.outcome === 'hit' && !isExpired(future.entry.createdAt, ttlMs, ctx.now)) {
      const problem = entryProblem(future, undefined);
      const sub = problem === undefined ? parseFuture(future.entry.value) : null;
      const stale = sub === null || sub instanceof Error ? null : staleFutureReason(sub, ctx.node(spec.id).inputs ?? {});
      if (sub !== null && !(sub instanceof Error) && stale === null) {
        // The compile its future recorded is saved (the children's own hits say what they save).
        ctx.update(spec.id, { cacheStatus: 'FUTURE_HIT', cacheReason: `sub-workflow from run ${future.entry.runId}`, savedMs: future.entry.durationMs });
        ctx.expand(spec, sub, 'compiled sub-workflow read from the catalog; the body does not run');
        return;
      }
      if (stale !== null) reason = reason === null ? stale : `${reason}; ${stale}`;
      else ctx.emit('node:cache-corrupt', spec.id, { message: 'future entry is not a sub-workflow, treated as a miss' }, 'warn');
    }
    ctx.update(spec.id, { cacheStatus: miss.status, cacheReason: reason });
    ctx.dispatch(spec.id, reason ?? undefined);
  },
  attemptFinished(ctx, spec, result) {
    if (!result.ok) {
      retryOrFail(ctx, spec, result);
      return;
    }
    expandCompiled(ctx, spec, result.output, attemptComputeMs(result));
  },
  childrenSettled(ctx, spec, children) {
    return settleContainer(ctx, spec, children);
  },
};

/** The body returned its sub-workflow: store it as the node's future and run it. */
function expandCompiled(ctx: NodeContext, spec: DynamicNodeSpec, compiled: Parameters<typeof parseFuture>[0], computeMs: number): void {
  const parsed = parseFuture(compiled, { workflow: ctx.run.workflow, node: spec.id });
  if (parsed === null || parsed instanceof Error) {
    const message = parsed instanceof Error ? parsed.message : 'the dynamic body did not return a sub-workflow';
    ctx.fail(spec.id, { name: 'InvalidDynamicWorkflow', code: 'INVALID_SPEC', message, retryable: false });
    return;
  }
  // The compile's run time: what its future records, and its own part of its output's compute.
  ctx.update(spec.id, { computeMs });
  ctx.expand(spec, parsed);
  if (ctx.node(spec.id).cacheKey !== null) ctx.write(spec.id, 'future');
}
