import { resolve } from 'node:path';
import {
  Controller,
  DEFAULT_CALL_TIMEOUT_MS,
  MemoflowError,
  withStoreDeadlines,
  describeGiven,
  type CacheEntrySummary,
  type CacheEvictFilter,
  type CacheListFilter,
  type NodeExplanation,
  type RunListFilter,
  type RunSummary,
  type TaskDispatcher,
  type TaskImplementation,
  type WorkflowPlan,
} from '@memoflow/engine';
import type { Storage } from '@memoflow/catalog';
import { BullMqTaskDispatcher, InProcessTaskDispatcher, silentLogger } from '@memoflow/worker';
import type { AnyTask } from '../define/task.js';
import { isWorkflowDefinition, type AnyWorkflow, type WorkflowInputs, type WorkflowResult } from '../define/workflow.js';
import { createEventLog, type EventSink, type LogFormat } from '../log/event-log.js';
import { CLOSE_STEP_TIMEOUT_MS, closeWithin } from './close-within.js';
import { checkRedis, openDatabaseStorage, openEmbeddedStorage } from './open-storage.js';
import { RunHandle, toRunReport, type RunReport } from './run-handle.js';
import { loadRunGraph, type RunGraphNode } from './run-graph.js';
import { retryRequest } from './retry.js';
import { rememberStorage } from './storage-of.js';
import { explainRunNode } from './explain.js';
import { planRun, type PlanOptions } from './plan.js';

export interface ConnectOptions {
  /** Embedded mode: where PGlite keeps the catalog and run store (default `./.memoflow`). */
  dataDir?: string;
  /** Postgres for the catalog and run store (default: `DATABASE_URL`, else embedded). */
  databaseUrl?: string;
  /** Postgres schema to use (default: `MEMOFLOW_SCHEMA`, else `memoflow`). */
  schema?: string;
  /**
   * Distributed mode: tasks go to BullMQ queues on this Redis and `memoflow worker` pools run them
   * (default: `REDIS_URL`). Needs `databaseUrl` too: the run state must be where every controller sees it.
   */
  redisUrl?: string;
  /** BullMQ key prefix shared by controllers and worker pools (default `MEMOFLOW_PREFIX` or `memoflow`). */
  prefix?: string;
  /** Distributed mode: how long a task may wait with no worker serving it before its node fails (default 60 s). */
  noWorkerGraceMs?: number;
  /** Distributed mode: how long a result a controller took stays with it unrecorded before another takes it (default 10 s). */
  resultClaimIdleMs?: number;
  /**
   * How long a run this connection's controller owns stays leased to it without a renewal (default
   * 10 s): if this process dies, another controller takes its runs over after about this long.
   */
  leaseMs?: number;
  /**
   * How long a run store or catalog call of this connection's controller may go unanswered before
   * it is given up on and tried again (default 60 s; doubled for a call that keeps hitting it).
   * The connection's own reads (`runs.get`, `runs.list`, `cache ls`, explain, plan) fail with
   * CALL_TIMEOUT after as long.
   */
  callTimeoutMs?: number;
  /** In-process task concurrency (embedded mode). */
  concurrency?: number;
  /**
   * Embedded mode: how long a timed-out attempt keeps its slot (and holds back its retry) while its
   * body honours the abort, before it is abandoned with a warning (default 10 s). Worker pools
   * take `timeoutGraceMs` (`--timeout-grace`) themselves.
   */
  timeoutGraceMs?: number;
  /**
   * `cache: { serialize: true }`: how long a reservation lasts without a heartbeat from the
   * controller driving its owner, so how soon waiters take over from an owner whose process died
   * (default 30 s; `MEMOFLOW_RESERVATION_TTL_MS`).
   */
  reservationTtlMs?: number;
  /**
   * `cache: { serialize: true }`: how often a WAITING node asks the catalog again even if it heard
   * no release (default 3 s). Releases are announced (Postgres LISTEN/NOTIFY), so this is only the
   * backstop for a lost notification or an owner whose reservation expired.
   */
  reservationPollMs?: number;
  /** Node and run events: a format (`pretty` to standard error by default) or a function of yours. */
  log?: LogFormat | EventSink;
}

export interface RunOptions {
  /** Cache entries are never shared across projects and domains. */
  project?: string;
  domain?: string;
  /** Execute every cacheable node and overwrite its entry (`--overwrite-cache`). */
  overwriteCache?: boolean;
  /**
   * Reuse run `run`'s results (RECOVERED) for the nodes not downstream of `node` whose definition
   * and inputs are unchanged; `node` reruns (SKIPPED resume) and so does everything downstream.
   */
  resumeFrom?: { run: string; node: string };
  /** Where the workflow came from (the CLI records its file), so `memoflow runs retry` needs no file. */
  source?: { module: string; workflow: string };
}

export interface RetryOptions {
  /**
   * The workflow as it is now (its current definitions decide what is unchanged; in-process modes
   * run its tasks). Without it the retry runs the run's recorded workflow, whose tasks this
   * connection must have registered (in-process modes) or worker pools must serve (distributed).
   */
  workflow?: AnyWorkflow;
  /** Where `workflow` came from (default: what the retried run recorded). */
  source?: { module: string; workflow: string };
}

export const DEFAULT_PROJECT = 'default';
export const DEFAULT_DOMAIN = 'development';

/** A connection to memoflow: submits runs, reads them back, and manages the cache. */
export interface Memoflow {
  run<W extends AnyWorkflow>(workflow: W, inputs: WorkflowInputs<W>, options?: RunOptions): Promise<RunHandle<WorkflowResult<W>>>;
  /**
   * A new run of the same workflow, inputs, project and domain as run `runId` that reuses every node
   * of it that succeeded and is unchanged, and runs what failed, was aborted or cancelled, and its
   * downstream (Flyte's recover).
   */
  retry<R = unknown>(runId: string, options?: RetryOptions): Promise<RunHandle<R>>;
  /**
   * What a run of `workflow` with `inputs` would do now, per node (HIT, MISS, EVICTED, SKIPPED,
   * DISABLED, FUTURE_HIT, or UNKNOWN where it depends on a value not yet computed), with reasons;
   * reads the catalog only: no run is created, nothing runs or is written (`memoflow plan`).
   */
  plan<W extends AnyWorkflow>(workflow: W, inputs: WorkflowInputs<W>, options?: PlanOptions): Promise<WorkflowPlan>;
  /** A handle on an existing run. */
  getRun<R = unknown>(id: string): RunHandle<R>;
  /**
   * Why node `nodeId` of run `runId` has its cache status (`memoflow cache explain`): its key parts;
   * for a miss, the nearest entry of its task and the parts that differ; for SKIPPED(upstream-reran),
   * the upstream node that reran and why; for a HIT, the run and node that wrote the entry.
   */
  explain(runId: string, nodeId: string): Promise<NodeExplanation>;
  runs: {
    list(filter?: RunListFilter): Promise<RunSummary[]>;
    show(id: string): Promise<RunReport>;
    /** The run's DAG: each node's dependencies and container (what `memoflow runs show` draws). */
    graph(id: string): Promise<RunGraphNode[]>;
  };
  cache: {
    list(filter?: CacheListFilter): Promise<CacheEntrySummary[]>;
    evict(filter: CacheEvictFilter): Promise<number>;
  };
  /** Makes tasks runnable in this process (done automatically for the tasks of workflows you run). */
  register(...tasks: AnyTask[]): void;
  /** embedded: PGlite + in-process; postgres: Postgres + in-process; distributed: Postgres + BullMQ workers. */
  readonly mode: 'embedded' | 'postgres' | 'distributed';
  close(): Promise<void>;
}

/**
 * Connects to memoflow. With no options (and no `DATABASE_URL`), the embedded mode: catalog and run
 * store in PGlite under `./.memoflow`, tasks run in this process.
 */
export async function connect(options: ConnectOptions = {}): Promise<Memoflow> {
  const databaseUrl = nonEmpty(options.databaseUrl ?? process.env['DATABASE_URL']);
  const redisUrl = nonEmpty(options.redisUrl ?? process.env['REDIS_URL']);
  if (redisUrl !== undefined && databaseUrl === undefined) {
    throw new MemoflowError('INVALID_SPEC', 'distributed mode needs DATABASE_URL as well as REDIS_URL: run state must live where every controller and client can see it', { field: 'databaseUrl' });
  }
  if (options.concurrency !== undefined && (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1)) {
    throw new MemoflowError('INVALID_OPTION', `concurrency must be a positive integer, got ${String(options.concurrency)}`, { field: 'concurrency' });
  }
  // Before anything opens: storage opened for a connection refused afterwards would stay open.
  if (options.callTimeoutMs !== undefined && (typeof options.callTimeoutMs !== 'number' || !Number.isFinite(options.callTimeoutMs) || options.callTimeoutMs <= 0)) {
    throw new MemoflowError('INVALID_OPTION', `callTimeoutMs must be a positive number of milliseconds, got ${String(options.callTimeoutMs)}`, { field: 'callTimeoutMs' });
  }
  if (options.timeoutGraceMs !== undefined && (!Number.isSafeInteger(options.timeoutGraceMs) || options.timeoutGraceMs < 0)) {
    throw new MemoflowError('INVALID_OPTION', `timeoutGraceMs must be a non-negative integer (ms), got ${String(options.timeoutGraceMs)}`, { field: 'timeoutGraceMs' });
  }
  // Redis first: it holds nothing open, and a wrong REDIS_URL must fail before a run is submitted.
  if (redisUrl !== undefined) await checkRedis(redisUrl);
  const storage: Storage =
    databaseUrl === undefined
      ? await openEmbeddedStorage(resolve(options.dataDir ?? '.memoflow'))
      : await openDatabaseStorage(databaseUrl, options.schema ?? nonEmpty(process.env['MEMOFLOW_SCHEMA']) ?? 'memoflow');
  const registry = new Map<string, TaskImplementation>();
  const dispatcher: TaskDispatcher =
    redisUrl === undefined
      ? new InProcessTaskDispatcher({
          tasks: registry,
          ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
          ...(options.timeoutGraceMs === undefined ? {} : { timeoutGraceMs: options.timeoutGraceMs }),
        })
      : new BullMqTaskDispatcher({
          connection: redisUrl,
          prefix: options.prefix ?? process.env['MEMOFLOW_PREFIX'] ?? 'memoflow',
          // Results a dead controller read but never recorded go to a live one after this long
          // (live controllers renew theirs, so a short idle time is safe).
          resultClaimIdleMs: options.resultClaimIdleMs ?? 10_000,
          logger: silentLogger,
          ...(options.noWorkerGraceMs === undefined ? {} : { noWorkerGraceMs: options.noWorkerGraceMs }),
        });
  const emit = typeof options.log === 'function' ? options.log : createEventLog({ format: options.log ?? 'pretty' });
  const reservationTtlMs = options.reservationTtlMs ?? envMs('MEMOFLOW_RESERVATION_TTL_MS');
  const controller = new Controller({
    catalog: storage.catalog,
    runStore: storage.runStore,
    dispatcher,
    onEvent: emit,
    ...(reservationTtlMs === undefined ? {} : { reservationTtlMs }),
    ...(options.reservationPollMs === undefined ? {} : { reservationPollMs: options.reservationPollMs }),
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    ...(options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs }),
  });
  const mode = redisUrl !== undefined ? 'distributed' : databaseUrl !== undefined ? 'postgres' : 'embedded';
  // The client's own reads (runs.get, runs.list, cache ls, explain, plan, retry, the web UI's) have the
  // controller's deadlines too: on a connection that died without a word they fail with
  // CALL_TIMEOUT instead of hanging the command for the kernel's ~11 minutes.
  const reads: Storage = { ...withStoreDeadlines(storage, options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS), close: () => storage.close() };
  const client = new Client(controller, reads, dispatcher, registry, mode);
  rememberStorage(client, reads);
  return client;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return (value as { kind?: unknown }).kind === 'task' || (value as { kind?: unknown }).kind === 'dynamic' ? 'a task (run a workflow that calls it)' : 'a function';
  return typeof value === 'object' ? 'a plain object' : `a ${typeof value}`;
}

/**
 * Run options as a JavaScript caller may pass them: `mf.run(wf, inputs, null)` read `null.resumeFrom`,
 * and `overwriteCache: 'yes'` was taken as false (only `true` overwrites). Project and domain are
 * checked where the run is created (newRunState).
 */
function assertRunOptions(options: unknown, workflow: string): asserts options is RunOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new MemoflowError('INVALID_OPTION', `run options must be an object ({ project, domain, overwriteCache }), got ${describeGiven(options)}`, { workflow, field: 'options' });
  }
  const overwrite: unknown = (options as RunOptions).overwriteCache;
  if (overwrite !== undefined && typeof overwrite !== 'boolean') {
    throw new MemoflowError('INVALID_OPTION', `overwriteCache must be true or false, got ${describeGiven(overwrite)}`, { workflow, field: 'overwriteCache' });
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

class Client implements Memoflow {
  private closed = false;

  constructor(
    private readonly controller: Controller,
    private readonly storage: Storage,
    private readonly dispatcher: TaskDispatcher,
    private readonly registry: Map<string, TaskImplementation>,
    readonly mode: 'embedded' | 'postgres' | 'distributed',
  ) {}

  async run<W extends AnyWorkflow>(workflow: W, inputs: WorkflowInputs<W>, options: RunOptions = {}): Promise<RunHandle<WorkflowResult<W>>> {
    this.assertOpen();
    if (!isWorkflowDefinition(workflow)) {
      throw new MemoflowError('INVALID_SPEC', `mf.run needs a workflow made with workflow() as its first argument, got ${describeValue(workflow)}`, { field: 'workflow' });
    }
    assertRunOptions(options, workflow.workflowName);
    const spec = workflow.spec; // traces and validates: bad definitions fail here, before anything runs
    const prepared = workflow.prepareInputs(inputs);
    // In-process modes run the workflow's tasks here; in distributed mode worker pools do.
    if (this.mode !== 'distributed') this.register(...workflow.tasks.values());
    const runOptions = {
      overwriteCache: options.overwriteCache ?? false,
      ...(options.resumeFrom === undefined ? {} : { resumeFrom: options.resumeFrom }),
      ...(options.source === undefined ? {} : { source: options.source }),
    };
    const id = await this.controller.submit({
      spec,
      inputs: prepared,
      // `undefined` only: a null project is a mistake to name, not a request for the default.
      project: options.project === undefined ? DEFAULT_PROJECT : options.project,
      domain: options.domain === undefined ? DEFAULT_DOMAIN : options.domain,
      options: runOptions,
    });
    return new RunHandle<WorkflowResult<W>>(id, this.controller, this.storage.runStore);
  }

  async retry<R = unknown>(runId: string, options: RetryOptions = {}): Promise<RunHandle<R>> {
    this.assertOpen();
    const submit = await retryRequest(this.storage.runStore, runId, options, this.mode === 'distributed' ? undefined : this.registry);
    if (options.workflow !== undefined && this.mode !== 'distributed') this.register(...options.workflow.tasks.values());
    const id = await this.controller.submit(submit);
    return new RunHandle<R>(id, this.controller, this.storage.runStore);
  }

  async plan<W extends AnyWorkflow>(workflow: W, inputs: WorkflowInputs<W>, options: PlanOptions = {}): Promise<WorkflowPlan> {
    this.assertOpen();
    return planRun(this.storage.catalog, workflow, inputs, options, { project: DEFAULT_PROJECT, domain: DEFAULT_DOMAIN });
  }

  getRun<R = unknown>(id: string): RunHandle<R> {
    return new RunHandle<R>(id, this.controller, this.storage.runStore);
  }

  explain(runId: string, nodeId: string): Promise<NodeExplanation> {
    this.assertOpen();
    return explainRunNode(this.storage, runId, nodeId);
  }

  readonly runs = {
    list: (filter?: RunListFilter) => this.storage.runStore.list(filter),
    show: async (id: string) => {
      const state = await this.storage.runStore.load(id);
      if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${id}' does not exist`);
      return toRunReport(state);
    },
    graph: (id: string) => loadRunGraph(this.storage.runStore, id),
  };

  readonly cache = {
    list: (filter?: CacheListFilter) => this.storage.catalog.list(filter),
    evict: (filter: CacheEvictFilter) => this.storage.catalog.evict(filter),
  };

  register(...tasks: AnyTask[]): void {
    for (const task of tasks) {
      const known = this.registry.get(task.taskName);
      if (known !== undefined && known !== task.implementation) {
        throw new MemoflowError('DUPLICATE_TASK_NAME', `a different task named '${task.taskName}' is already registered in this connection`, { node: task.taskName, field: 'name' });
      }
      this.registry.set(task.taskName, task.implementation);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Each step is bounded: after a dropped database connection a query in flight never settles,
    // and close() must still finish (see close-within.ts).
    await closeWithin('the controller', () => this.controller.close(), undefined, CLOSE_STEP_TIMEOUT_MS);
    await closeWithin('the task dispatcher', () => this.dispatcher.close(), undefined, CLOSE_STEP_TIMEOUT_MS);
    // PGlite flushes its files on close: give it long, abandoning it could lose the last writes.
    await closeWithin('the storage', () => this.storage.close(), undefined, this.mode === 'embedded' ? 60_000 : CLOSE_STEP_TIMEOUT_MS);
  }

  private assertOpen(): void {
    if (this.closed) throw new MemoflowError('STALE_STATE', 'this memoflow connection is closed');
  }
}

/** A positive number of milliseconds from the environment, or undefined when unset or not one. */
function envMs(name: string): number | undefined {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}
