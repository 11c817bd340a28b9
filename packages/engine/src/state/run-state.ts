import type { ErrorInfo } from '../errors.js';
import type { Json, NodeValue } from '../json.js';
import type { WorkflowSpec } from '../spec/workflow-spec.js';
import type { CacheKeyParts } from '../cache/cache-key.js';
import type { CacheStatus } from './cache-status.js';
import type { NodePhase } from './node-phase.js';
import type { ReusePlan } from './reuse-plan.js';
import type { TraceCarrier } from '../trace-carrier.js';

/**
 * A run's status. `cancelled`: cancelled on request (`Controller.cancel`); its unfinished nodes are
 * `cancelled`. A running run whose `error` is RUN_CANCELLED has a cancel request its controller has
 * not applied yet (see state/cancel-request.ts).
 */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface RunOptions {
  /** Execute every cacheable node without a lookup and overwrite its entry. */
  overwriteCache: boolean;
  /** Reuse results of another run for nodes not downstream of `node` (DESIGN.md "resume"). */
  resumeFrom?: { run: string; node: string };
  /** The worker pool that runs this run's tasks (TaskDispatcher.pool); absent in runs of earlier releases. */
  pool?: string;
  /** A retry (`memoflow runs retry`): the run it retries. */
  retryOf?: string;
  /** Resume and retry: what this run may reuse of the earlier run, computed at submit. */
  reuse?: ReusePlan;
  /** Where the workflow came from when the CLI started the run (so `runs retry` needs no file). */
  source?: WorkflowSource;
  /**
   * The run's trace context (OpenTelemetry), recorded at submit when an SDK is installed: the span
   * of the submitting controller's tenure, so a controller that takes the run over traces its
   * nodes into the same trace (see controller/shell/run-tracing.ts).
   */
  trace?: TraceCarrier;
}

/** A module path (absolute) and the name of the workflow it exports. */
export interface WorkflowSource {
  module: string;
  workflow: string;
}

/** One run, as the run store keeps it. `version` increments on every save (optimistic lock). */
export interface RunRecord {
  id: string;
  workflow: string;
  project: string;
  domain: string;
  spec: WorkflowSpec;
  inputs: { [name: string]: NodeValue };
  options: RunOptions;
  status: RunStatus;
  outputs: { [name: string]: Json } | null;
  error: ErrorInfo | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

/** One node's execution within a run. Created `pending` with the run; updated as it moves. */
export interface NodeExecution {
  runId: string;
  nodeId: string;
  task: string;
  phase: NodePhase;
  cacheStatus: CacheStatus | null;
  /** For SKIPPED: the SkipReason; for MISS/EVICTED/LOOKUP_FAILURE/PUT_FAILURE: what happened. */
  cacheReason: string | null;
  cacheKey: string | null;
  cacheKeyParts: CacheKeyParts | null;
  /** Attempts started so far (1 for the first). */
  attempts: number;
  inputs: { [name: string]: NodeValue } | null;
  output: NodeValue | null;
  error: ErrorInfo | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  /**
   * Container nodes once expanded: the sub-workflow their children come from (a dynamic node's
   * compiled future, or a sub-workflow's spec), with ids unprefixed. Children are recorded as
   * nodes `<container>.<child>`.
   */
  subWorkflow: WorkflowSpec | null;
  /**
   * A cache write of this node's output that failed and is being retried (the node stays
   * `writing`; downstream nodes do not wait for it). Absent or null: none. See `CacheWriteRetry`.
   */
  cacheWriteRetry?: CacheWriteRetry | null;
  /**
   * A serialized node (`cache.serialize`) that found its key reserved by another owner: whose
   * reservation it waited for (its status was WAITING; it then ended HIT, or took over and executed).
   * Absent or null: it never waited.
   */
  waitedFor?: ReservationWait | null;
  /**
   * The compute the node's own execution took, in ms: a task's successful attempt's run time, a
   * dynamic node's compile attempt's (its children's are their own). Absent or null: it did not
   * execute (HIT, RECOVERED, a sub-workflow), or the record predates durations.
   */
  computeMs?: number | null;
  /**
   * HIT (and FUTURE_HIT): the compute its entry recorded, which serving it saved; null for a hit
   * on an entry that recorded none (an earlier release's: unknown). Absent or null otherwise.
   */
  savedMs?: number | null;
  /** A node the cascade reran whose own key had an entry: see `CutoffHint`. Absent or null: none. */
  cutoffHint?: CutoffHint | null;
}

/**
 * The early-cutoff report (issue 11, item 4): a node that reran only because of the cascade
 * (`SKIPPED(upstream-reran)`) and found an entry under its own key, looked up before its own write
 * replaced it. Its inputs were unchanged, so it would have been a HIT had `upstream`'s output been
 * content-hashed (`hashWith`); `savedMs` is what that hit would have saved (null: unknown).
 */
export interface CutoffHint {
  /** The upstream node that reran and cascaded into this one. */
  upstream: string;
  savedMs: number | null;
  /** Who wrote the entry found. */
  entry: { runId: string; nodeId: string };
}

/** The owner a serialized node waited for: its run and node. */
export interface ReservationWait {
  runId: string;
  nodeId: string;
}

/**
 * A failed cache write, retried with backoff while the run lives and once more when everything
 * else is done; only if that last put fails too is the write lost (PUT_FAILURE, named in the run's
 * final event). Persisted with the node, so a controller taking over the run continues it.
 */
export interface CacheWriteRetry {
  /** Failed puts so far. */
  failures: number;
  /** The last failure, as the catalog reported it. */
  lastError: string;
  /** When the next put is due (ms since the epoch); null while a put is in flight. */
  retryAtMs: number | null;
  /** Everything else in the run is done: this is the last put. */
  final: boolean;
}

/** A run with all its node executions: what a controller round loads and decides on. */
export interface RunState {
  run: RunRecord;
  nodes: { [nodeId: string]: NodeExecution };
}
