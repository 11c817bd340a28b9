import { fencedSaveError, MemoflowError, type ErrorInfo } from '../errors.js';
import { cancelRequestOf, type CancelRequestOutcome } from '../state/cancel-request.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { LeaseOutcome, LeaseRequest, NodeField, NodeWrite, RunListFilter, RunSaveRequest, RunStore, RunSummary } from '../ports/run-store.js';
import type { NodeExecution, RunRecord, RunState, RunStatus } from '../state/run-state.js';
import { compareText, copyDate, copyJson, FailurePlan } from './support.js';
import { decodeStoredInputs, encodeStoredInputs } from '../controller/core/input-references.js';

export type RunStoreMethod = 'create' | 'load' | 'save' | 'list' | 'lease';

export interface InMemoryRunStoreOptions {
  /** The clock leases are measured by (the SQL stores' counterpart of the database's `now()`). */
  clock?: Clock;
}

interface StoredRun {
  run: RunRecord;
  nodes: Map<string, NodeExecution>;
  /** Null: free. */
  lease: { owner: string; expiresAt: number } | null;
}

/**
 * A RunStore in process memory with the semantics of PostgresRunStore (it passes the same contract
 * suite): records are copied in and out (JSON keeps its object key order), `save` is an
 * all-or-nothing compare-and-set on `version` that writes only the run's status, outputs, error,
 * updatedAt and finishedAt (the other fields are fixed at `create`) and of each node the whole
 * record or only its changed fields, listings are newest first (ties by id, descending), leases
 * expire by the injected clock.
 *
 * Test hook: `failNext(method, error)` makes the next call of `method` reject (`lease` stands for
 * every lease method).
 */
export class InMemoryRunStore implements RunStore {
  readonly #runs = new Map<string, StoredRun>();
  readonly #failures = new FailurePlan<RunStoreMethod>();
  readonly #clock: Clock;

  constructor(options: InMemoryRunStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /** Test hook: who holds the run's lease and until when (ms since the epoch), or null. */
  leaseOf(runId: string): { owner: string; expiresAt: number } | null {
    const lease = this.#runs.get(runId)?.lease ?? null;
    return lease === null ? null : { ...lease };
  }

  /** The next call of `method` rejects with `error` (queued per method). */
  failNext(method: RunStoreMethod, error: Error = new Error(`simulated ${method} failure`)): void {
    this.#failures.add(method, error);
  }

  async create(state: RunState, lease?: LeaseRequest): Promise<void> {
    await Promise.resolve();
    this.#failures.check('create');
    if (this.#runs.has(state.run.id)) {
      throw new MemoflowError('CATALOG_ERROR', `run '${state.run.id}' already exists`);
    }
    const nodes = new Map<string, NodeExecution>();
    for (const node of Object.values(state.nodes)) nodes.set(node.nodeId, storedNode(node, state.run.id));
    this.#runs.set(state.run.id, { run: copyRun(state.run, 0), nodes, lease: lease === undefined ? null : this.#leaseFor(lease) });
  }

  async status(runId: string): Promise<RunStatus | undefined> {
    await Promise.resolve();
    this.#failures.check('load');
    return this.#runs.get(runId)?.run.status;
  }

  async load(runId: string): Promise<RunState | undefined> {
    await Promise.resolve();
    this.#failures.check('load');
    const stored = this.#runs.get(runId);
    if (stored === undefined) return undefined;
    const nodes: RunState['nodes'] = {};
    for (const node of stored.nodes.values()) nodes[node.nodeId] = copyNode(node, runId);
    const run = copyRun(stored.run, stored.run.version);
    decodeStoredInputs(run, nodes);
    return { run, nodes };
  }

  async save(request: RunSaveRequest): Promise<boolean> {
    await Promise.resolve();
    this.#failures.check('save');
    const stored = this.#runs.get(request.run.id);
    if (stored === undefined || stored.run.version !== request.expectedVersion) return false;
    const lease = stored.lease;
    const now = this.#clock.now().getTime();
    if (request.owner !== undefined && lease !== null && lease.owner !== request.owner && lease.expiresAt > now) throw fencedSaveError(request.run.id, lease.owner, lease.expiresAt - now);
    // Copy everything before touching the stored state: all or nothing. Like the SQL stores, a
    // save writes only the run's changing fields; the fixed ones stay as `create` wrote them.
    const run: RunRecord = {
      ...stored.run,
      status: request.run.status,
      outputs: copyJson(request.run.outputs),
      error: copyJson(request.run.error),
      version: request.expectedVersion + 1,
      updatedAt: copyDate(request.run.updatedAt),
      finishedAt: copyDate(request.run.finishedAt),
    };
    const nodes: NodeExecution[] = [];
    for (const write of request.nodes) {
      const node = written(stored.nodes.get(write.node.nodeId), write, run.id);
      if (node !== undefined) nodes.push(node);
    }
    stored.run = run;
    for (const node of nodes) stored.nodes.set(node.nodeId, node);
    return true;
  }

  async acquireLease(runId: string, lease: LeaseRequest & { replacing?: string }): Promise<LeaseOutcome> {
    await Promise.resolve();
    this.#failures.check('lease');
    const stored = this.#runs.get(runId);
    if (stored === undefined) return { kind: 'missing' };
    if (stored.run.status !== 'running') return { kind: 'finished' };
    const held = stored.lease;
    const now = this.#clock.now().getTime();
    if (held === null || held.expiresAt <= now || held.owner === lease.owner || (lease.replacing !== undefined && held.owner === lease.replacing)) {
      stored.lease = this.#leaseFor(lease);
      const previousOwner = held === null || held.owner === lease.owner ? null : held.owner;
      return { kind: 'acquired', expiresAt: new Date(stored.lease.expiresAt), previousOwner };
    }
    return { kind: 'held', owner: held.owner, expiresAt: new Date(held.expiresAt) };
  }

  async renewLeases(lease: LeaseRequest): Promise<string[]> {
    await Promise.resolve();
    this.#failures.check('lease');
    const held: string[] = [];
    for (const stored of this.#runs.values()) {
      if (stored.lease?.owner !== lease.owner) continue;
      if (stored.run.status !== 'running') {
        stored.lease = null;
        continue;
      }
      stored.lease = this.#leaseFor(lease);
      held.push(stored.run.id);
    }
    return held;
  }

  async releaseLeases(owner: string, runIds?: readonly string[]): Promise<void> {
    await Promise.resolve();
    this.#failures.check('lease');
    const only = runIds === undefined ? null : new Set(runIds);
    for (const stored of this.#runs.values()) {
      if (stored.lease?.owner === owner && (only === null || only.has(stored.run.id))) stored.lease = null;
    }
  }

  async listUnleased(limit?: number): Promise<RunSummary[]> {
    await Promise.resolve();
    this.#failures.check('lease');
    const now = this.#clock.now().getTime();
    const free = [...this.#runs.values()]
      .filter((stored) => stored.run.status === 'running' && (stored.lease === null || stored.lease.expiresAt <= now))
      .map(({ run }) => run)
      .sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || compareText(a.id, b.id))
      .map(summarize);
    return limit === undefined ? free : free.slice(0, Math.max(0, limit));
  }

  async requestCancel(runId: string, error: ErrorInfo, at: Date): Promise<CancelRequestOutcome> {
    await Promise.resolve();
    this.#failures.check('save');
    const stored = this.#runs.get(runId);
    if (stored === undefined) return { kind: 'missing' };
    const { run } = stored;
    if (run.status !== 'running') return { kind: 'finished', status: run.status };
    if (cancelRequestOf(run) !== null) return { kind: 'already-requested' };
    stored.run = { ...run, error: copyJson(error), updatedAt: copyDate(at), version: run.version + 1 };
    return { kind: 'requested' };
  }

  async cancelRequested(runIds: readonly string[]): Promise<string[]> {
    await Promise.resolve();
    this.#failures.check('load');
    return runIds.filter((id) => {
      const stored = this.#runs.get(id);
      return stored !== undefined && cancelRequestOf(stored.run) !== null;
    });
  }

  #leaseFor(lease: LeaseRequest): { owner: string; expiresAt: number } {
    return { owner: lease.owner, expiresAt: this.#clock.now().getTime() + lease.ttlMs };
  }

  async list(filter: RunListFilter = {}): Promise<RunSummary[]> {
    await Promise.resolve();
    this.#failures.check('list');
    const matching = [...this.#runs.values()]
      .map(({ run }) => run)
      .filter((run) => (filter.workflow === undefined || run.workflow === filter.workflow) && (filter.status === undefined || run.status === filter.status))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || compareText(b.id, a.id))
      .map(summarize);
    return filter.limit === undefined ? matching : matching.slice(0, Math.max(0, filter.limit));
  }
}

function copyRun(run: RunRecord, version: number): RunRecord {
  return {
    id: run.id,
    workflow: run.workflow,
    project: run.project,
    domain: run.domain,
    spec: copyJson(run.spec),
    inputs: copyJson(run.inputs),
    options: copyJson(run.options),
    status: run.status,
    outputs: copyJson(run.outputs),
    error: copyJson(run.error),
    version,
    createdAt: copyDate(run.createdAt),
    updatedAt: copyDate(run.updatedAt),
    finishedAt: copyDate(run.finishedAt),
  };
}

/**
 * The record a write leaves: the whole node, or the stored one with only the changed fields
 * replaced (nulls included); undefined for a partial write of a record the store does not hold.
 * Only what is written is copied: the stored record's other fields are the store's own copies.
 */
function written(stored: NodeExecution | undefined, write: NodeWrite, runId: string): NodeExecution | undefined {
  if (write.changed === undefined) return storedNode(write.node, runId);
  if (stored === undefined) return undefined;
  const next: NodeExecution = { ...stored };
  for (const field of write.changed) assign(next, write.node, field);
  if (next.cacheWriteRetry != null) return next;
  const { cacheWriteRetry: _cleared, ...rest } = next; // a cleared retry is absent, as a load gives it
  return rest;
}

function assign<K extends NodeField>(target: NodeExecution, source: NodeExecution, field: K): void {
  target[field] = field === 'inputs' ? (storedInputs(source) as NodeExecution[K]) : copyValue(source[field]);
}

/**
 * A node as the SQL stores keep it: inputs that read other nodes' outputs as their bindings (each
 * value stored once, controller/core/input-references.ts), resolved again by `load`. The fake keeps
 * the same form, so every test on it also runs the references' round trip.
 */
function storedNode(node: NodeExecution, runId: string): NodeExecution {
  return copyNode(node, runId, storedInputs(node));
}

function storedInputs(node: NodeExecution): NodeExecution['inputs'] {
  return copyJson(encodeStoredInputs(node.inputs) as NodeExecution['inputs']);
}

function copyValue<T>(value: T): T {
  if (value instanceof Date) return copyDate(value) as T;
  return value === undefined ? value : copyJson(value);
}

function copyNode(node: NodeExecution, runId: string, inputs: NodeExecution['inputs'] = copyJson(node.inputs)): NodeExecution {
  return {
    runId,
    nodeId: node.nodeId,
    task: node.task,
    phase: node.phase,
    cacheStatus: node.cacheStatus,
    cacheReason: node.cacheReason,
    cacheKey: node.cacheKey,
    cacheKeyParts: copyJson(node.cacheKeyParts),
    attempts: node.attempts,
    inputs,
    output: copyJson(node.output),
    error: copyJson(node.error),
    startedAt: copyDate(node.startedAt),
    finishedAt: copyDate(node.finishedAt),
    subWorkflow: copyJson(node.subWorkflow),
    ...(node.cacheWriteRetry == null ? {} : { cacheWriteRetry: copyJson(node.cacheWriteRetry) }),
    ...(node.waitedFor == null ? {} : { waitedFor: copyJson(node.waitedFor) }),
    ...(node.computeMs == null ? {} : { computeMs: node.computeMs }),
    ...(node.savedMs == null ? {} : { savedMs: node.savedMs }),
    ...(node.cutoffHint == null ? {} : { cutoffHint: copyJson(node.cutoffHint) }),
  };
}

function summarize(run: RunRecord): RunSummary {
  return {
    id: run.id,
    workflow: run.workflow,
    project: run.project,
    domain: run.domain,
    options: copyJson(run.options),
    status: run.status,
    error: copyJson(run.error),
    version: run.version,
    createdAt: copyDate(run.createdAt),
    updatedAt: copyDate(run.updatedAt),
    finishedAt: copyDate(run.finishedAt),
  };
}

