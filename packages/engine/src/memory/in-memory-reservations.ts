import type { CacheEntryKind } from '../ports/cache-catalog.js';
import type { Clock } from '../ports/clock.js';
import type {
  CacheReservations,
  ReleasedReservation,
  ReleaseSubscription,
  ReservationOutcome,
  ReservationRelease,
  ReservationRequest,
} from '../ports/cache-reservations.js';

interface StoredReservation {
  owner: string;
  runId: string;
  nodeId: string;
  expiresAtMs: number;
}

/**
 * Reservations in process memory with the semantics of the SQL catalog's (the same contract suite):
 * acquire creates, takes over an expired one or renews the caller's own; release frees only the
 * owner's and tells every watcher at once (synchronously, after the change).
 */
export class InMemoryReservations implements CacheReservations {
  readonly #reservations = new Map<string, StoredReservation>();
  readonly #listeners = new Set<(released: ReleasedReservation) => void>();

  constructor(
    private readonly clock: Clock,
    /** Throws the scripted failure of a method, if any (InMemoryCacheCatalog.failNext). */
    private readonly check: (method: 'acquireReservations' | 'extendReservations' | 'releaseReservations') => void = () => undefined,
  ) {}

  async acquireReservations(requests: readonly ReservationRequest[]): Promise<ReservationOutcome[]> {
    await Promise.resolve();
    this.check('acquireReservations');
    const now = this.clock.now().getTime();
    return requests.map((request): ReservationOutcome => {
      const id = identity(request.kind, request.key);
      const current = this.#reservations.get(id);
      const base = { key: request.key, kind: request.kind, owner: request.owner };
      if (current === undefined || current.expiresAtMs <= now || current.owner === request.owner) {
        const expiresAtMs = now + request.ttlMs;
        this.#reservations.set(id, { owner: request.owner, runId: request.runId, nodeId: request.nodeId, expiresAtMs });
        return { ...base, outcome: 'acquired', expiresAt: new Date(expiresAtMs) };
      }
      return { ...base, outcome: 'held', holder: { owner: current.owner, runId: current.runId, nodeId: current.nodeId, expiresAt: new Date(current.expiresAtMs) } };
    });
  }

  async extendReservations(owners: readonly string[], ttlMs: number): Promise<string[]> {
    await Promise.resolve();
    this.check('extendReservations');
    const wanted = new Set(owners);
    const expiresAtMs = this.clock.now().getTime() + ttlMs;
    const extended = new Set<string>();
    for (const reservation of this.#reservations.values()) {
      if (!wanted.has(reservation.owner)) continue;
      reservation.expiresAtMs = expiresAtMs;
      extended.add(reservation.owner);
    }
    return [...extended];
  }

  async releaseReservations(releases: readonly ReservationRelease[]): Promise<void> {
    await Promise.resolve();
    this.check('releaseReservations');
    const released: ReleasedReservation[] = [];
    for (const release of releases) {
      const id = identity(release.kind, release.key);
      if (this.#reservations.get(id)?.owner !== release.owner) continue;
      this.#reservations.delete(id);
      released.push({ key: release.key, kind: release.kind });
    }
    for (const reservation of released) for (const listener of this.#listeners) listener(reservation);
  }

  async watchReleases(listener: (released: ReleasedReservation) => void): Promise<ReleaseSubscription> {
    await Promise.resolve();
    // A wrapper of our own, so the same listener subscribed twice is two subscriptions.
    const subscribed = (released: ReleasedReservation) => listener(released);
    this.#listeners.add(subscribed);
    return {
      close: async () => {
        this.#listeners.delete(subscribed);
      },
    };
  }
}

function identity(kind: CacheEntryKind, key: string): string {
  return `${kind}\u0000${key}`;
}
