import type { ErrorInfo } from '../errors.js';
import type { Json } from '../json.js';
import type { TraceCarrier } from '../trace-carrier.js';

/** One attempt at running a task, as it crosses the queue. */
export interface TaskAttempt {
  /** `<run>-<node>-<attempt>`: deterministic, so dispatching it twice runs it at most once. */
  id: string;
  runId: string;
  nodeId: string;
  task: string;
  attempt: number;
  inputs: { [name: string]: Json };
  timeoutMs: number | null;
  /** For worker log lines only. */
  cacheKey: string | null;
  /**
   * The version of the task definition the controller traced (its `cache.version`, or the version
   * derived from its source): what the node's key promises about the code that runs. A worker whose
   * registered task has another version refuses the attempt (TASK_VERSION_MISMATCH). Absent for
   * specs saved before attempts carried it: the worker then checks only the signature.
   */
  taskVersion?: string;
  /** `signatureDigest` of the node's signature (absent only on jobs queued by an older controller). */
  signature?: string;
  /**
   * The trace context of the attempt's node span (OpenTelemetry; absent with no SDK installed at the
   * controller): the worker's attempt span is its child, so one trace shows controller and worker.
   * Data from a queue: a worker ignores one that is not a trace context (`traceCarrierOf`).
   */
  trace?: TraceCarrier;
}

/** An attempt to cancel: its id, and its task (whose queue it may still wait in). */
export interface AttemptToCancel {
  id: string;
  task: string;
}

export function attemptId(runId: string, nodeId: string, attempt: number): string {
  return `${runId}-${nodeId}-${attempt}`;
}

interface AttemptResultBase {
  attemptId: string;
  runId: string;
  nodeId: string;
  attempt: number;
  startedAt: Date;
  finishedAt: Date;
}

export type AttemptResult =
  | (AttemptResultBase & { ok: true; output: Json; outputHash: string | null })
  | (AttemptResultBase & { ok: false; error: ErrorInfo });

/**
 * Receives finished attempts in batches. A batch holds what finished while the previous one was
 * being saved (one read of the results stream; in process, what accumulated), so results arriving
 * together cost the controller one round and one save per run. Returns one promise per result, in
 * the batch's order, that resolves once that result's effect is saved; the dispatcher acknowledges
 * each result when its own promise resolves, never before. A promise that rejects leaves its result
 * unacknowledged (the BullMQ dispatcher hands it over again later; the in-process one logs and
 * drops it), and only that result: the others of the batch are acknowledged as they settle, so a
 * run whose saves fail holds back its own results, not another run's. A handler that throws fails
 * the whole batch. The controller decides a batch per run (one round and one save for a run's results); a result that
 * came before the run's state recorded its dispatch rejects alone (RESULT_EARLY, retryable).
 * A result's promise also resolves once it was routed to its run's owner (TaskDispatcher.route);
 * when a rejection carries a numeric `retryAfterMs` (RUN_LEASED: the run's lease is another
 * controller's until then), that is when handing that result over again makes sense.
 */
export type AttemptResultsHandler = (results: readonly AttemptResult[]) => readonly Promise<void>[];

/**
 * Sends task attempts to whatever runs them and reports their results. Implementations:
 * InProcessTaskDispatcher (embedded mode) and BullMqTaskDispatcher (distributed).
 */
export interface TaskDispatcher {
  /**
   * The worker pools this dispatcher reaches: `bullmq:<prefix>`, or for an in-process dispatcher
   * this very process (`in-process:<host>:<pid>:<nonce>`). A run records the pool of the controller
   * that created it, and only a controller whose dispatcher reaches that pool drives it; any other
   * only reads it. So a client that can merely read (no Redis, no tasks) never takes over a run it
   * waits on, and two processes never both run one in-process run's attempts.
   */
  readonly pool: string;
  /**
   * Whether this dispatcher may drive a run recorded under `pool` whose nodes name `tasks`. Absent:
   * exactly its own pool. (In-process: also a run of a process on this host that has died, when its
   * tasks are registered here.)
   */
  mayDrive?(pool: string, tasks: readonly string[]): boolean;
  /**
   * This dispatcher's own address among the controllers sharing its pool, unique per dispatcher:
   * results of the attempts it dispatches come back to it (BullMQ: to its own results stream), not
   * to any controller of the pool. Its controller leases runs under this id, so a run's owner is
   * also where the run's results arrive. Absent: the controller makes up an id, and any result may
   * reach any controller (which routes it, or leaves it to be redelivered).
   */
  readonly address?: string;
  /**
   * Hands a result that reached this dispatcher to the controller at `owner` (the holder of the
   * run's lease). Resolves once the result is safely with that controller's address, so the
   * original may be acknowledged; rejects when no live controller is at that address (the caller
   * keeps the result and tries later). Absent: results cannot be routed.
   */
  route?(result: AttemptResult, owner: string): Promise<void>;
  /**
   * Whether the controller at `address` is known to be gone for good (in-process: its process on
   * this host has exited), so its leases may be taken at once instead of when they expire.
   */
  isGone?(address: string): boolean;
  /**
   * Its controller took over runs that the controller at `address` leased (the lease expired):
   * results still waiting at that address (its inbox) are handed on now, for the runs' new owners,
   * rather than once that controller stops counting as live. Safe if it is in fact alive (paused):
   * its results then reach it through routing. Best effort; never throws.
   */
  takeOverFrom?(address: string): Promise<void>;
  /** Enqueues attempts. Idempotent per attempt id. */
  dispatch(attempts: readonly TaskAttempt[]): Promise<void>;
  /**
   * Cancels attempts of a cancelled run, wherever they are: one still queued never runs its body;
   * one running has its body's `signal` aborted (reason: an error with code ATTEMPT_CANCELLED).
   * Either may still report a result (ATTEMPT_CANCELLED, or whatever the body returned), which the
   * controller drops: the run is over. Unknown or finished ids are ignored. Resolves once the request is out (BullMQ: published to every pool),
   * not when the bodies have stopped. An attempt dispatched again later under the same id is not
   * started either (the dispatcher remembers cancelled ids for a while).
   */
  cancel(attempts: readonly AttemptToCancel[]): Promise<void>;
  /**
   * Registers the handler for results (one per dispatcher); it is called with batches, never with
   * an empty one. Results may arrive before dispatch resolves.
   */
  onResults(handler: AttemptResultsHandler): void;
  /** Stops taking results and releases connections; attempts in flight are left to the transport. */
  close(): Promise<void>;
}

/** The context a task body runs in. */
export interface TaskContext {
  runId: string;
  nodeId: string;
  attempt: number;
  /** Aborted on timeout, shutdown or when the run is cancelled; long-running bodies should honour it. */
  signal: AbortSignal;
}

export interface TaskOutcome {
  output: Json;
  /** Present when the output type declares `hashWith`. */
  outputHash: string | null;
}

/**
 * A task as a worker knows it: a name and a function from JSON inputs to a JSON output. The SDK
 * builds these from `task()` (validating inputs and output against the zod schemas and computing
 * the `hashWith` hash), so the worker never imports the SDK and never evaluates code from a queue.
 */
export interface TaskImplementation {
  name: string;
  /**
   * The definition's version (its `cache.version`, or the version derived from its source) and
   * `signatureDigest` of its signature. When given, an attempt traced from another definition
   * (another version or signature: a rolling deploy) is refused instead of run, so no result is
   * ever written under a key it does not match. Implementations without them accept any attempt.
   */
  version?: string;
  signature?: string;
  execute(inputs: { [name: string]: Json }, context: TaskContext): Promise<TaskOutcome>;
}

export type TaskRegistry = ReadonlyMap<string, TaskImplementation>;
