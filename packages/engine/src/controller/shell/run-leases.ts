import type { LeaseOutcome, RunStore } from '../../ports/run-store.js';

export interface RunLeasesOptions {
  store: RunStore;
  /** The controller's id: the owner its leases are under. */
  owner: string;
  ttlMs: number;
  /** Whether the controller at that id is known to be gone (TaskDispatcher.isGone): its leases are taken at once. */
  isGone?: (owner: string) => boolean;
  /** Runs this controller held and another took over (its lease had expired before a heartbeat renewed it). */
  onLost: (runIds: string[]) => void;
  /** A heartbeat that failed (the store is down): the next one tries again. Must not throw. */
  onError: (error: unknown) => void;
}

/**
 * One controller's leases on runs (RunStore.acquireLease): which runs it owns, kept alive by one
 * heartbeat statement for all of them every third of the lease, so a lease survives two missed
 * heartbeats; released all at once on close. Owning a run is what lets a controller drive it: the
 * others route its results here (Flyte propeller's shards, with the shard being one run and the
 * assignment a lease instead of a fixed hash range, so a dead owner's runs move on their own).
 *
 * The set in memory may trail the store: a lease lost in a pause longer than the lease is noticed
 * at the next heartbeat. That is safe, because the run's version still decides every save.
 */
export class RunLeases {
  private readonly owned = new Set<string>();
  /** Acquisitions in flight, one per run: results of one run arriving together share it. */
  private readonly acquiring = new Map<string, Promise<LeaseOutcome>>();
  /** Runs whose create (with a lease under this id) is under way. */
  private readonly beingCreated = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private beat: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: RunLeasesOptions) {
    this.timer = setInterval(() => this.heartbeat(), Math.max(10, Math.floor(options.ttlMs / 3)));
    this.timer.unref();
  }

  get ttlMs(): number {
    return this.options.ttlMs;
  }

  /** Runs leased here as far as this controller knows. */
  get count(): number {
    return this.owned.size;
  }

  /** The runs leased here as far as this controller knows. */
  ids(): string[] {
    return [...this.owned];
  }

  owns(runId: string): boolean {
    return this.owned.has(runId);
  }

  /** A run is being created here with a lease (RunStore.create): the store may hold its lease before `created`. */
  creating(runId: string): void {
    this.beingCreated.add(runId);
  }

  /** A run created here with a lease (RunStore.create). */
  created(runId: string): void {
    this.beingCreated.delete(runId);
    if (!this.closed) this.owned.add(runId);
  }

  /** A create that failed: nothing of the run exists. */
  notCreated(runId: string): void {
    this.beingCreated.delete(runId);
  }

  /** The run is over: its lease is released with the next heartbeat (the store's renewal does it). */
  ended(runId: string): void {
    this.owned.delete(runId);
  }

  /**
   * Leases the run if it is free, expired, already this controller's, or held by a controller known
   * to be gone. Concurrent calls for one run share one statement (two if the holder is gone).
   */
  acquire(runId: string): Promise<LeaseOutcome> {
    let pending = this.acquiring.get(runId);
    if (pending === undefined) {
      pending = this.tryAcquire(runId).finally(() => this.acquiring.delete(runId));
      this.acquiring.set(runId, pending);
    }
    return pending;
  }

  /** The run is another controller's (a fenced save said so): no longer owned here. Returns whether it was. */
  forget(runId: string): boolean {
    return this.owned.delete(runId);
  }

  /** Gives a run back (this controller cannot drive it after all). */
  async release(runId: string): Promise<void> {
    this.owned.delete(runId);
    await this.options.store.releaseLeases(this.options.owner, [runId]);
  }

  /**
   * Stops renewing and frees every lease this controller holds in one statement, so the others take
   * its runs over at their next sweep instead of after the lease. If the store cannot be reached the
   * leases simply expire.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    // A lease being acquired now must not land after the release below.
    await Promise.allSettled([this.beat, ...this.acquiring.values()]);
    this.owned.clear();
    await this.options.store.releaseLeases(this.options.owner).catch((error: unknown) => this.options.onError(error));
  }

  private async tryAcquire(runId: string): Promise<LeaseOutcome> {
    const { store, owner, ttlMs, isGone } = this.options;
    let outcome = await store.acquireLease(runId, { owner, ttlMs });
    if (outcome.kind === 'held' && isGone?.(outcome.owner) === true) {
      outcome = await store.acquireLease(runId, { owner, ttlMs, replacing: outcome.owner });
    }
    if (outcome.kind === 'acquired' && !this.closed) this.owned.add(runId);
    return outcome;
  }

  private heartbeat(): void {
    if (this.beat !== null || this.closed) return;
    const before = new Set(this.owned);
    this.beat = this.options.store
      .renewLeases({ owner: this.options.owner, ttlMs: this.options.ttlMs })
      .then(async (held) => {
        const still = new Set(held);
        // Only runs owned before the statement began can have been lost; any acquired since are fresh.
        const lost = [...before].filter((runId) => !still.has(runId) && this.owned.delete(runId));
        if (lost.length > 0 && !this.closed) this.options.onLost(lost);
        // Leases the store holds under this id that this controller does not drive (a release that
        // failed; a takeover whose read failed): renewing them would keep every other controller
        // off those runs for good, so they are given back.
        const strays = held.filter((runId) => !this.owned.has(runId) && !this.acquiring.has(runId) && !this.beingCreated.has(runId));
        if (strays.length > 0 && !this.closed) await this.options.store.releaseLeases(this.options.owner, strays);
      })
      .catch((error: unknown) => this.options.onError(error))
      .finally(() => {
        this.beat = null;
      });
  }
}
