import { MemoflowError } from '../errors.js';
import type { NodeValue } from '../json.js';
import type { CacheCatalog } from '../ports/cache-catalog.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { RunStore } from '../ports/run-store.js';
import type { AttemptResult, TaskDispatcher } from '../ports/task-dispatcher.js';
import { validateSpec } from '../spec/validate-spec.js';
import type { WorkflowSpec } from '../spec/workflow-spec.js';
import { newRunId } from '../state/run-id.js';
import { newRunState } from '../state/new-run.js';
import type { RunOptions, RunState } from '../state/run-state.js';
import type { EngineEvent } from './vocabulary/commands.js';
import { RunDriver } from './run-driver.js';
import { previewReuse } from './core/reuse-preview.js';
import { planEvent, reuseOptions, reusePlanFor } from './reuse-submit.js';
import { CancelWatch } from './cancel-watch.js';
import { cancelError, type CancelRequestOutcome } from '../state/cancel-request.js';
import type { ErrorInfo } from '../errors.js';
import { ReservationKeeper } from './reservation-keeper.js';

export interface ControllerOptions {
  catalog: CacheCatalog;
  runStore: RunStore;
  dispatcher: TaskDispatcher;
  clock?: Clock;
  newRunId?: (now: Date) => string;
  /** How often `wait()` re-reads a run driven elsewhere (default 1000 ms). */
  waitPollMs?: number;
  /**
   * A run's driver that has had nothing to do for this long is dropped (default 30 s): the run lives
   * in the store, and a result arriving later loads it again. Bounds memory by the runs in flight here.
   */
  idleDriverMs?: number;
  /** Every node and run event, for logs. Must not throw. */
  onEvent?: (event: EngineEvent) => void;
  /** How often this controller looks for cancel requests made elsewhere on the runs it drives (default 500 ms; see CancelWatch). */
  cancelPollMs?: number;
  /**
   * `cache.serialize` reservations: how long one lasts without a heartbeat, so how soon the waiters
   * of an owner whose controller died take over (default 30 s; heartbeats every third of it).
   */
  reservationTtlMs?: number;
  /** The backstop: a WAITING node asks again this often even if it heard no release (default 3 s). */
  reservationPollMs?: number;
}

export interface SubmitRequest {
  spec: WorkflowSpec;
  inputs: { [name: string]: NodeValue };
  project: string;
  domain: string;
  options?: Partial<RunOptions>;
}

/**
 * Walks runs' DAGs: creates runs, drives each through rounds of decide/save/act, and routes task
 * results to the run they belong to. Holds no state that is not in the run store: any controller
 * can pick up any run (`recover`), which is how a dead controller's runs continue.
 */
export class Controller {
  private readonly drivers = new Map<string, RunDriver>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly watchers = new Map<string, NodeJS.Timeout>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly evictor: NodeJS.Timeout;
  private readonly cancelWatch: CancelWatch;
  private readonly clock: Clock;
  private readonly reservations: ReservationKeeper;
  private closed = false;

  constructor(private readonly options: ControllerOptions) {
    this.clock = options.clock ?? systemClock;
    this.reservations = new ReservationKeeper(options.catalog, this.clock, (event) => options.onEvent?.(event), {
      ...(options.reservationTtlMs === undefined ? {} : { ttlMs: options.reservationTtlMs }),
      ...(options.reservationPollMs === undefined ? {} : { pollMs: options.reservationPollMs }),
    });
    options.dispatcher.onResults((results) => this.deliverResults(results));
    const idleMs = options.idleDriverMs ?? 30_000;
    this.evictor = setInterval(() => this.evictIdleDrivers(idleMs), Math.max(10, Math.min(idleMs, 10_000)));
    this.evictor.unref();
    this.cancelWatch = new CancelWatch({
      store: options.runStore,
      intervalMs: options.cancelPollMs ?? 500,
      // The runs driven here (a run waited on here has its driver kept; one driven elsewhere is its controller's to poll).
      runs: () => [...this.drivers.keys()],
      onRequested: (runIds) => {
        for (const runId of runIds) this.applyCancel(runId, cancelError('cancelled on request'));
      },
      onError: (error) => this.options.onEvent?.({ type: 'controller:round-failed', level: 'warn', runId: '-', workflow: '-', message: `looking for cancel requests failed: ${describe(error)}` }),
    });
  }

  /**
   * Cancels a running run (`run.cancel()`, `memoflow runs cancel`): records the request on the run
   * (RunStore.requestCancel), then has it applied: at once by this controller's driver if the run
   * is driven here, else by taking the run over when this controller may (cancelling runs no task,
   * so a run whose controller died ends now too), else by the run's own controller at its next
   * cancel poll (CancelWatch). Resolves once the request is recorded; the run then ends
   * `cancelled` (wait() tells when). A run that is over is left as it is (`finished`).
   */
  async cancel(runId: string, reason = 'cancelled on request'): Promise<CancelRequestOutcome> {
    if (this.closed) throw new MemoflowError('STALE_STATE', 'controller is closed', { retryable: true });
    const error = cancelError(reason);
    const outcome = await this.options.runStore.requestCancel(runId, error, this.clock.now());
    if (outcome.kind === 'requested' || outcome.kind === 'already-requested') this.applyCancel(runId, error);
    return outcome;
  }

  /** Has a recorded cancel request applied (see `cancel`); never rejects. */
  private applyCancel(runId: string, error: ErrorInfo): void {
    const driver = this.drivers.get(runId);
    if (driver !== undefined) {
      driver.deliver({ type: 'run:cancel', error }).catch(() => undefined); // rejects only once closed
      return;
    }
    this.takeOverToCancel(runId).catch((failure: unknown) => {
      if (this.closed) return;
      this.options.onEvent?.({ type: 'controller:round-failed', level: 'warn', runId, workflow: '-', message: `cancelling the run failed here (its controller cancels it at its next poll): ${describe(failure)}` });
    });
  }

  /** Drives a run with a cancel request to its end, when this controller reaches its pool (no task needed). */
  private async takeOverToCancel(runId: string): Promise<void> {
    const state = await this.options.runStore.load(runId);
    if (state === undefined || state.run.status !== 'running' || this.closed) return;
    if (!this.mayDriveWith(state, [])) return;
    this.drivers.delete(runId);
    await this.driver(runId).recover(state);
  }

  /** Runs this controller holds a driver for (in flight here, or idle for less than `idleDriverMs`). */
  get drivenRuns(): number {
    return this.drivers.size;
  }

  /** Drops drivers with nothing in flight for `idleMs`; their runs stay in the store for whoever acts next. */
  evictIdleDrivers(idleMs: number): void {
    const now = Date.now();
    for (const [runId, driver] of this.drivers) {
      const since = driver.idleSince();
      if (since !== null && now - since >= idleMs && !this.waiters.has(runId)) this.drivers.delete(runId);
    }
  }

  /** Validates and records a run, then starts it. Resolves with the run id once it is saved. */
  async submit(request: SubmitRequest): Promise<string> {
    const spec = validateSpec(request.spec);
    const now = this.clock.now();
    const options: RunOptions = { overwriteCache: request.options?.overwriteCache ?? false, pool: this.options.dispatcher.pool };
    // Resume and retry: refused here, before the run exists, if the earlier run does not fit.
    const reuse = await reusePlanFor(this.options.runStore, spec, request.options);
    if (reuse !== undefined) Object.assign(options, reuseOptions(request.options ?? {}, reuse));
    if (request.options?.source !== undefined) options.source = request.options.source;
    const state = newRunState({
      id: (this.options.newRunId ?? newRunId)(now),
      spec,
      inputs: request.inputs,
      project: request.project,
      domain: request.domain,
      options,
      now,
    });
    await this.options.runStore.create(state);
    const plan = previewReuse(state);
    if (plan !== undefined) this.options.onEvent?.(planEvent(state, plan));
    const driver = this.driver(state.run.id, state);
    // Rejects only if this controller closes first; the run is saved, any controller can recover it.
    driver.deliver({ type: 'run:tick' }).catch(() => undefined);
    return state.run.id;
  }

  /**
   * Recovers every running run that nothing has touched for `staleAfterMs`: its controller may have
   * died, or died between saving a dispatch and making it. Recovery repeats in-flight effects, all
   * idempotent, so recovering a run that another controller is driving is harmless. Returns the ids.
   */
  async recoverStale(staleAfterMs: number): Promise<string[]> {
    const cutoff = this.clock.now().getTime() - staleAfterMs;
    const running = await this.options.runStore.list({ status: 'running', limit: 1000 });
    // By what the store says, not by what is in memory: a driver this controller holds for a run
    // (it once handled a result) may sit idle while the run's real driver is dead. Only a driver
    // busy with a round right now speaks for the run.
    const stale = running.filter((run) => run.updatedAt.getTime() <= cutoff && this.drivers.get(run.id)?.idleSince() !== null);
    const recovered = await Promise.all(stale.map(async (run) => ((await this.recover(run.id)) ? run.id : null)));
    return recovered.filter((id): id is string => id !== null);
  }

  /** Sweeps for stale runs every `intervalMs` until close (what a standalone controller runs). */
  startSweeper(options: { intervalMs: number; staleAfterMs: number }): void {
    if (this.sweeper !== undefined) return;
    let busy = false;
    this.sweeper = setInterval(() => {
      if (busy || this.closed) return;
      busy = true;
      this.recoverStale(options.staleAfterMs)
        .catch((error: unknown) => {
          this.options.onEvent?.({ type: 'controller:round-failed', level: 'warn', runId: '-', workflow: '-', message: `sweeping for stale runs failed: ${error instanceof Error ? error.message : String(error)}` });
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
   * pool, or (in-process) its tasks are not registered here. Such a run is only read.
   */
  async recover(runId: string): Promise<boolean> {
    const state = await this.options.runStore.load(runId);
    if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${runId}' is not in the run store`);
    return this.takeOver(state);
  }

  /**
   * A waiter's run may have lost its controller: a run just read from the store (`stored`, no
   * driver here) is taken over, and so is one whose driver here sits idle behind what the store
   * holds (another controller moved it on, and may have died). Recovering is idempotent; a run this
   * controller cannot drive is only watched (its end, even one reached since the read, shows in
   * the status). A busy driver drives the run, and an idle one that is current has its attempts in
   * flight: recovering would repeat them, and each duplicate result would cost another read (issue
   * 9, item 7). Null when nothing is to be done.
   */
  private recoverIfOrphaned(runId: string, stored: RunState | undefined): Promise<unknown> | null {
    const driver = this.drivers.get(runId);
    if (driver === undefined) return stored === undefined ? null : this.takeOver(stored);
    if (driver.idleSince() === null) return null;
    return this.recoverIfBehind(runId, driver);
  }

  /** Takes the run over if the store holds a later version than `driver` has seen (or it holds none). */
  private async recoverIfBehind(runId: string, driver: RunDriver): Promise<void> {
    const state = await this.options.runStore.load(runId);
    if (state === undefined) return;
    const seen = driver.version;
    if (seen !== undefined && state.run.version <= seen) return;
    await this.takeOver(state);
  }

  /** `recover` of a run just read from the store. */
  private async takeOver(state: RunState): Promise<boolean> {
    if (state.run.status === 'running' && !this.canDrive(state)) return false;
    this.drivers.delete(state.run.id); // an idle driver's view is no fresher than the store's
    await this.driver(state.run.id).recover(state);
    return true;
  }

  /** Whether this controller's dispatcher reaches the worker pool the run's tasks go to (runs of earlier releases name none). */
  private canDrive(state: RunState): boolean {
    return this.mayDriveWith(state, runTasks(state));
  }

  private mayDriveWith(state: RunState, tasks: readonly string[]): boolean {
    const { dispatcher } = this.options;
    const pool = state.run.options.pool ?? dispatcher.pool;
    return dispatcher.mayDrive?.(pool, tasks) ?? pool === dispatcher.pool;
  }

  /**
   * Resolves with the run's final state. The run may be driven here or by any other controller
   * (results go to whichever controller takes them), so besides this controller's own drivers a
   * waiter also polls the run's status every `waitPollMs` (one small read) until the run is over,
   * and then loads it once.
   *
   * A run this controller drives resolves from memory when it ends: it is not read while it is
   * busy (for a 1,000-node run one read costs more than a fully cached run itself), and read once
   * if it is idle, to tell whether another controller moved it on since (and then take it over, its
   * controller may have died). Any other run is read once, and taken over if this controller can
   * drive it.
   */
  async wait(runId: string): Promise<RunState> {
    if (this.closed) throw closedWhileWaiting(runId);
    if (this.drivers.has(runId)) return this.addWaiter(runId, undefined);
    const stored = await this.options.runStore.load(runId);
    if (stored === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${runId}' does not exist`);
    if (stored.run.status !== 'running') return stored;
    return this.addWaiter(runId, stored);
  }

  /** `stored`: the run as just read, for a run this controller had no driver for. */
  private addWaiter(runId: string, stored: RunState | undefined): Promise<RunState> {
    if (this.closed) return Promise.reject(closedWhileWaiting(runId));
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(runId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(runId, list);
      this.watch(runId);
      this.recoverIfOrphaned(runId, stored)?.catch((error: unknown) => {
        // Never an unhandled rejection: the run stays in the store for any controller to recover.
        if (this.closed) return;
        this.options.onEvent?.({ type: 'controller:round-failed', level: 'warn', runId, workflow: stored?.run.workflow ?? '-', message: `recovering the run failed: ${error instanceof Error ? error.message : String(error)}` });
      });
    });
  }

  /**
   * Stops driving runs. Rounds in progress finish; nothing is lost (it is all in the store, and any
   * controller continues it). Pending `wait()` calls reject with STALE_STATE.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.evictor);
    this.cancelWatch.stop();
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    for (const timer of this.watchers.values()) clearInterval(timer);
    this.watchers.clear();
    for (const [runId, list] of this.waiters) for (const waiter of list) waiter.reject(closedWhileWaiting(runId));
    this.waiters.clear();
    const drivers = [...this.drivers.values()];
    for (const driver of drivers) driver.close();
    await Promise.all(drivers.map((driver) => driver.idle()));
    this.drivers.clear();
    // Reservations still held here are not released: their nodes are unfinished, and whichever
    // controller continues the run renews them; if none does, they expire within one lease.
    await this.reservations.close();
  }

  private watch(runId: string): void {
    if (this.watchers.has(runId)) return;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      // Poll the status alone (one small read); load the whole run once, when it is over.
      this.options.runStore
        .status(runId)
        .then(async (status) => {
          if (status === undefined || status === 'running') return;
          const state = await this.options.runStore.load(runId);
          if (state !== undefined) this.terminal(state);
        })
        .catch(() => undefined) // a store hiccup: the next tick tries again
        .finally(() => {
          busy = false;
        });
    }, this.options.waitPollMs ?? 1000);
    timer.unref();
    this.watchers.set(runId, timer);
  }

  /**
   * Settles a batch per run: each run's results go to its driver as one set of events (one round,
   * one save), and each result's promise is its run's. A run whose save fails or stalls holds back
   * only its own results' acknowledgements.
   */
  private deliverResults(results: readonly AttemptResult[]): Promise<void>[] {
    if (this.closed) return results.map(() => Promise.reject(new MemoflowError('STALE_STATE', 'controller is closed', { retryable: true })));
    const byRun = new Map<string, AttemptResult[]>();
    for (const result of results) {
      const list = byRun.get(result.runId);
      if (list === undefined) byRun.set(result.runId, [result]);
      else list.push(result);
    }
    const saved = new Map<string, Promise<void>>();
    for (const [runId, list] of byRun) {
      saved.set(runId, this.driver(runId).deliverAll(list.map((result) => ({ type: 'attempt:finished', result }))));
    }
    return results.map((result) => saved.get(result.runId) as Promise<void>);
  }

  private driver(runId: string, initial?: RunState): RunDriver {
    let driver = this.drivers.get(runId);
    if (driver === undefined) {
      driver = new RunDriver(
        runId,
        {
          catalog: this.options.catalog,
          runStore: this.options.runStore,
          dispatcher: this.options.dispatcher,
          clock: this.clock,
          reservations: this.reservations,
          emit: (event) => this.options.onEvent?.(event),
          onTerminal: (state) => this.terminal(state),
        },
        initial,
      );
      this.drivers.set(runId, driver);
    }
    return driver;
  }

  private terminal(state: RunState): void {
    this.drivers.delete(state.run.id);
    const timer = this.watchers.get(state.run.id);
    if (timer !== undefined) clearInterval(timer);
    this.watchers.delete(state.run.id);
    const waiting = this.waiters.get(state.run.id) ?? [];
    this.waiters.delete(state.run.id);
    for (const waiter of waiting) waiter.resolve(state);
  }
}

/** Every task a run's own nodes name (sub-workflows' inner nodes included; a dynamic's children are not known before it runs). */
function runTasks(state: RunState): string[] {
  const tasks = new Set<string>();
  const visit = (nodes: WorkflowSpec['nodes']): void => {
    for (const node of nodes) {
      if (node.kind === 'subworkflow') visit(node.workflow.nodes);
      else tasks.add(node.task);
    }
  };
  visit(state.run.spec.nodes);
  return [...tasks];
}

interface Waiter {
  resolve: (state: RunState) => void;
  reject: (error: Error) => void;
}

function closedWhileWaiting(runId: string): MemoflowError {
  return new MemoflowError('STALE_STATE', `the connection closed while waiting for run ${runId}; the run is saved and continues when a controller picks it up`, { retryable: true });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
