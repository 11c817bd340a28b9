import { MemoflowError } from '../../errors.js';
import type { Clock } from '../../ports/clock.js';
import type { LeaseOutcome } from '../../ports/run-store.js';
import type { AttemptResult, TaskDispatcher } from '../../ports/task-dispatcher.js';
import type { RunDriver } from './run-driver.js';
import { routeToOwner } from './run-routing.js';

/** What delivering results needs of its controller. */
export interface ResultDeliveryContext {
  closed(): boolean;
  /** Whether this controller holds the run's lease. */
  owns(runId: string): boolean;
  driver(runId: string): RunDriver;
  /** Leases the run if it is free or expired, and continues it here (Controller.takeOver). */
  takeOver(runId: string): Promise<LeaseOutcome>;
  warn(runId: string, message: string): void;
  route: { dispatcher: TaskDispatcher; self: string; ttlMs: number; clock: Clock };
}

/**
 * Settles a batch per run: each run's results go to its driver as one set of events (one round,
 * one save), and each result's promise is its run's. A run whose save fails or stalls holds back
 * only its own results' acknowledgements. A run this controller does not own is taken over if
 * its lease is free or expired, else its results are routed to its owner one by one, or refused
 * (RUN_LEASED, retryable, with when to try again) so the transport keeps them. A result is
 * acknowledged only once its effect is saved or it is with the owner.
 */
export function deliverResults(results: readonly AttemptResult[], context: ResultDeliveryContext): Promise<void>[] {
  if (context.closed()) return results.map(() => Promise.reject(closedError()));
  const byRun = new Map<string, number[]>();
  results.forEach((result, index) => {
    const list = byRun.get(result.runId);
    if (list === undefined) byRun.set(result.runId, [index]);
    else list.push(index);
  });
  const settled = new Array<Promise<void>>(results.length);
  for (const [runId, indexes] of byRun) {
    const list = indexes.map((index) => results[index] as AttemptResult);
    let promises: Promise<void>[];
    if (context.owns(runId)) {
      promises = context.driver(runId).deliverAll(events(list));
    } else {
      promises = deliverUnowned(runId, list, context);
    }
    indexes.forEach((index, at) => {
      settled[index] = promises[at] as Promise<void>;
    });
  }
  return settled;
}

/** A run this controller does not own: taken over (then its results are driven here), or its results routed one by one. */
function deliverUnowned(runId: string, list: readonly AttemptResult[], context: ResultDeliveryContext): Promise<void>[] {
  const outcome = context.takeOver(runId).then((leased) => {
    // Closed meanwhile: not acknowledged, so the transport hands them to another controller.
    if (context.closed()) throw closedError();
    return leased;
  });
  let delivered: Promise<void>[] | undefined;
  const deliverOnce = (leased: Exclude<LeaseOutcome, { kind: 'held' }>): Promise<void>[] => {
    if (delivered !== undefined) return delivered;
    if (leased.kind === 'missing') {
      const attempts = list.map((result) => result.attemptId).join(', ');
      context.warn(runId, `run '${runId}' is not in this store (another schema sharing the Redis prefix?): the results of attempts ${attempts} acknowledged and dropped`);
    }
    // A finished run has nothing left to change.
    delivered = leased.kind === 'acquired' ? context.driver(runId).deliverAll(events(list)) : list.map(() => Promise.resolve());
    return delivered;
  };
  const { clock, ...route } = context.route;
  return list.map((result, at) => outcome.then((leased) => (leased.kind === 'held' ? routeToOwner(result, leased, { ...route, now: clock.now() }) : deliverOnce(leased)[at])));
}

function events(results: readonly AttemptResult[]): { type: 'attempt:finished'; result: AttemptResult }[] {
  return results.map((result) => ({ type: 'attempt:finished', result }));
}

export function closedError(): MemoflowError {
  return new MemoflowError('STALE_STATE', 'controller is closed', { retryable: true });
}
