import type { ErrorInfo } from '../../../errors.js';
import type { NodeValue } from '../../../json.js';
import type { AttemptResult } from '../../../ports/task-dispatcher.js';
import type { NodeSpec } from '../../../spec/workflow-spec.js';
import { transition } from '../../../state/node-phase.js';
import type { NodeExecution } from '../../../state/run-state.js';
import { containerOutputBinding } from '../../core/expand.js';
import type { NodeContext } from '../node-handler.js';

type FailedAttempt = Extract<AttemptResult, { ok: false }>;

/**
 * The node has its output: it succeeds, or (cached) moves to `writing` while its entry is written.
 * Downstream nodes may start at once, and the log says so now, so lines stay in causal order; the
 * cache write is reported on its own line when it lands.
 */
export function succeed(ctx: NodeContext, spec: NodeSpec, output: NodeValue, computed: Pick<NodeExecution, 'computeMs'> = {}): void {
  const node = ctx.node(spec.id);
  // A recovered container's result is the earlier run's (reused children): nothing new to write.
  const writes = node.cacheKey !== null && node.cacheStatus !== 'RECOVERED' && ctx.storable(spec, output.value);
  ctx.update(spec.id, { phase: transition(spec.id, node.phase, writes ? 'writing' : 'succeeded'), output, error: null, finishedAt: ctx.now, ...computed });
  if (writes) ctx.write(spec.id, 'output');
  ctx.emit('node:succeeded', spec.id);
}

/** A failed attempt: the next one starts if the error is retryable and retries are left, else the node fails. */
export function retryOrFail(ctx: NodeContext, spec: NodeSpec, result: FailedAttempt): void {
  const node = ctx.node(spec.id);
  if (result.error.retryable && node.attempts < spec.retries + 1) {
    ctx.update(spec.id, { error: result.error });
    ctx.dispatch(spec.id, `attempt ${node.attempts} failed: ${result.error.message}`);
    return;
  }
  ctx.fail(spec.id, result.error);
}

/**
 * A container whose children are all terminal resolves its output (its sub-workflow's outputs,
 * read from its children), or fails naming the first failed child. Shared by sub-workflows and
 * dynamic nodes.
 */
export function settleContainer(ctx: NodeContext, spec: NodeSpec, children: readonly NodeExecution[]): boolean {
  const node = ctx.node(spec.id);
  const failed = children.find((child) => child.phase === 'failed' || child.phase === 'aborted');
  if (failed !== undefined) {
    const culprit = children.find((child) => child.phase === 'failed') ?? failed;
    const error: ErrorInfo = {
      name: 'ChildFailed',
      code: 'CHILD_FAILED',
      message: `child node '${culprit.nodeId}' (${culprit.task}) failed${culprit.error === null ? '' : `: ${culprit.error.message}`}`,
      retryable: false,
    };
    ctx.fail(spec.id, error);
    return true;
  }
  const sub = node.subWorkflow;
  if (sub === null) return false;
  succeed(ctx, spec, ctx.resolve(containerOutputBinding(spec, sub, node.inputs ?? {})));
  return true;
}
