import type { NodeValue } from '../../json.js';
import type { CacheCatalog } from '../../ports/cache-catalog.js';
import type { Clock } from '../../ports/clock.js';
import type { RunStore } from '../../ports/run-store.js';
import type { TaskDispatcher } from '../../ports/task-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import type { RunOptions } from '../../state/run-state.js';
import type { EngineEvent } from '../vocabulary/commands.js';

/** How a Controller is built: its ports, and the timings of its background work. */
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
  /**
   * How long a run stays leased to this controller without a renewal (default 10 s); renewed every
   * third of it. A controller that dies leaves its runs to the others after at most this long.
   */
  leaseMs?: number;
  /** How often this controller looks for cancel requests made elsewhere on the runs it owns (default 500 ms; see CancelWatch). */
  cancelPollMs?: number;
  /**
   * `cache.serialize` reservations: how long one lasts without a heartbeat, so how soon the waiters
   * of an owner whose controller died take over (default 30 s; heartbeats every third of it).
   */
  reservationTtlMs?: number;
  /** The backstop: a WAITING node asks again this often even if it heard no release (default 3 s). */
  reservationPollMs?: number;
  /**
   * How long a run store or catalog call may go unanswered before the controller gives up on it
   * and tries again (default 60 s; not a run's create). See call-deadlines.ts.
   */
  callTimeoutMs?: number;
}

export const DEFAULT_LEASE_MS = 10_000;
/**
 * How long a submitted run's cache lookups may go on before the run is created in the store (see
 * PendingCreate in pending-create.ts): long enough for a large cached DAG to be written once, short
 * enough that a submit answers, and the run shows in listings, soon. Plus CREATE_DEFER_PER_NODE_MS
 * per node: a 100,000-node run's one lookup alone takes 1.3-2.5 s, and its create as long again, so
 * a fixed 2 s cut it off half way and it was written twice (created, then saved whole).
 */
export const CREATE_DEFER_MS = 2_000;
export const CREATE_DEFER_PER_NODE_MS = 0.05;

/** The deferral of a run of `nodes` nodes (CREATE_DEFER_MS): 2 s, 2.05 s at 1,000 nodes, 7 s at 100,000. */
export function createDeferMs(nodes: number): number {
  return CREATE_DEFER_MS + nodes * CREATE_DEFER_PER_NODE_MS;
}

export interface SubmitRequest {
  spec: WorkflowSpec;
  inputs: { [name: string]: NodeValue };
  project: string;
  domain: string;
  options?: Partial<RunOptions>;
}
