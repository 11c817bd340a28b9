import type { CancelRequestOutcome } from '../state/cancel-request.js';
import type { ErrorInfo } from '../errors.js';
import type { NodeExecution, RunRecord, RunState, RunStatus } from '../state/run-state.js';

/** A node execution's fields that a save can write (run id and node id name the record). */
export type NodeField = Exclude<keyof NodeExecution, 'runId' | 'nodeId'>;

/**
 * One node execution in a save.
 *
 * Without `changed` the record is written whole: inserted if the store does not hold it (a
 * container's children, which a save creates), overwritten if it does.
 *
 * With `changed` the store holds the record already and writes only the named fields, keeping the
 * others as stored: a node's inputs, key and key parts are written once, when it starts, however
 * often its phase moves afterwards (`nodeWrites` in state/node-writes.ts computes the list). A
 * named field is written whatever its value, null included. A record the store does not hold is
 * not written (the caller saves against the version it loaded, so it knows which records exist).
 */
export interface NodeWrite {
  node: NodeExecution;
  changed?: readonly NodeField[];
}

export interface RunSaveRequest {
  /** The run's fields as they are now; `version` is ignored (the store sets expectedVersion + 1). */
  run: RunRecord;
  /** Only the node executions that changed since the load, at most one write per node. */
  nodes: readonly NodeWrite[];
  expectedVersion: number;
  /**
   * The controller saving (its lease owner id). Given, the save is fenced: while another controller
   * holds a live lease on the run it writes nothing and rejects with RUN_LEASED (retryable, with
   * `retryAfterMs` until that lease ends). A controller stalled past its lease must not land a
   * decision whose effects it will never perform (it stops driving the run once it notices), over
   * the state its successor has recovered. A free or expired lease does not fence.
   */
  owner?: string;
}

export interface RunListFilter {
  workflow?: string;
  status?: RunStatus;
  limit?: number;
}

/** A run without its spec, inputs and outputs, for listings. */
export type RunSummary = Omit<RunRecord, 'spec' | 'inputs' | 'outputs'>;

/**
 * A controller's claim on a running run: while its lease lasts, only `owner` drives the run (the
 * other controllers route the run's results to it). Leases are times of the store's clock (the
 * database's `now()` unless the store was given a clock), so controllers on machines whose clocks
 * disagree agree on expiry; callers give durations only.
 */
export interface LeaseRequest {
  /** The controller's id (TaskDispatcher.address, where the run's results reach it). */
  owner: string;
  /** The lease lasts this long from the store's now. */
  ttlMs: number;
}

/**
 * What `acquireLease` found. `held` reports the holder and expiry as they were when the statement
 * began: when two controllers race for an expired lease, the loser may be told the old holder (an
 * expiry in the past): advice for routing and retrying, never a reason to drive the run.
 */
export type LeaseOutcome =
  /** `previousOwner`: who held the lease before (it expired, or its holder was gone); null if it was free or already the caller's. */
  | { kind: 'acquired'; expiresAt: Date; previousOwner: string | null }
  | { kind: 'held'; owner: string; expiresAt: Date }
  /** The run is over (succeeded, failed or cancelled): there is nothing left to own. */
  | { kind: 'finished' }
  | { kind: 'missing' };

/**
 * Where runs and node executions live. Implementations: PostgresRunStore, PgliteRunStore,
 * InMemoryRunStore; one contract suite runs against all of them.
 *
 * All run state is here, so a controller can die and another continue from it. Writes are
 * optimistic: `save` succeeds only if the stored version is the one the caller loaded.
 */
export interface RunStore {
  /**
   * Creates a run at version 0 with its node executions, leased to `lease.owner` when given (the
   * controller creating a run owns it; no lease: the run is free). Fails if the id exists.
   */
  create(state: RunState, lease?: LeaseRequest): Promise<void>;
  load(runId: string): Promise<RunState | undefined>;
  /** The run's status alone: what a waiter polls (one small read, whatever the run's size). */
  status(runId: string): Promise<RunStatus | undefined>;
  /**
   * One atomic statement: if the stored version equals `expectedVersion`, writes the run's fields
   * and the given node executions and sets version = expectedVersion + 1, returning true; else
   * writes nothing and returns false (another controller won the race: re-load, it is not an error).
   * A save writes only the run's status, outputs, error, updatedAt and finishedAt (and sets the
   * version); id, workflow, project, domain, spec, inputs, options and createdAt are fixed at
   * `create`, and any changes to them in `request.run` are ignored. Of each node it writes what
   * its `NodeWrite` says: the whole record, or only the changed fields.
   */
  save(request: RunSaveRequest): Promise<boolean>;
  /** Newest first. */
  list(filter?: RunListFilter): Promise<RunSummary[]>;
  /**
   * One atomic statement: if the run is running and its lease is free (no owner: also every run of
   * an earlier release), expired, already `lease.owner`'s, or held by `replacing` (a holder the
   * caller knows to be gone), makes it `lease.owner`'s until now + ttl. Of several racing callers
   * exactly one acquires. Does not touch the run's version or any other field.
   */
  acquireLease(runId: string, lease: LeaseRequest & { replacing?: string }): Promise<LeaseOutcome>;
  /**
   * The owner's heartbeat, one statement for all its runs: extends to now + ttl the lease of every
   * running run `lease.owner` holds, releases its leases on runs that are over, and returns the ids
   * of the running runs it still holds. A run missing from the answer was taken over (the lease had
   * expired) or has ended. An expired lease nobody took yet is renewed: the owner never lost it.
   */
  renewLeases(lease: LeaseRequest): Promise<string[]>;
  /** Frees `owner`'s leases on the given runs (all of its runs when omitted); others' leases are untouched. */
  releaseLeases(owner: string, runIds?: readonly string[]): Promise<void>;
  /** Running runs whose lease is free or expired now, least recently updated first: what a controller takes over. */
  listUnleased(limit?: number): Promise<RunSummary[]>;
  /**
   * One atomic statement: if the run is running and has no cancel request yet, records `error`
   * (a RUN_CANCELLED error, see state/cancel-request.ts) as its error, sets updatedAt to `at` and
   * bumps its version (so a save from an earlier load loses the race and re-reads the request).
   * The status stays `running` until the run's controller cancels it. Leases are untouched.
   */
  requestCancel(runId: string, error: ErrorInfo, at: Date): Promise<CancelRequestOutcome>;
  /** Of `runIds`, the running ones with a cancel request (what a controller polls for the runs it drives). One read. */
  cancelRequested(runIds: readonly string[]): Promise<string[]>;
}
