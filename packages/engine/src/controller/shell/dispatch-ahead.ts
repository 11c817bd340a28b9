import { MemoflowError } from '../../errors.js';
import type { AttemptToCancel, TaskAttempt } from '../../ports/task-dispatcher.js';
import { hasOutput, mayDispatchAttempt } from '../../state/node-phase.js';
import type { RunState } from '../../state/run-state.js';
import type { Decision } from '../core/decide.js';
import { memoizedDependencies } from '../core/dependencies.js';
import type { RunWorkspace } from '../core/draft.js';
import type { Command } from '../vocabulary/commands.js';
import type { RunEvent } from '../vocabulary/events.js';

// Dispatch beside the save (run-driver.ts, `round`): which rounds and attempts may go out before
// their save lands, and what becomes of the attempts whose save did not.

/**
 * Attempts dispatched beside a save that did not land, by id: no stored state records them. Each
 * is forgotten once a state read or saved records it, and cancelled once that state shows it never
 * will (its node ended otherwise, or the run did): a cancel that won the race against the save must
 * still stop it.
 */
export class Orphans {
  private readonly byId = new Map<string, TaskAttempt>();

  adopt(attempts: readonly TaskAttempt[]): void {
    for (const attempt of attempts) this.byId.set(attempt.id, attempt);
  }

  none(): boolean {
    return this.byId.size === 0;
  }

  /** Every orphan, forgotten here (a stopped driver hands them to the controller's OrphanWatch). */
  take(): TaskAttempt[] {
    const all = [...this.byId.values()];
    this.byId.clear();
    return all;
  }

  /**
   * After a decision the store holds (saved, or read and left unchanged): forgets each orphan that
   * state records, and cancels each it shows will never be (its node has an output, or ended, or
   * the run did). The others may still be recorded by a later round: an attempt id names one
   * attempt with one set of inputs, so whoever dispatches it next gets this one's result.
   */
  cancelsAfter(commands: Command[], state: RunState): Command[] {
    if (this.byId.size === 0) return commands;
    const stop: AttemptToCancel[] = [];
    for (const [id, attempt] of this.byId) {
      const node = state.nodes[attempt.nodeId];
      if (node !== undefined && node.attempts >= attempt.attempt) {
        this.byId.delete(id);
        continue;
      }
      const never = state.run.status !== 'running' || (node !== undefined && !mayDispatchAttempt(node.phase));
      if (never) {
        stop.push({ id, task: attempt.task });
        this.byId.delete(id);
      }
    }
    if (stop.length === 0) return commands;
    // A cancel of the run names most of them already (core/cancel.ts, cancelUnrecorded): once each.
    const named = new Set(commands.flatMap((c) => (c.type === 'CancelAttempts' ? c.attempts.map((a) => a.id) : [])));
    const more = stop.filter((attempt) => !named.has(attempt.id));
    return more.length === 0 ? commands : [...commands, { type: 'CancelAttempts', attempts: more }];
  }
}

/**
 * Whether a round's dispatches may go out before its save lands: only if every event of it is one
 * any re-decision gets again, the same. Attempt results are (one result per attempt id, and the
 * transport delivers it again until it is saved), and write confirmations and ticks ready nothing
 * of their own. Lookup answers are not: nothing delivers them again, and the controller that takes
 * the run over looks the node up afresh, where a miss can have become a hit (another run wrote the
 * entry); the attempt sent after the miss would then run unrecorded, and a cancel read from the
 * store could not name it (its node has an output). Nor is a reservation's answer. A round applying
 * any of those saves first.
 */
export function dispatchAheadSafe(events: readonly RunEvent[]): boolean {
  return events.every((event) => event.type === 'attempt:finished' || event.type === 'cache:written' || event.type === 'run:tick');
}

/**
 * Whether an attempt may go out before its round's save lands: its node is one the store holds
 * (not created by this decision: a dynamic node's children are not), at the attempt after the one
 * the store records, and each upstream node's output is one the store holds or comes from the
 * attempt the store records as dispatched. So an attempt sent beside a save that never lands is
 * at most one step ahead of the stored state, where a cancel read from the store can name it
 * (core/cancel.ts, `cancelUnrecorded`), and its result at most one attempt ahead of its node's.
 * `decision.previous` holds what changed nodes were before it, which (with no unsaved changes) is
 * what the store holds.
 */
export function mayGoAhead(attempt: TaskAttempt, decision: Decision, workspace: RunWorkspace): boolean {
  const stored = (id: string) => (decision.previous.has(id) ? decision.previous.get(id) : decision.state.nodes[id]);
  const before = stored(attempt.nodeId);
  const spec = workspace.index.byId.get(attempt.nodeId);
  if (before === undefined || spec === undefined || before.attempts !== attempt.attempt - 1) return false;
  if (!mayDispatchAttempt(before.phase)) return false;
  return memoizedDependencies(spec).every((up) => {
    const was = stored(up);
    const now = decision.state.nodes[up];
    return was !== undefined && now !== undefined && (hasOutput(was.phase) || (was.phase === 'dispatched' && now.attempts === was.attempts));
  });
}

/** The commands without the attempts already sent. */
export function unsent(commands: Command[], sent: ReadonlySet<string>): Command[] {
  if (sent.size === 0) return commands;
  return commands.flatMap((c): Command[] => {
    if (c.type !== 'DispatchTask') return [c];
    const attempts = c.attempts.filter((attempt) => !sent.has(attempt.id));
    return attempts.length === 0 ? [] : [{ ...c, attempts }];
  });
}

/** A result of an attempt whose dispatch the run's state does not record yet: handed over again later. */
export function earlyError(attemptId: string): MemoflowError {
  return new MemoflowError('RESULT_EARLY', `the result of attempt ${attemptId} came before its dispatch was recorded; it is taken again later`, { retryable: true });
}
