import type { CacheStatus } from '../../state/cache-status.js';
import type { NodePhase } from '../../state/node-phase.js';
import type { ErrorInfo } from '../../errors.js';
import type { CacheEntryKind, NewCacheEntry } from '../../ports/cache-catalog.js';
import type { CacheWrite } from './events.js';
import type { AttemptToCancel, TaskAttempt } from '../../ports/task-dispatcher.js';
import type { ReservationRelease, ReservationRequest } from '../../ports/cache-reservations.js';

/** What a node or run did, for logs and the event stream. Names are `noun:verb`. */
export type EngineEventType =
  | 'node:cache-hit'
  | 'node:waiting'
  | 'node:started'
  | 'node:retrying'
  | 'node:succeeded'
  | 'node:cache-written'
  | 'node:failed'
  | 'node:aborted'
  | 'node:cancelled'
  | 'node:expanded'
  | 'node:cache-corrupt'
  | 'node:dispatch-failed'
  | 'node:recovered'
  | 'run:reuse-planned'
  | 'run:succeeded'
  | 'run:failed'
  | 'run:cancelled'
  /** This controller leased a running run that was free or whose lease had expired, and continues it. */
  | 'run:taken-over'
  /** Another controller took over a run this one held (its lease had expired): it stops driving it. */
  | 'run:lease-lost'
  | 'controller:round-failed';

export interface EngineEvent {
  type: EngineEventType;
  level: 'info' | 'warn' | 'error';
  runId: string;
  workflow: string;
  nodeId?: string;
  task?: string;
  attempt?: number;
  cacheStatus?: CacheStatus | null;
  cacheReason?: string | null;
  cacheKey?: string | null;
  /**
   * The node's phase once the event happened: a terminal one (succeeded, failed, aborted,
   * cancelled) says the node has settled, so a log can print one line per node (a cached node
   * settles when its entry is written, after its `node:succeeded` in phase `writing`).
   */
  phase?: NodePhase;
  durationMs?: number;
  /** `node:cache-hit`: the compute the entry recorded, which the hit saved; null: unknown (an entry of an earlier release). */
  savedMs?: number | null;
  error?: ErrorInfo;
  message?: string;
  /** `run:reuse-planned`: what a resumed or retried run expects to reuse and to run (top-level nodes). */
  plan?: ReusePreview;
}

/** A resumed or retried run's plan as printed before it starts (see core/reuse-preview.ts). */
export interface ReusePreview {
  fromRun: string;
  reason: 'resume' | 'retry';
  /** Nodes whose earlier results are reused (with their children). */
  reuse: string[];
  /** Nodes that run (the resume point, what failed, what changed, and their downstream). */
  run: string[];
}

/**
 * The effects `decide` asks for: a closed union, at most one of each kind per decision, so a round
 * costs one catalog lookup, one dispatch and one catalog write however many nodes it touches.
 */
export type Command =
  | { type: 'LookupCache'; lookups: CacheLookup[] }
  | { type: 'DispatchTask'; attempts: TaskAttempt[] }
  | { type: 'WriteCache'; writes: CacheWrite[]; entries: NewCacheEntry[] }
  | { type: 'EmitEvent'; event: EngineEvent }
  /**
   * The run was cancelled: stop these attempts wherever they run (their signals abort; queued ones
   * never start). Best effort: an attempt that finishes anyway has its result dropped, since the
   * run is over. (Reservations of cancelled serialized nodes are released beside this: see
   * core/cancel.ts, `nodeCancelled`.)
   */
  | { type: 'CancelAttempts'; attempts: AttemptToCancel[] }
  /** Serialized nodes that missed: take their keys' reservations (answered by `reservation:answered`). */
  | { type: 'AcquireReservations'; requests: ReservationAsk[] }
  /** Nodes that may hold a reservation ended: free them (a reservation no longer theirs is untouched). */
  | { type: 'ReleaseReservations'; releases: ReservationRelease[] };

/** A reservation `decide` asks for; the shell adds the duration (its lease setting). */
export type ReservationAsk = Omit<ReservationRequest, 'ttlMs'>;

/** One key to look up: a node's output, or (dynamic nodes) its future. */
export interface CacheLookup {
  nodeId: string;
  key: string;
  kind: CacheEntryKind;
  /** A serialized node looking up again once it holds its key's reservation: a miss now executes. */
  afterReservation?: true;
  /**
   * A shadow lookup (the early-cutoff report, core/cutoff.ts): a node the cascade reran, looking up
   * its own key only to report whether it would have hit had `upstream`'s output been
   * content-hashed. Its outcome never changes the node's status or what runs.
   */
  shadow?: ShadowLookup;
}

/** What a shadow lookup reports on: the upstream node whose rerun cascaded into the node. */
export interface ShadowLookup {
  upstream: string;
}
