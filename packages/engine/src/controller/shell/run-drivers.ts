import type { RunState } from '../../state/run-state.js';
import type { PendingCreate } from './pending-create.js';
import { RunDriver, type RunDriverDeps } from './run-driver.js';

/** A controller's drivers, one per run it drives: made on demand, replaced once idle, dropped when idle for long. */
export class RunDrivers {
  private readonly drivers = new Map<string, RunDriver>();

  constructor(
    private readonly deps: RunDriverDeps,
    /** A driver stopped while its run goes on elsewhere or later (retired, replaced), once its last round has ended. */
    private readonly onStopped: (runId: string, driver: RunDriver) => void = () => undefined,
  ) {}

  get size(): number {
    return this.drivers.size;
  }

  get(runId: string): RunDriver | undefined {
    return this.drivers.get(runId);
  }

  ids(): IterableIterator<string> {
    return this.drivers.keys();
  }

  delete(runId: string): void {
    this.drivers.delete(runId);
  }

  /** Every driver, closed, and none kept. */
  closeAll(): RunDriver[] {
    const drivers = [...this.drivers.values()];
    for (const driver of drivers) driver.close();
    this.drivers.clear();
    return drivers;
  }

  /** The run's driver, made (from `initial`, or to load the run when it first needs it) if it has none. */
  ensure(runId: string, initial?: RunState, pendingCreate?: PendingCreate): RunDriver {
    let driver = this.drivers.get(runId);
    if (driver === undefined) {
      driver = new RunDriver(runId, this.deps, initial, pendingCreate);
      this.drivers.set(runId, driver);
    }
    return driver;
  }

  /**
   * A new driver for the run, to continue it from the store, once the one it replaces is idle: an
   * idle driver's view is no fresher than the store's and it has nothing in flight, while a busy one
   * would go on deciding and acting beside its replacement (two drivers dispatching one attempt).
   * `waited`: the old one was busy, so what was read before this call is stale.
   */
  async replace(runId: string): Promise<{ driver: RunDriver; waited: boolean }> {
    let waited = false;
    for (;;) {
      const old = this.drivers.get(runId);
      if (old === undefined) break;
      if (!old.busy()) {
        // Checked and replaced in one turn, so nothing reaches the old driver in between.
        this.drivers.delete(runId);
        old.close();
        this.onStopped(runId, old);
        break;
      }
      waited = true;
      await old.idle();
      if (old.busy()) await new Promise((resolve) => setTimeout(resolve, 5)); // its own recovery's effects are still being performed
    }
    return { driver: this.ensure(runId), waited };
  }

  /**
   * Stops the run's driver (`only` that one, if given): it is closed at once, and kept until the
   * round it may be in has ended, so a driver replacing it waits for that round (`replace`)
   * instead of running beside it. A round in progress can still land its save: two drivers of
   * one controller share its lease, so no fence would tell them apart.
   */
  retire(runId: string, only?: RunDriver): void {
    const driver = only ?? this.drivers.get(runId);
    if (driver === undefined) return;
    driver.close();
    void driver.idle().then(() => {
      if (this.drivers.get(runId) === driver) this.drivers.delete(runId);
      this.onStopped(runId, driver);
    });
  }

  /** Drops drivers with nothing in flight for `idleMs`, but those of runs `kept` names. */
  evictIdle(idleMs: number, kept: (runId: string) => boolean): void {
    const now = Date.now();
    for (const [runId, driver] of this.drivers) {
      const since = driver.idleSince();
      if (since !== null && now - since >= idleMs && !kept(runId)) this.drivers.delete(runId);
    }
  }
}
