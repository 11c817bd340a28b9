import type { EngineEvent } from '../vocabulary/commands.js';
import type { RunEvent } from '../vocabulary/events.js';
import { classifyRoundError, describeError, describeEvent, recordableReplacement, roundRetryDelayMs } from './round-errors.js';

/** An event waiting in a driver's inbox, with how its transport learns its fate. */
export interface Inbound {
  event: RunEvent;
  /** Resolved once the event's effect is saved (so a transport may acknowledge it). */
  persisted?: () => void;
  /** Rejected when the driver closes before saving it (so a transport may redeliver it). */
  dropped?: (error: Error) => void;
}

/** What a driver does after a failed round (`sortRoundFailure`). */
export interface RoundFailureVerdict {
  /** `retry`: wait `roundRetryDelayMs(failures)`, then go on; `next`: go on at once. */
  next: 'retry' | 'next';
  /** Put back at the head of the inbox, in this order. */
  requeue: Inbound[];
  /** How many of the requeued events to decide one at a time. */
  isolate: number;
  /** Acknowledged and dropped. */
  acknowledge: Inbound[];
  /** The run is not in this store: nothing here will ever take its events (the inbox's rest is acknowledged too). */
  unknownRun: boolean;
  /** The state the failed round saw is not to be trusted: read the store afresh. */
  discard: boolean;
  warning: { level: EngineEvent['level']; message: string };
}

/**
 * Sorts a failed round (see round-errors.ts): temporary failures are retried with backoff;
 * events for a run this store does not have are acknowledged and dropped; a permanent failure is
 * isolated to single events, and a single event that still fails is replaced by what can be
 * recorded (its node fails, or its lookup or write counts as failed) or dropped, saying so.
 */
export function sortRoundFailure(runId: string, batch: readonly Inbound[], error: unknown, failures: number): RoundFailureVerdict {
  const verdict = (fields: Partial<RoundFailureVerdict> & Pick<RoundFailureVerdict, 'warning'>): RoundFailureVerdict => ({
    next: 'next',
    requeue: [],
    isolate: 0,
    acknowledge: [],
    unknownRun: false,
    discard: false,
    ...fields,
  });
  const kind = classifyRoundError(error);
  if (kind === 'temporary') {
    const message = `controller round failed: ${describeError(error)}; retrying in ${roundRetryDelayMs(failures)} ms (attempt ${failures})`;
    return verdict({ next: 'retry', requeue: [...batch], warning: { level: 'warn', message } });
  }
  if (kind === 'unknown-run') {
    const message = `run '${runId}' is not in this store (another schema sharing the Redis prefix?): ${batch.length} event(s) acknowledged and dropped`;
    return verdict({ acknowledge: [...batch], unknownRun: true, warning: { level: 'warn', message } });
  }
  if (batch.length > 1) {
    const message = `controller round failed permanently: ${describeError(error)}; deciding its ${batch.length} events one at a time`;
    return verdict({ requeue: [...batch], isolate: batch.length, discard: true, warning: { level: 'error', message } });
  }
  const [item] = batch as [Inbound];
  const replacement = recordableReplacement(item.event, describeError(error));
  if (replacement === null) {
    return verdict({ acknowledge: [item], discard: true, warning: { level: 'error', message: `${describeEvent(item.event)} could not be recorded and was dropped: ${describeError(error)}` } });
  }
  // The replacement takes the original's place, acknowledging it once recorded.
  const message = `${describeEvent(item.event)} could not be recorded (${describeError(error)}); recording it as failed instead`;
  return verdict({ requeue: [{ ...item, event: replacement }], isolate: 1, discard: true, warning: { level: 'error', message } });
}
