import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { MemoflowError } from '../../errors.js';
import { systemClock, type Clock } from '../../ports/clock.js';
import type { LeaseOutcome } from '../../ports/run-store.js';
import type { AttemptResult } from '../../ports/task-dispatcher.js';
import type { RunState } from '../../state/run-state.js';
import { RunDrivers } from './run-drivers.js';
import { prepareRun } from './prepare-run.js';
import { DecisionError } from './round-errors.js';
import { RunLeases } from './run-leases.js';
import { mayDrive, mayDrivePool } from './run-routing.js';
import { closedError, deliverResults } from './result-delivery.js';
import { planEvent } from './reuse-submit.js';
import { CancelWatch } from './cancel-watch.js';
import { DEFAULT_CALL_TIMEOUT_MS, withStoreDeadlines } from './call-deadlines.js';
import { OrphanWatch } from './orphan-watch.js';
import { cancelError, type CancelRequestOutcome } from '../../state/cancel-request.js';
import type { ErrorInfo } from '../../errors.js';
import { ReservationKeeper } from './reservation-keeper.js';
import { RunTracing } from './run-tracing.js';
import { CREATE_DEFER_MS, createDeferMs, DEFAULT_LEASE_MS, type ControllerOptions, type SubmitRequest } from './controller-options.js';

import { closedWhileWaiting, RunWaiters } from './run-waiters.js';

export { CREATE_DEFER_MS, createDeferMs, DEFAULT_LEASE_MS, type ControllerOptions, type SubmitRequest };

/**
 * Walks runs' DAGs: creates runs, drives each through rounds of decide/save/act, and routes task
 * results to the run they belong to. Holds no state that is not in the run store, so any controller
 * can continue any run; but a running run has one owner at a time, the holder of its lease
 * (RunLeases): a controller drives only the runs it owns, hands results of other runs to their
 * owner (`TaskDispatcher.route`), and takes a run over only once its lease is free or expired (its
 * owner closed or died), at a result for it, a sweep (`recoverUnowned`), a `wait` or a cancel.
 */
export class Controller {
  /** This controller's id: the owner its leases are under, and its dispatcher's address. */
  readonly id: string;
  private readonly leases: RunLeases;
  private readonly drivers: RunDrivers;
  private readonly waiters: RunWaiters;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly takingOver = new Map<string, Promise<LeaseOutcome>>();
  private readonly evictor: NodeJS.Timeout;
  private readonly cancelWatch: CancelWatch;
  /** Attempts stopped drivers had sent unrecorded: cancelled once their run ends (orphan-watch.ts). */
  private readonly orphanWatch: OrphanWatch;
  private readonly clock: Clock;
  private readonly reservations: ReservationKeeper;
  /** The OpenTelemetry spans of the runs driven here (free with no SDK installed). */
  private readonly tracing: RunTracing;
  private closed = false;

  private readonly options: ControllerOptions;

  constructor(given: ControllerOptions) {
    // Every store and catalog call this controller makes has a deadline (call-deadlines.ts). A
    // create's grows with its run (3-4 s at 100,000 nodes here): one given up on is made again with
    // its id, which settles whether the first committed (create-run.ts).
    const callTimeoutMs = given.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const options: ControllerOptions = { ...given, ...withStoreDeadlines(given, callTimeoutMs) };
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.tracing = new RunTracing(() => this.clock.now());
    this.id = options.dispatcher.address ?? `controller-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const isGone = options.dispatcher.isGone?.bind(options.dispatcher);
    this.leases = new RunLeases({
      store: options.runStore,
      owner: this.id,
      ttlMs: options.leaseMs ?? DEFAULT_LEASE_MS,
      ...(isGone === undefined ? {} : { isGone }),
      onLost: (runIds) => void this.leasesLost(runIds),
      onError: (error) => this.warn('-', '-', `renewing this controller's run leases failed: ${describe(error)}`),
    });
    this.reservations = new ReservationKeeper(options.catalog, this.clock, (event) => options.onEvent?.(event), {
      subscribeTimeoutMs: callTimeoutMs,
      ...(options.reservationTtlMs === undefined ? {} : { ttlMs: options.reservationTtlMs }),
      ...(options.reservationPollMs === undefined ? {} : { pollMs: options.reservationPollMs }),
    });
    this.drivers = new RunDrivers({
      catalog: options.catalog,
      runStore: options.runStore,
      dispatcher: options.dispatcher,
      clock: this.clock,
      reservations: this.reservations,
      tracing: this.tracing,
      emit: (event) => options.onEvent?.(event),
      onTerminal: (state) => this.terminal(state),
      owner: this.id,
      onFenced: (driver) => {
        // Its save was refused: another controller holds the run's live lease. This driver stops
        // now (its queued results go back to the transport, and on to the owner), whether or not
        // this controller still counted the run as its own: no need to wait for the heartbeat.
        const { runId } = driver;
        const owned = this.leases.forget(runId);
        this.drivers.retire(runId, driver);
        if (!owned) return;
        this.tracing.release(runId, 'lease-lost');
        this.warn(runId, '-', `another controller holds this run's lease (a save of ${this.id} was refused): no longer driving it here`, 'run:lease-lost');
      },
    }, (runId, driver) => this.orphanWatch.add(runId, driver.takeOrphans()));
    options.dispatcher.onResults((results) => this.deliverResults(results));
    const idleMs = options.idleDriverMs ?? 30_000;
    this.evictor = setInterval(() => this.evictIdleDrivers(idleMs), Math.max(10, Math.min(idleMs, 10_000)));
    this.evictor.unref();
    this.orphanWatch = new OrphanWatch({
      store: options.runStore,
      dispatcher: options.dispatcher,
      intervalMs: options.cancelPollMs ?? 500,
      onError: (error) => this.warn('-', '-', `cancelling attempts of stopped drivers failed (tried again): ${describe(error)}`),
    });
    this.cancelWatch = new CancelWatch({
      store: options.runStore,
      intervalMs: options.cancelPollMs ?? 500,
      // The runs owned here (driven, or leased with their driver evicted while attempts run); a run
      // leased elsewhere is its owner's to poll.
      runs: () => [...new Set([...this.drivers.ids(), ...this.leases.ids()])],
      onRequested: (runIds) => {
        for (const runId of runIds) this.applyCancel(runId, cancelError('cancelled on request'));
      },
      onError: (error) => this.warn('-', '-', `looking for cancel requests failed: ${describe(error)}`),
    });
    this.waiters = new RunWaiters({
      store: options.runStore,
      pollMs: options.waitPollMs ?? 1000,
      closed: () => this.closed,
      takeOver: (runId, stored) => this.tryTakeOver(runId, stored),
      over: (state) => this.terminal(state),
    });
  }

  /**
   * Cancels a running run (`run.cancel()`, `memoflow runs cancel`): records the request on the run
   * (RunStore.requestCancel), then has it applied: at once by this controller's driver if the run
   * is owned here, else by taking the run over when its lease is free and this controller may
   * (cancelling runs no task, so a run whose controller died ends now too), else by the run's owner
   * at its next cancel poll (CancelWatch). Resolves once the request is recorded; the run then ends
   * `cancelled` (wait() tells when). A run that is over is left as it is (`finished`).
   */
  async cancel(runId: string, reason = 'cancelled on request'): Promise<CancelRequestOutcome> {
    if (this.closed) throw closedError();
    const error = cancelError(reason);
    const outcome = await this.options.runStore.requestCancel(runId, error, this.clock.now());
    if (outcome.kind === 'requested' || outcome.kind === 'already-requested') this.applyCancel(runId, error);
    return outcome;
  }

  /** Has a recorded cancel request applied (see `cancel`); never rejects. */
  private applyCancel(runId: string, error: ErrorInfo): void {
    const driver = this.drivers.get(runId);
    if (driver !== undefined && this.leases.owns(runId)) {
      driver.deliver({ type: 'run:cancel', error }).catch(() => undefined); // rejects only once closed
      return;
    }
    this.takeOverToCancel(runId).catch((failure: unknown) => {
      if (!this.closed) this.warn(runId, '-', `cancelling the run failed here (its owner cancels it at its next poll): ${describe(failure)}`);
    });
  }

  /** Drives a run with a cancel request to its end, when this controller owns it or may take it over (no task needed). */
  private async takeOverToCancel(runId: string): Promise<void> {
    const state = await this.options.runStore.load(runId);
    if (state === undefined || state.run.status !== 'running' || this.closed) return;
    if (!mayDrive(this.options.dispatcher, state, [])) return;
    if (!this.leases.owns(runId)) {
      await this.takeOver(runId, []);
      return;
    }
    await this.recoverWithNewDriver(runId, state);
  }

  /** Runs this controller holds a driver for (in flight here, or idle for less than `idleDriverMs`). */
  get drivenRuns(): number {
    return this.drivers.size;
  }

  /** Runs leased to this controller, as far as it knows (a lease lost in a long pause shows at the next heartbeat). */
  get ownedRuns(): number {
    return this.leases.count;
  }

  /** Drops drivers with nothing in flight for `idleMs`; their runs stay in the store for whoever acts next. */
  evictIdleDrivers(idleMs: number): void {
    this.drivers.evictIdle(idleMs, (runId) => this.waiters.waitedOn(runId));
  }

  /**
   * Validates, starts and records a run. Resolves with the run id once the run is in the store, which
   * is after its first lookups (see PendingCreate), never much later than `createDeferMs(nodes)`
   * from now (the create itself takes its time); rejects if it could not be created (nothing of it then exists).
   */
  async submit(request: SubmitRequest): Promise<string> {
    if (this.closed) throw closedError();
    const { dispatcher, runStore, newRunId } = this.options;
    const { state: initial, plan, fresh } = await prepareRun(request, { runStore, pool: dispatcher.pool, clock: this.clock, tracing: this.tracing, ...(newRunId === undefined ? {} : { newRunId }) });
    const id = initial.run.id;
    if (this.closed) {
      // Closed while the earlier run of a resume or retry was read: nothing of this one exists.
      this.tracing.abandoned(id, closedError());
      throw closedError();
    }
    // The run is created by its driver's first round that saves (run-driver.ts, PendingCreate): a
    // fully cached run is written once. The controller creating a run owns it: its results come here.
    this.leases.creating(id);
    await new Promise<void>((resolve, reject) => {
      this.drivers.ensure(id, initial, {
        lease: { owner: this.id, ttlMs: this.leases.ttlMs },
        initial: fresh,
        // From now, not from the run's creation time: reading a retried run's predecessor may have taken a while.
        deferUntil: this.clock.now().getTime() + createDeferMs(Object.keys(initial.nodes).length),
        created: (outcome) => {
          this.leases.created(id);
          if (outcome === 'created-unanswered') this.warn(id, initial.run.workflow, 'creating the run reported an error, but the run was created: it goes on');
          if (plan !== undefined) this.options.onEvent?.(planEvent(initial, plan));
          resolve();
        },
        failed: (error) => {
          this.leases.notCreated(id);
          this.drivers.delete(id);
          this.tracing.abandoned(id, error);
          const reason = error instanceof DecisionError && error.cause instanceof MemoflowError ? error.cause : error;
          reject(reason instanceof Error ? reason : new Error(String(reason)));
        },
      })
        // Rejects only if this controller closes first; once created, any controller can recover the run.
        .deliver({ type: 'run:tick' })
        .catch(() => undefined);
    });
    return id;
  }

  /**
   * Takes over every running run whose lease is free or expired (its owner closed or died) and that
   * this controller can drive: leases it, repeats the effects its last owner may have had in flight
   * (all idempotent), and advances it. Of several controllers sweeping at once, each run goes to
   * exactly one. Returns the ids taken over.
   */
  async recoverUnowned(limit = 1000): Promise<string[]> {
    const free = await this.options.runStore.listUnleased(limit);
    const taken = await Promise.all(
      free
        .filter((run) => mayDrivePool(this.options.dispatcher, run.options.pool))
        .map(async (run) => ((await this.takeOver(run.id)).kind === 'acquired' ? run.id : null)),
    );
    return taken.filter((id): id is string => id !== null);
  }

  /** Sweeps for unleased runs every `intervalMs` until close (what a standalone controller runs). */
  startSweeper(options: { intervalMs: number }): void {
    if (this.sweeper !== undefined) return;
    let busy = false;
    this.sweeper = setInterval(() => {
      if (busy || this.closed) return;
      busy = true;
      this.recoverUnowned()
        .catch((error: unknown) => {
          if (!this.closed) this.warn('-', '-', `sweeping for unleased runs failed: ${describe(error)}`);
        })
        .finally(() => {
          busy = false;
        });
    }, options.intervalMs);
    this.sweeper.unref();
  }

  /**
   * Continues a run from the store (after a crash, or owned by a controller that died). Returns false,
   * touching nothing, when this controller cannot drive it: the run's tasks go to another worker
   * pool, or (in-process) its tasks are not registered here, or another controller holds its lease.
   * Such a run is only read.
   */
  async recover(runId: string): Promise<boolean> {
    const state = await this.options.runStore.load(runId);
    if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${runId}' is not in the run store`);
    if (state.run.status !== 'running') {
      await this.recoverWithNewDriver(runId, state); // settles waiters from the stored final state
      return true;
    }
    if (!mayDrive(this.options.dispatcher, state)) return false;
    if (this.leases.owns(runId)) {
      await this.recoverWithNewDriver(runId, state);
      return true;
    }
    return (await this.takeOver(runId)).kind === 'acquired';
  }

  /**
   * Leases the run if it is free or expired and, if that worked, continues it from the store: the
   * previous owner may have died between saving and acting, so its effects are repeated. Shared by
   * every path that finds a run without a live owner (a result, a sweep, a wait, a cancel).
   * `tasks`: what driving it needs here (default: every task it names; a cancel needs none).
   */
  private takeOver(runId: string, tasks?: readonly string[]): Promise<LeaseOutcome> {
    let pending = this.takingOver.get(runId);
    if (pending === undefined) {
      pending = this.leaseAndRecover(runId, tasks).finally(() => this.takingOver.delete(runId));
      this.takingOver.set(runId, pending);
    }
    return pending;
  }

  private async leaseAndRecover(runId: string, tasks: readonly string[] | undefined): Promise<LeaseOutcome> {
    if (this.closed) throw closedError();
    const outcome = await this.leases.acquire(runId);
    // Closing: the lease goes back with all the others (close waits for the acquisition first).
    if (outcome.kind !== 'acquired' || this.closed) return outcome;
    // Read once the lease is held, never before: until then the last owner's saves are not fenced
    // (its lease had expired), so a state read earlier may miss its last save, whose effects
    // nobody would then repeat.
    let state: RunState | undefined;
    try {
      state = await this.options.runStore.load(runId);
    } catch (error) {
      // Not owned after all: results for the run would otherwise be driven here by a driver that
      // never repeated its last owner's effects. The next result, sweep or wait takes it over again.
      await this.giveBack(runId).catch(() => undefined);
      throw error;
    }
    if (state === undefined) return { kind: 'missing' };
    if (state.run.status === 'running' && !mayDrive(this.options.dispatcher, state, tasks)) {
      // Not this controller's to drive after all (another pool's run): to the caller it is as good
      // as held elsewhere, by no controller it could name.
      await this.giveBack(runId);
      return { kind: 'held', owner: '', expiresAt: this.clock.now() };
    }
    const from = outcome.previousOwner === null ? '' : ` from ${outcome.previousOwner}`;
    this.options.onEvent?.({ type: 'run:taken-over', level: 'info', runId, workflow: state.run.workflow, message: `leased to controller ${this.id}${from} until ${outcome.expiresAt.toISOString()}` });
    // The previous owner's undelivered results (for this run among others) are wanted now.
    if (outcome.previousOwner !== null) void this.options.dispatcher.takeOverFrom?.(outcome.previousOwner);
    if (state.run.status === 'running') this.tracing.takenOver(state, outcome.previousOwner);
    await this.recoverWithNewDriver(runId, state);
    return outcome;
  }

  /**
   * Gives a lease just acquired back, with any driver a result made for the run meanwhile (the
   * run counted as owned from the acquisition on): it would drive the run without its recovery.
   */
  private async giveBack(runId: string): Promise<void> {
    this.drivers.retire(runId);
    await this.leases.release(runId);
  }

  /** Runs whose lease another controller took over: stop driving them (their version would stop our saves anyway). */
  private async leasesLost(runIds: string[]): Promise<void> {
    for (const runId of runIds) {
      // Whatever became of the run, this controller's part of its trace is over (a run it finished itself has no tenure left).
      this.tracing.release(runId, 'lease-lost');
      // A run that just ended is not lost: the heartbeat released its lease.
      const status = await this.options.runStore.status(runId).catch(() => 'running' as const);
      // Ended, or leased here again meanwhile (a result or a wait took it back): nothing to stop.
      if (status !== 'running' || this.leases.owns(runId)) continue;
      this.drivers.retire(runId); // its queued results are handed back, and come again to be routed to the new owner
      this.warn(runId, '-', `another controller took this run over (the lease of ${this.id} had expired): no longer driving it here`, 'run:lease-lost');
    }
  }

  /**
   * Resolves with the run's final state. A run this controller owns resolves from memory when it
   * ends (it is not read: for a 1,000-node run that read costs more than a fully cached run
   * itself); one owned elsewhere is watched (its status polled every `waitPollMs`, one small read,
   * and loaded once when it is over), and taken over if its lease turns out free or expired and
   * this controller can drive it.
   */
  async wait(runId: string): Promise<RunState> {
    if (this.closed) throw closedWhileWaiting(runId);
    if (this.leases.owns(runId)) {
      const settled = this.waiters.add(runId, undefined);
      this.recoverIfBehind(runId);
      return settled;
    }
    const stored = await this.options.runStore.load(runId);
    if (stored === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${runId}' does not exist`);
    if (stored.run.status !== 'running') return stored;
    return this.waiters.add(runId, stored, mayDrive(this.options.dispatcher, stored));
  }

  /**
   * A run owned here whose driver sits idle is read once, to tell whether the store holds a later
   * version than the driver saw (it was moved on behind this controller's back): then it is
   * continued from the store. A busy driver drives the run, and an idle one that is current has
   * its attempts in flight: recovering would repeat them, and each duplicate result would cost
   * another read (issue 9, item 7). Never rejects.
   */
  private recoverIfBehind(runId: string): void {
    const driver = this.drivers.get(runId);
    if (driver === undefined || driver.idleSince() === null) return;
    const seen = driver.version;
    this.options.runStore
      .load(runId)
      .then(async (state) => {
        if (state === undefined || (seen !== undefined && state.run.version <= seen) || this.closed || !this.leases.owns(runId)) return;
        await this.recoverWithNewDriver(runId, state);
      })
      .catch((error: unknown) => {
        if (!this.closed) this.warn(runId, '-', `recovering the run failed: ${describe(error)}`);
      });
  }

  /** Takes the run over in the background if its lease is free; never an unhandled rejection. */
  private tryTakeOver(runId: string, stored?: RunState): void {
    if (this.closed || this.leases.owns(runId)) return;
    this.takeOver(runId).catch((error: unknown) => {
      // The run stays in the store for any controller to take over.
      if (!this.closed) this.warn(runId, stored?.run.workflow ?? '-', `taking the run over failed: ${describe(error)}`);
    });
  }

  /**
   * Stops driving runs. Rounds in progress finish; nothing is lost (it is all in the store, and any
   * controller continues it). Pending `wait()` calls reject with STALE_STATE.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.evictor);
    this.cancelWatch.stop();
    this.orphanWatch.stop();
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.waiters.close();
    const drivers = this.drivers.closeAll();
    await Promise.all(drivers.map((driver) => driver.idle()));
    this.tracing.close();
    // Every lease at once: the other controllers take these runs over at their next sweep.
    await this.leases.close();
    // Reservations still held here are not released: their nodes are unfinished, and whichever
    // controller continues the run renews them; if none does, they expire within one lease.
    await this.reservations.close();
  }

  /** A batch of results (see result-delivery.ts): one promise per result. */
  private deliverResults(results: readonly AttemptResult[]): Promise<void>[] {
    return deliverResults(results, {
      closed: () => this.closed,
      owns: (runId) => this.leases.owns(runId),
      driver: (runId) => this.drivers.ensure(runId),
      takeOver: (runId) => this.takeOver(runId),
      warn: (runId, message) => this.warn(runId, '-', message),
      route: { dispatcher: this.options.dispatcher, self: this.id, ttlMs: this.leases.ttlMs, clock: this.clock },
    });
  }

  private warn(runId: string, workflow: string, message: string, type: 'controller:round-failed' | 'run:lease-lost' = 'controller:round-failed'): void {
    this.options.onEvent?.({ type, level: 'warn', runId, workflow, message });
  }

  /** Continues the run from `state` (just read) with a new driver; read again if the old one had to finish first. */
  private async recoverWithNewDriver(runId: string, state: RunState): Promise<void> {
    const { driver, waited } = await this.drivers.replace(runId);
    await driver.recover(waited ? undefined : state);
  }

  private terminal(state: RunState): void {
    this.tracing.finished(state);
    this.drivers.delete(state.run.id);
    this.leases.ended(state.run.id);
    this.waiters.settle(state);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
