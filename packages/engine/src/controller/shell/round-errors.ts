import { MemoflowError, sqlState } from '../../errors.js';
import type { RunEvent } from '../vocabulary/events.js';

/**
 * Why a controller round failed, and so what to do about it (robustness issue, item 1). A round that
 * fails is not acted on, so retrying it is always safe; the question is whether retrying can help.
 * - `temporary`: the store is unreachable, restarting, or lost a race it should have reported as
 *   such. Retry with backoff, forever: a Postgres outage must not fail runs.
 * - `unknown-run`: the run is not in this store (a result for a run of another schema sharing the
 *   Redis prefix, or one deleted). Nothing here can ever take it: acknowledge and drop.
 * - `permanent`: `decide` threw (a bug, which the same events would hit again), or the store refused
 *   the data itself (Postgres SQLSTATE class 22 data exception, 54 program limit exceeded). The
 *   events are isolated and, one by one, turned into what can be recorded (a failed attempt, a
 *   failed lookup or write) or dropped with an error naming them.
 */
export type RoundFailure = 'temporary' | 'unknown-run' | 'permanent';

/** Thrown by the shell around `decide`, so a bug in the decision is never mistaken for a store outage. */
export class DecisionError extends Error {
  constructor(cause: unknown) {
    super(`the decision function threw: ${describeError(cause)}`, { cause });
    this.name = 'DecisionError';
  }
}

export function classifyRoundError(error: unknown): RoundFailure {
  if (error instanceof DecisionError) return 'permanent';
  if (error instanceof MemoflowError && error.code === 'RUN_NOT_FOUND') return 'unknown-run';
  const state = sqlState(error);
  if (state !== undefined && (state.startsWith('22') || state.startsWith('54'))) return 'permanent';
  return 'temporary';
}


/**
 * What an event that cannot be recorded becomes, so its node still moves on: a task result turns
 * into a non-retryable failure saying why, a lookup into lookup failures (the node executes), a
 * write into a failed write (retried, then PUT_FAILURE). Null: drop it (a tick, or an event already
 * in that form).
 */
export function recordableReplacement(event: RunEvent, reason: string): RunEvent | null {
  switch (event.type) {
    case 'attempt:finished': {
      const { result } = event;
      // The event may be malformed (that may be why it failed): read it defensively.
      if (!result.ok && (result.error as { code?: unknown } | undefined)?.code === 'RESULT_NOT_RECORDED') return null;
      const { attemptId, runId, nodeId, attempt, startedAt, finishedAt } = result;
      return {
        type: 'attempt:finished',
        result: { attemptId, runId, nodeId, attempt, startedAt, finishedAt, ok: false, error: { name: 'ResultNotRecorded', code: 'RESULT_NOT_RECORDED', message: `the attempt's result could not be recorded: ${reason}`, retryable: false } },
      };
    }
    case 'cache:looked-up':
      if (!Array.isArray(event.results) || event.results.every((r) => r.outcome === 'failure')) return null;
      // Each lookup stays what it was (a shadow lookup, one made holding the reservation): only its outcome fails.
      return { type: 'cache:looked-up', results: event.results.map(({ nodeId, key, kind, afterReservation, shadow }) => ({ nodeId, key, kind, ...(afterReservation === true ? { afterReservation } : {}), ...(shadow === undefined ? {} : { shadow }), outcome: 'failure', reason: `the lookup's result could not be recorded: ${reason}` })) };
    case 'cache:written':
      return event.ok ? { type: 'cache:written', writes: event.writes, ok: false, reason } : null;
    case 'reservation:answered':
      // The nodes execute without their reservations rather than hang.
      if (!Array.isArray(event.answers) || event.answers.every((a) => a.outcome === 'failure')) return null;
      return { type: 'reservation:answered', answers: event.answers.map(({ nodeId, key }) => ({ nodeId, key, outcome: 'failure', reason: `the reservation's answer could not be recorded: ${reason}` })) };
    case 'reservation:released':
    case 'run:tick':
      return null; // a waiter's backstop poll asks again; a tick changes nothing
    case 'run:cancel':
      // A cancel request is on the run row: dropping the event loses nothing, the next load cancels.
      return null;
  }
}

export function describeEvent(event: RunEvent): string {
  switch (event.type) {
    case 'attempt:finished':
      return `the result of attempt ${event.result.attemptId}`;
    case 'cache:looked-up':
      return `lookup results for ${[...new Set(event.results.map((r) => r.nodeId))].join(', ')}`;
    case 'cache:written':
      return `cache write results for ${event.writes.map((w) => w.nodeId).join(', ')}`;
    case 'reservation:answered':
      return `reservation answers for ${event.answers.map((a) => a.nodeId).join(', ')}`;
    case 'reservation:released':
      return `the release of the reservation node ${event.nodeId} waits on`;
    case 'run:tick':
      return 'a tick';
    case 'run:cancel':
      return 'a cancel request';
  }
}

/**
 * One line: the error's message and, where it has one, its cause's, cut to 500 characters. A
 * MemoflowError's message already says why (the catalog's CATALOG_ERROR names the driver's cause and
 * code), so its cause is not repeated: for a store error that cause is drizzle's "Failed query:
 * <the whole statement> params: ...", which made every round-failed warning 600+ characters of SQL.
 */
export function describeError(error: unknown): string {
  let text = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && !(error instanceof MemoflowError) ? error.cause : undefined;
  if (cause instanceof Error && !text.includes(cause.message)) text += ` (cause: ${cause.message})`;
  text = text.replace(/\s+/g, ' ');
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** Backoff for temporary round failures: 500 ms doubling to 10 s. */
export function roundRetryDelayMs(failures: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, failures - 1));
}
