import type { ErrorInfo } from '../../errors.js';
import { attemptId } from '../../ports/task-dispatcher.js';
import { hasOutput, mayDispatchAttempt, transition } from '../../state/node-phase.js';
import type { NodeExecution } from '../../state/run-state.js';
import { memoizedDependencies } from './dependencies.js';
import type { Draft } from './draft.js';

/**
 * Cancels the run (a cancel request, Controller.cancel): every node not finished yet ends
 * `cancelled`, the attempts of dispatched nodes are stopped (CancelAttempts), and the run ends
 * `cancelled` with the request's RUN_CANCELLED error. Decided before any other event of the round,
 * which is then dropped with every later one (the run is over): a result that arrives with or after
 * the cancel is acknowledged and never applied, so nothing of an unfinished node is cached.
 *
 * - pending: never starts.
 * - looking-up: its lookup's answer is dropped.
 * - dispatched: its current attempt is cancelled (signal aborted, or never started if queued).
 * - expanded (a dynamic node or sub-workflow with children running): cancelled with its children.
 * - writing: finished (its output is known and downstream may have read it), so it ends
 *   `succeeded`; a put already in flight may still land, which is a finished node's valid entry.
 *   A put that had failed and waited for its retry is not retried: PUT_FAILURE.
 * - and the attempts a controller may have sent beside a save that never landed: no stored state
 *   names them, so they are cancelled by the ids they would have (`cancelUnrecorded`).
 * Costs O(nodes), once per run.
 */
export function cancelRun(draft: Draft, request: ErrorInfo): void {
  const now = draft.now;
  let stopped = 0;
  let neverStarted = 0;
  // Read before any node changes: whether a node may have gone out depends on its upstream's phases.
  for (const node of Object.values(draft.state.nodes)) cancelUnrecorded(draft, node);
  for (const node of Object.values(draft.state.nodes)) {
    const id = node.nodeId;
    switch (node.phase) {
      case 'writing': {
        const retrying = node.cacheWriteRetry != null && node.cacheWriteRetry.retryAtMs !== null;
        draft.update(id, {
          phase: transition(id, 'writing', 'succeeded'),
          cacheWriteRetry: null,
          ...(retrying
            ? { cacheStatus: 'PUT_FAILURE', cacheReason: `cache write lost: the run was cancelled while the write waited for its retry (${node.cacheWriteRetry?.lastError ?? ''})` }
            : { cacheReason: node.cacheReason ?? 'the run was cancelled before its cache write was confirmed' }),
        });
        break;
      }
      case 'dispatched':
        draft.cancelAttempt({ id: attemptId(draft.run.id, id, node.attempts), task: node.task });
        stopped += 1;
        cancelNode(draft, id, 'its attempt was cancelled');
        break;
      case 'looking-up':
      case 'expanded':
        stopped += 1;
        cancelNode(draft, id, 'cancelled');
        break;
      case 'pending':
        neverStarted += 1;
        cancelNode(draft, id, 'never started');
        break;
      case 'succeeded':
      case 'failed':
      case 'aborted':
      case 'cancelled':
        break;
    }
  }
  draft.run = { ...draft.run, status: 'cancelled', error: request, finishedAt: now, updatedAt: now };
  draft.runChanged = true;
  draft.emitRun('run:cancelled', 'warn', request, `${stopped} running node(s) stopped, ${neverStarted} never started`);
}

/**
 * A controller sends a round's attempts beside its save only for a node the store holds, whose
 * inputs come from outputs the store holds or from results of attempts it records as dispatched
 * (run-driver.ts, `mayGoAhead`). So an attempt that went out beside a save that never landed is
 * one step ahead of the stored state: the next attempt of a node whose upstream nodes all have
 * their output or are dispatched (pending, or looking up: it may have missed), or the retry of a
 * dispatched one. Those ids are cancelled too: the run is over, so none of them is dispatched
 * legitimately later, and one that never went out costs a no-op.
 */
function cancelUnrecorded(draft: Draft, node: NodeExecution): void {
  const spec = draft.index.byId.get(node.nodeId);
  if (!mayDispatchAttempt(node.phase) || spec === undefined || spec.kind === 'subworkflow' || node.attempts >= 1 + spec.retries) return;
  if (node.phase !== 'dispatched') {
    const ready = memoizedDependencies(spec).every((up) => {
      const upstream = draft.state.nodes[up];
      return upstream !== undefined && (hasOutput(upstream.phase) || upstream.phase === 'dispatched');
    });
    if (!ready) return;
  }
  draft.cancelAttempt({ id: attemptId(draft.run.id, node.nodeId, node.attempts + 1), task: node.task });
}

/**
 * One node ends `cancelled`: reported as such in its line (`node:cancelled`), `run.nodes()` and the
 * summary, and rerun by a retry. Nothing of it is cached. (A serialized node holding a cache
 * reservation releases it here: cache.serialize adds its release command at this point.)
 */
function cancelNode(draft: Draft, nodeId: string, message: string): void {
  const node = draft.node(nodeId);
  draft.update(nodeId, { phase: transition(nodeId, node.phase, 'cancelled'), finishedAt: draft.now });
  draft.emit('node:cancelled', nodeId, { message }, 'warn');
}
