import { hostname } from 'node:os';
import { systemClock } from '@memoflow/engine';
import { DEFAULT_TIMEOUT_GRACE_MS, failedAttemptResult } from '../run-attempt.js';
import type { AttemptResult, Clock, TaskImplementation, TaskRegistry } from '@memoflow/engine';
import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Semaphore } from '../concurrency/semaphore.js';
import { WorkerError } from '../errors.js';
import type { WorkerLogger } from '../logger.js';
import { toTaskRegistry } from '../task-registry.js';
import { attemptLogFields, createAttemptProcessor } from './attempt-processor.js';
import { cancelChannel, DEFAULT_PREFIX, taskQueueName } from './queue-names.js';
import { AttemptCancellations } from '../attempt-cancellations.js';
import { toBullMqConnection, toRedisOptions } from './redis-connection.js';
import type { RedisConnection } from './redis-connection.js';
import { DEFAULT_RETENTION_MS, ResultPublisher } from './results-stream.js';
import { valueRefOptions, ValueStore } from './value-refs.js';
import { decodeQueuedAttempt, replyToOf } from './wire-format.js';

export interface StartWorkerOptions {
  /** The tasks this pool runs, by name; it listens on exactly their queues. */
  tasks: readonly TaskImplementation[] | TaskRegistry;
  /** `redis://...`; or give `connection`. */
  redisUrl?: string;
  connection?: RedisConnection;
  /** BullMQ key prefix; controllers and pools must agree on it. Default `memoflow`. */
  prefix?: string;
  /** Attempts running at once across all the pool's tasks. Default 8. */
  concurrency?: number;
  /** Default: pino at `info` to stdout. */
  logger?: WorkerLogger;
  clock?: Clock;
  /** Shown by `Queue.getWorkers()` and in logs. Default `<host>-<pid>`. */
  name?: string;
  /** A job's lock lives this long unless renewed (renewed every half of it). Default 30 s. */
  lockDurationMs?: number;
  /** How often a pool looks for stalled jobs (lock expired: their worker died). Default 30 s. */
  stalledIntervalMs?: number;
  /** Stalls an attempt survives before it is failed with TASK_STALLED. Default 1 (BullMQ's). */
  maxStalledCount?: number;
  /** See DEFAULT_RETENTION_MS. */
  retentionMs?: number;
  /**
   * A result output whose JSON text is at least this many bytes is stored once in Redis under its
   * hash and the results-stream entry carries the hash (value-refs.ts). `null`: always inline.
   * Default DEFAULT_VALUE_REF_THRESHOLD_BYTES (8 KiB). Inputs follow the dispatcher's setting.
   */
  valueRefThresholdBytes?: number | null;
  /** Safety expiry of values stored by reference; see DEFAULT_VALUE_TTL_MS (7 days). */
  valueTtlMs?: number;
  /** How long a timed-out body keeps its slot while it honours the abort. Default DEFAULT_TIMEOUT_GRACE_MS (10 s). */
  timeoutGraceMs?: number;
}

/** A running pool. `close()` drains: running attempts finish and publish their results. */
export interface WorkerPool {
  readonly name: string;
  readonly prefix: string;
  readonly tasks: readonly string[];
  close(): Promise<void>;
}

export const DEFAULT_POOL_CONCURRENCY = 8;

/**
 * Starts a worker pool: one BullMQ Worker per registered task (each task has its own queue, see
 * queue-names.ts), all sharing one semaphore of `concurrency` slots. Resolves once every worker
 * is connected, so `Queue.getWorkers()` sees the pool as soon as this returns.
 *
 * Trade-off of per-task queues with a shared bound: each BullMQ Worker may claim up to
 * `concurrency` jobs, so a busy pool can hold claimed jobs waiting for a slot (their locks are
 * renewed; if the pool dies they stall and are recovered). A drain hands those back to the queue.
 */
export async function startWorker(options: StartWorkerOptions): Promise<WorkerPool> {
  const registry = toTaskRegistry(options.tasks);
  if (registry.size === 0) throw new WorkerError('INVALID_OPTION', 'startWorker needs at least one task');
  const concurrency = options.concurrency ?? DEFAULT_POOL_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new WorkerError('INVALID_OPTION', `concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  const where = options.connection ?? options.redisUrl;
  if (where === undefined) throw new WorkerError('INVALID_OPTION', 'startWorker needs `redisUrl` or `connection`');
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const name = options.name ?? `${hostname()}-${process.pid}`;
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  const logger = (options.logger ?? pino({ name: 'memoflow-worker' })).child({ pool: name });
  const connection = toRedisOptions(where, `${prefix}.memoflow-worker`);
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  const timeoutGraceMs = options.timeoutGraceMs ?? DEFAULT_TIMEOUT_GRACE_MS;
  const bullConnection = toBullMqConnection(connection);

  // One plain client publishes every result of the pool (one script call each).
  const redis = new Redis({ ...connection, lazyConnect: true });
  redis.on('error', (err) => logger.error({ err }, 'redis:error'));
  const valueRefs = valueRefOptions(options);
  const results = new ResultPublisher(redis, prefix, retentionMs, valueRefs);
  const slots = new Semaphore(concurrency);
  // Cancellations reach the pool on one subscriber connection (a subscribed client can do nothing else).
  const cancellations = new AttemptCancellations();
  const subscriber = new Redis({ ...connection, lazyConnect: true });
  subscriber.on('error', (err) => logger.error({ err }, 'redis:error'));
  subscriber.on('message', (_channel: string, message: string) => {
    const ids = cancelledIds(message);
    if (ids === null) logger.warn({ message: message.slice(0, 200) }, 'attempt:cancel-malformed');
    else cancellations.cancel(ids);
  });
  const processor = createAttemptProcessor({
    cancellations,
    registry,
    clock: options.clock ?? systemClock,
    slots,
    results,
    values: new ValueStore(redis, prefix, valueRefs),
    logger,
    ...(options.timeoutGraceMs === undefined ? {} : { timeoutGraceMs: options.timeoutGraceMs }),
  });
  const pool = new BullMqWorkerPool(name, prefix, [...registry.keys()], slots, redis, subscriber, results, logger);
  try {
    for (const task of registry.keys()) {
      const worker = new Worker(taskQueueName(task), processor, {
        connection: bullConnection,
        prefix,
        name,
        concurrency,
        lockDuration: lockDurationMs,
        stalledInterval: options.stalledIntervalMs ?? 30_000,
        maxStalledCount: options.maxStalledCount ?? 1,
      });
      pool.adopt(worker);
    }
    await pool.ready();
  } catch (error) {
    await pool.close();
    throw error;
  }
  // The limits of a task body, stated where an operator looks when an attempt runs twice.
  logger.info(
    {
      prefix,
      tasks: pool.tasks,
      concurrency,
      lockDurationMs,
      timeoutGraceMs,
      limits:
        `task bodies share this process's event loop: synchronous work longer than lockDurationMs (${lockDurationMs} ms) without an await ` +
        'stops the lock renewal, so the attempt is taken for stalled and runs again; a timed-out body that ignores its signal ' +
        `keeps its slot for at most timeoutGraceMs (${timeoutGraceMs} ms)`,
    },
    'pool:started',
  );
  return pool;
}

class BullMqWorkerPool implements WorkerPool {
  private readonly workers: Worker[] = [];
  /** Results published from event listeners (not from processors), awaited by close(). */
  private readonly background = new Set<Promise<void>>();
  private closing: Promise<void> | null = null;

  constructor(
    readonly name: string,
    readonly prefix: string,
    readonly tasks: readonly string[],
    private readonly slots: Semaphore,
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly results: ResultPublisher,
    private readonly logger: WorkerLogger,
  ) {}

  adopt(worker: Worker): void {
    this.workers.push(worker);
    // An 'error' event with no listener would crash the process (EventEmitter semantics).
    worker.on('error', (err) => this.logger.error({ err, queue: worker.name }, 'redis:error'));
    worker.on('stalled', (jobId) => this.logger.warn({ jobId, queue: worker.name }, 'attempt:stalled'));
    worker.on('failed', (job, err) => {
      if (job !== undefined) this.track(this.reportFailedJob(job, err));
    });
  }

  async ready(): Promise<void> {
    await Promise.all([
      this.redis.connect(),
      this.subscriber.connect().then(() => this.subscriber.subscribe(cancelChannel(this.prefix))),
      ...this.workers.map((w) => w.waitUntilReady()),
    ]);
  }

  close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private async drain(): Promise<void> {
    this.logger.info({}, 'pool:draining');
    const stopping = Promise.allSettled(this.workers.map((w) => w.close()));
    this.slots.close(); // claimed jobs still waiting for a slot go back to the queue
    await stopping;
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
    this.logger.info({}, 'pool:closed');
  }

  private track(promise: Promise<void>): void {
    this.background.add(promise);
    void promise.finally(() => this.background.delete(promise)).catch(() => undefined);
  }

  /**
   * A task job fails only when BullMQ gives up on it: it stalled more than `maxStalledCount`
   * times (its workers keep dying) or its result could not be published after the job's
   * retries. Either way no result exists, so one is published here, or the node would wait
   * forever. Intermediate failures (the job will be retried) are left alone.
   */
  private async reportFailedJob(job: Job, err: Error): Promise<void> {
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    let queued;
    try {
      queued = decodeQueuedAttempt(job.data);
    } catch {
      return; // malformed: already logged by the processor, and there is no attempt to report on
    }
    const attempt = queued.attempt;
    const stalled = /stalled/i.test(err.message);
    const error = new WorkerError(
      stalled ? 'TASK_STALLED' : 'TRANSPORT_ERROR',
      stalled
        ? `task '${attempt.task}' (attempt ${attempt.id}) was abandoned by its worker more than the stalled limit allows (a worker crashed or was killed while running it)`
        : `task '${attempt.task}' (attempt ${attempt.id}) could not be completed by the worker: ${err.message}`,
      { retryable: true, cause: err },
    );
    const result: AttemptResult = failedAttemptResult(attempt, error, new Date());
    try {
      await this.results.publish(result, Object.values(queued.inputRefs), replyToOf(job.data));
      this.logger.error({ ...attemptLogFields(attempt), code: error.code }, 'attempt:abandoned');
    } catch (publishError) {
      this.logger.error({ ...attemptLogFields(attempt), err: publishError }, 'attempt:abandoned-unreported');
    }
  }
}

/** The attempt ids of a message on the cancel channel (`{ "attempts": [ids] }`), or null if it is not one. */
function cancelledIds(message: string): string[] | null {
  try {
    const parsed: unknown = JSON.parse(message);
    const attempts = (parsed as { attempts?: unknown } | null)?.attempts;
    return Array.isArray(attempts) && attempts.every((id) => typeof id === 'string') ? attempts : null;
  } catch {
    return null;
  }
}
