import { resolve } from 'node:path';
import {
  Controller,
  MemoflowError,
  type CacheEntrySummary,
  type CacheEvictFilter,
  type CacheListFilter,
  type RunListFilter,
  type RunSummary,
  type TaskDispatcher,
  type TaskImplementation,
} from '@memoflow/engine';
import type { Storage } from '@memoflow/catalog';
import { BullMqTaskDispatcher, InProcessTaskDispatcher, silentLogger } from '@memoflow/worker';
import type { AnyTask } from '../define/task.js';
import { isWorkflowDefinition, type AnyWorkflow, type WorkflowInputs, type WorkflowResult } from '../define/workflow.js';
import { createEventLog, type EventSink, type LogFormat } from '../log/event-log.js';
import { CLOSE_STEP_TIMEOUT_MS, closeWithin } from './close-within.js';
import { checkRedis, openDatabaseStorage, openEmbeddedStorage } from './open-storage.js';
import { RunHandle, toRunReport, type RunReport } from './run-handle.js';

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
  /** In-process task concurrency (embedded mode). */
  concurrency?: number;
  /** Node and run events: a format (`pretty` to standard error by default) or a function of yours. */
  log?: LogFormat | EventSink;
}

export interface RunOptions {
  /** Cache entries are never shared across projects and domains. */
  project?: string;
  domain?: string;
  /** Execute every cacheable node and overwrite its entry (`--overwrite-cache`). */
  overwriteCache?: boolean;
  resumeFrom?: { run: string; node: string };
}

export const DEFAULT_PROJECT = 'default';
export const DEFAULT_DOMAIN = 'development';

/** A connection to memoflow: submits runs, reads them back, and manages the cache. */
export interface Memoflow {
  run<W extends AnyWorkflow>(workflow: W, inputs: WorkflowInputs<W>, options?: RunOptions): Promise<RunHandle<WorkflowResult<W>>>;
  /** A handle on an existing run. */
  getRun<R = unknown>(id: string): RunHandle<R>;
  runs: {
    list(filter?: RunListFilter): Promise<RunSummary[]>;
    show(id: string): Promise<RunReport>;
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
  // Redis first: it holds nothing open, and a wrong REDIS_URL must fail before a run is submitted.
  if (redisUrl !== undefined) await checkRedis(redisUrl);
  const storage: Storage =
    databaseUrl === undefined
      ? await openEmbeddedStorage(resolve(options.dataDir ?? '.memoflow'))
      : await openDatabaseStorage(databaseUrl, options.schema ?? nonEmpty(process.env['MEMOFLOW_SCHEMA']) ?? 'memoflow');
  const registry = new Map<string, TaskImplementation>();
  const dispatcher: TaskDispatcher =
    redisUrl === undefined
      ? new InProcessTaskDispatcher({ tasks: registry, ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }) })
      : new BullMqTaskDispatcher({
          connection: redisUrl,
          prefix: options.prefix ?? process.env['MEMOFLOW_PREFIX'] ?? 'memoflow',
          // Results of many nodes are handled at once so a controller round batches them.
          resultConcurrency: 32,
          // Results a dead controller read but never recorded go to a live one after this long
          // (live controllers renew theirs, so a short idle time is safe).
          resultClaimIdleMs: options.resultClaimIdleMs ?? 10_000,
          logger: silentLogger,
          ...(options.noWorkerGraceMs === undefined ? {} : { noWorkerGraceMs: options.noWorkerGraceMs }),
        });
  const emit = typeof options.log === 'function' ? options.log : createEventLog({ format: options.log ?? 'pretty' });
  const controller = new Controller({ catalog: storage.catalog, runStore: storage.runStore, dispatcher, onEvent: emit, ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }) });
  const mode = redisUrl !== undefined ? 'distributed' : databaseUrl !== undefined ? 'postgres' : 'embedded';
  return new Client(controller, storage, dispatcher, registry, mode);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return (value as { kind?: unknown }).kind === 'task' || (value as { kind?: unknown }).kind === 'dynamic' ? 'a task (run a workflow that calls it)' : 'a function';
  return typeof value === 'object' ? 'a plain object' : `a ${typeof value}`;
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
    if (options.resumeFrom !== undefined) {
      throw new MemoflowError('NOT_SUPPORTED', '`resumeFrom` (--resume-from) is not implemented yet; a plain rerun reuses every cached result already', { workflow: workflow.workflowName, field: 'resumeFrom' });
    }
    const spec = workflow.spec; // traces and validates: bad definitions fail here, before anything runs
    const prepared = workflow.prepareInputs(inputs);
    // In-process modes run the workflow's tasks here; in distributed mode worker pools do.
    if (this.mode !== 'distributed') this.register(...workflow.tasks.values());
    const runOptions = { overwriteCache: options.overwriteCache ?? false, ...(options.resumeFrom === undefined ? {} : { resumeFrom: options.resumeFrom }) };
    const id = await this.controller.submit({
      spec,
      inputs: prepared,
      project: options.project ?? DEFAULT_PROJECT,
      domain: options.domain ?? DEFAULT_DOMAIN,
      options: runOptions,
    });
    return new RunHandle<WorkflowResult<W>>(id, this.controller, this.storage.runStore);
  }

  getRun<R = unknown>(id: string): RunHandle<R> {
    return new RunHandle<R>(id, this.controller, this.storage.runStore);
  }

  readonly runs = {
    list: (filter?: RunListFilter) => this.storage.runStore.list(filter),
    show: async (id: string) => {
      const state = await this.storage.runStore.load(id);
      if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${id}' does not exist`);
      return toRunReport(state);
    },
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
