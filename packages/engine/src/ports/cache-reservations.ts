import type { CacheEntryKind } from './cache-catalog.js';
import { attemptId } from './task-dispatcher.js';

/*
 * Reservations (DESIGN.md "Cache controls", `cache: { serialize: true }`, Flyte's cache_serialize):
 * before a serialized node executes after a miss, it takes a reservation on its key in the catalog,
 * so concurrent executions with that key (in any runs, or in one run) run the body once. The owner
 * is the node execution's attempt id (its first attempt's; retries keep the reservation). The
 * reservation lasts until its expiry, extended by the driving controller's heartbeats while the
 * attempt runs, and is released when the node ends (success, after its entry is written; failure;
 * cancel). A reservation whose owner died simply expires, and the next acquirer takes it over.
 *
 * Expiry is a time of the catalog's clock (the database's `now()` unless the catalog was given a
 * clock), as run leases are: callers give durations only, so controllers whose clocks disagree
 * agree on expiry.
 */

/** One reservation asked for. */
export interface ReservationRequest {
  key: string;
  kind: CacheEntryKind;
  /** Who asks: the node's attempt id (`reservationOwner`). */
  owner: string;
  /** Provenance, for whoever finds it held: the run and node that own it. */
  runId: string;
  nodeId: string;
  /** The reservation lasts this long from the catalog's now. */
  ttlMs: number;
}

/** Who holds a reservation, as a waiter is told. */
export interface ReservationHolder {
  owner: string;
  runId: string;
  nodeId: string;
  expiresAt: Date;
}

/**
 * What `acquireReservations` found for one request: `acquired` (it is the caller's until
 * `expiresAt`: it was free, expired, or already the caller's), or `held` by another owner.
 */
export type ReservationOutcome = { key: string; kind: CacheEntryKind; owner: string } & ({ outcome: 'acquired'; expiresAt: Date } | { outcome: 'held'; holder: ReservationHolder });

/** One reservation to give up: freed only if `owner` still holds it. */
export interface ReservationRelease {
  key: string;
  kind: CacheEntryKind;
  owner: string;
}

/** A reservation that was released (its key is free): what waiters are told. */
export interface ReleasedReservation {
  key: string;
  kind: CacheEntryKind;
}

/** A live subscription to releases; `close` stops it (idempotent). */
export interface ReleaseSubscription {
  close(): Promise<void>;
}

/**
 * The reservation half of the CacheCatalog port. Every method is one statement whatever the batch.
 */
export interface CacheReservations {
  /**
   * One atomic statement: for each request, creates the reservation if the key (and kind) has none,
   * or takes it over if it has expired or is already `owner`'s (re-acquiring renews it), and reports
   * it acquired; otherwise reports its holder. Of several racing callers exactly one acquires.
   * Outcomes are in the requests' order (a key + kind asked twice is answered twice alike).
   */
  acquireReservations(requests: readonly ReservationRequest[]): Promise<ReservationOutcome[]>;
  /**
   * The heartbeat, one statement for all: extends to now + ttl every reservation held by one of
   * `owners` (expired or not: an expired reservation nobody took is still its owner's), and returns
   * the owners it extended. An owner missing from the answer lost its reservation (taken over, or released).
   */
  extendReservations(owners: readonly string[], ttlMs: number): Promise<string[]>;
  /**
   * One statement: frees each reservation its `owner` still holds (another owner's is untouched),
   * and tells the release subscribers, in every process, which keys are free.
   */
  releaseReservations(releases: readonly ReservationRelease[]): Promise<void>;
  /**
   * Calls `listener` for every reservation released from now on, by anyone (Postgres: LISTEN/NOTIFY
   * on this catalog's schema; in process: at once). Best effort: a notification can be lost (a
   * dropped connection), and an expiry is never announced, so waiters also poll (the shell's backstop).
   */
  watchReleases(listener: (released: ReleasedReservation) => void): Promise<ReleaseSubscription>;
}

/** The owner id of a node's reservation: its first attempt's id (a node reserves before its first attempt; retries keep it). */
export function reservationOwner(runId: string, nodeId: string): string {
  return attemptId(runId, nodeId, 1);
}
