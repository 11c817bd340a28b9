import type { CacheCatalog } from '../../ports/cache-catalog.js';
import type { ReleasedReservation, ReleaseSubscription, ReservationRelease } from '../../ports/cache-reservations.js';
import type { Clock } from '../../ports/clock.js';
import type { EngineEvent, ReservationAsk } from '../vocabulary/commands.js';
import type { ReservationAnswer } from '../vocabulary/events.js';
import { withinDeadline } from './call-deadlines.js';

export interface ReservationKeeperOptions {
  /** How long a reservation lasts without a heartbeat: how soon a dead owner's waiters take over (default 30 s). */
  ttlMs?: number;
  /** The backstop: a waiter asks again this often even if it heard nothing (default 3 s). */
  pollMs?: number;
  /**
   * How long subscribing to releases may take before waiters fall back to polling (default: no
   * limit). A subscription that arrives later is closed: nothing listens to it.
   */
  subscribeTimeoutMs?: number;
}

/** Once a holder's expiry has passed by our clock but not by the catalog's, ask again no sooner than this. */
const MIN_RETRY_MS = 250;

interface Watch {
  onFree: () => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The shell's side of `cache.serialize`, one per controller (shared by its run drivers, and alive
 * while a driver idles): acquires for the drivers, heartbeats the reservations it acquired while
 * their nodes execute (one statement for all, every ttl/3), releases them, and tells a driver when
 * the reservation one of its WAITING nodes waits on may be free: on the catalog's release
 * notification, at the holder's expiry (its process may have died: no one releases then), or on the
 * backstop poll, whichever comes first.
 *
 * A release heard between an acquire's statement and its watch being set is not lost: the keeper
 * subscribes before the first acquire and remembers, by a sequence number, which keys were
 * released since each acquire began.
 */
export class ReservationKeeper {
  readonly ttlMs: number;
  readonly #pollMs: number;
  /** Owners whose reservations this controller acquired and has not released: heartbeated. */
  readonly #held = new Set<string>();
  readonly #watches = new Map<string, Set<Watch>>();
  /** The sequence number of the last release heard, per key (kept for a minute). */
  readonly #heard = new Map<string, { seq: number; at: number }>();
  #seq = 0;
  #subscription: Promise<ReleaseSubscription | undefined> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #subscribeTimeoutMs: number | undefined;

  constructor(
    private readonly catalog: CacheCatalog,
    private readonly clock: Clock,
    private readonly emit: (event: EngineEvent) => void,
    options: ReservationKeeperOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 30_000;
    this.#pollMs = options.pollMs ?? 3_000;
    this.#subscribeTimeoutMs = options.subscribeTimeoutMs;
  }

  /** Owners heartbeated now (for tests and diagnostics). */
  get heldOwners(): readonly string[] {
    return [...this.#held];
  }

  /**
   * One statement for all the requests. Never rejects: a failing catalog answers `failure` (the node
   * executes without a reservation). Held answers get a watch that calls `onFree(answer)` once.
   */
  async acquire(requests: readonly ReservationAsk[], onFree: (answer: ReservationAnswer) => void): Promise<ReservationAnswer[]> {
    await this.#subscribe();
    const mark = this.#seq;
    let answers: ReservationAnswer[];
    try {
      const outcomes = await this.catalog.acquireReservations(requests.map((r) => ({ ...r, ttlMs: this.ttlMs })));
      answers = outcomes.map((outcome, i): ReservationAnswer => {
        const nodeId = requests[i]?.nodeId ?? '';
        if (outcome.outcome === 'acquired') return { nodeId, key: outcome.key, outcome: 'acquired' };
        return { nodeId, key: outcome.key, outcome: 'held', holder: outcome.holder };
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return requests.map((r) => ({ nodeId: r.nodeId, key: r.key, outcome: 'failure', reason }));
    }
    for (const [i, answer] of answers.entries()) {
      const request = requests[i];
      if (request === undefined || this.#closed) continue;
      if (answer.outcome === 'acquired') this.#hold(request.owner);
      if (answer.outcome === 'held') this.#watch(request.key, answer.holder.expiresAt, mark, () => onFree(answer));
    }
    return answers;
  }

  /** One statement; a failure only warns (the reservations expire within one lease). */
  async release(releases: readonly ReservationRelease[], runId: string, workflow: string): Promise<void> {
    for (const release of releases) this.#held.delete(release.owner);
    if (this.#held.size === 0) this.#stopHeartbeat();
    try {
      await this.catalog.releaseReservations(releases);
    } catch (error) {
      this.emit({ type: 'controller:round-failed', level: 'warn', runId, workflow, message: `releasing ${releases.length} reservation(s) failed; they expire within ${this.ttlMs} ms: ${error instanceof Error ? error.message : String(error)}` });
    }
  }

  /** Extends every reservation held here; owners the catalog no longer has as theirs are dropped. */
  async heartbeat(): Promise<void> {
    const owners = [...this.#held];
    if (owners.length === 0) return;
    const extended = new Set(await this.catalog.extendReservations(owners, this.ttlMs));
    for (const owner of owners) if (!extended.has(owner)) this.#held.delete(owner);
  }

  /** Wakes every waiter at once (what the backstop poll does). */
  pollNow(): void {
    for (const key of [...this.#watches.keys()]) this.#fire(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopHeartbeat();
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
    for (const watches of this.#watches.values()) for (const watch of watches) clearTimeout(watch.timer);
    this.#watches.clear();
    const subscription = await this.#subscription?.catch(() => undefined);
    await subscription?.close().catch(() => undefined);
  }

  #hold(owner: string): void {
    this.#held.add(owner);
    if (this.#heartbeat !== undefined) return;
    this.#heartbeat = setInterval(() => {
      this.heartbeat().catch((error: unknown) => {
        this.emit({ type: 'controller:round-failed', level: 'warn', runId: '-', workflow: '-', message: `extending ${this.#held.size} reservation(s) failed, retrying: ${error instanceof Error ? error.message : String(error)}` });
      });
    }, Math.max(10, Math.floor(this.ttlMs / 3)));
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #watch(key: string, expiresAt: Date, mark: number, onFree: () => void): void {
    const heard = this.#heard.get(key);
    if (heard !== undefined && heard.seq > mark) {
      queueMicrotask(onFree); // released while the acquire was on its way
      return;
    }
    const watch: Watch = { onFree, timer: undefined };
    const delay = Math.max(MIN_RETRY_MS, expiresAt.getTime() - this.clock.now().getTime());
    watch.timer = setTimeout(() => this.#fireOne(key, watch), delay);
    watch.timer.unref();
    const watches = this.#watches.get(key) ?? new Set();
    watches.add(watch);
    this.#watches.set(key, watches);
    if (this.#poll === undefined) {
      this.#poll = setInterval(() => this.pollNow(), this.#pollMs);
      this.#poll.unref();
    }
  }

  #fire(key: string): void {
    const watches = this.#watches.get(key);
    if (watches === undefined) return;
    for (const watch of watches) this.#fireOne(key, watch);
  }

  #fireOne(key: string, watch: Watch): void {
    const watches = this.#watches.get(key);
    if (watches?.delete(watch) !== true) return;
    clearTimeout(watch.timer);
    if (watches.size === 0) this.#watches.delete(key);
    if (this.#watches.size === 0 && this.#poll !== undefined) {
      clearInterval(this.#poll);
      this.#poll = undefined;
    }
    watch.onFree();
  }

  #onRelease(released: ReleasedReservation): void {
    const now = Date.now();
    this.#heard.set(released.key, { seq: ++this.#seq, at: now });
    if (this.#heard.size > 10_000) for (const [key, { at }] of this.#heard) if (now - at > 60_000) this.#heard.delete(key);
    this.#fire(released.key);
  }

  /** Subscribes once, before the first acquire; a catalog that cannot listen leaves waiters to the backstop. */
  #subscribe(): Promise<ReleaseSubscription | undefined> {
    if (this.#subscription !== undefined) return this.#subscription;
    const watching = this.catalog.watchReleases((released) => this.#onRelease(released));
    const timeoutMs = this.#subscribeTimeoutMs;
    const within = timeoutMs === undefined ? watching : withinDeadline(watching, timeoutMs, 'catalog.watchReleases', (late) => void late.close().catch(() => undefined));
    this.#subscription = within.catch((error: unknown) => {
      this.emit({ type: 'controller:round-failed', level: 'warn', runId: '-', workflow: '-', message: `listening for reservation releases failed; waiters poll every ${this.#pollMs} ms: ${error instanceof Error ? error.message : String(error)}` });
      return undefined;
    });
    return this.#subscription;
  }
}
