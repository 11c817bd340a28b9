import type { ErrorInfo } from '../../errors.js';
import type { CacheEntry, CacheEntryKind } from '../../ports/cache-catalog.js';
import type { AttemptResult } from '../../ports/task-dispatcher.js';
import type { ReservationHolder } from '../../ports/cache-reservations.js';
import type { ShadowLookup } from './commands.js';

/** One node's outcome of a batched catalog lookup. */
export type LookupOutcome = { nodeId: string; key: string; kind: CacheEntryKind; afterReservation?: true; shadow?: ShadowLookup } & (
  | { outcome: 'hit'; entry: CacheEntry }
  | { outcome: 'miss' }
  | { outcome: 'corrupt'; reason: string }
  | { outcome: 'failure'; reason: string }
);

/** One entry a WriteCache command wrote: a node's output, or a dynamic node's future. */
export interface CacheWrite {
  nodeId: string;
  kind: CacheEntryKind;
}

/** What the effect layer feeds back into `decide`. Stale events (for a node that moved on) are ignored. */
export type RunEvent =
  /** Nothing happened but the run should be advanced (start, recovery). */
  | { type: 'run:tick' }
  /**
   * Cancel the run (Controller.cancel): `error` is the RUN_CANCELLED error its request recorded.
   * Also decided without this event whenever the loaded run carries the request (cancelRequestOf).
   */
  | { type: 'run:cancel'; error: ErrorInfo }
  | { type: 'cache:looked-up'; results: LookupOutcome[] }
  | { type: 'attempt:finished'; result: AttemptResult }
  | { type: 'cache:written'; writes: CacheWrite[]; ok: true }
  | { type: 'cache:written'; writes: CacheWrite[]; ok: false; reason: string }
  | { type: 'reservation:answered'; answers: ReservationAnswer[] }
  /** The shell heard that a reservation a WAITING node waits on is free (released, or expired), or its backstop poll came due. */
  | { type: 'reservation:released'; nodeId: string; key: string };

/** What AcquireReservations found for one node: its key's reservation is its own, held by another, or the catalog failed. */
export type ReservationAnswer = { nodeId: string; key: string } & ({ outcome: 'acquired' } | { outcome: 'held'; holder: ReservationHolder } | { outcome: 'failure'; reason: string });
