import { systemClock } from '@memoflow/engine';
import { failedAttemptResult } from '../run-attempt.js';
import type { AttemptResult, AttemptResultsHandler, AttemptToCancel, Clock, TaskAttempt, TaskDispatcher } from '@memoflow/engine';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import type { JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { WorkerError } from '../errors.js';
import type { WorkerLogger } from '../logger.js';
import { AttemptWatchdog, type JobPresence } from './attempt-watchdog.js';
import { assertJobId, cancelChannel, DEFAULT_PREFIX, taskQueueName } from './queue-names.js';
import { toBullMqConnection, toRedisOptions } from './redis-connection.js';
import type { RedisConnection } from './redis-connection.js';
import { ControllerRegistry } from './controller-registry.js';
import { ResultConsumer } from './results-consumer.js';
import { DEFAULT_RETENTION_MS, ResultPublisher, resultSeenKey } from './results-stream.js';
import { attemptJobData, inputHolder, inputRefHashes, valueRefOptions, ValueStore } from './value-refs.js';
import type { ValueRefOptions } from './value-refs.js';
import { ADDRESS_PATTERN, encodeResult } from './wire-format.js';

export interface BullMqTaskDispatcherOptions {
  connection: RedisConnection;
  /** BullMQ key prefix; controllers and pools must agree on it. Default `memoflow`. */
  prefix?: string;
  /**
   * An attempt whose task queue has had no worker for this long is withdrawn and reported as a
   * failed, non-retryable result with code NO_WORKER_FOR_TASK. `null` disables. Default 60 s.
   */
  noWorkerGraceMs?: number | null;
  /** How often the no-worker check runs while attempts are open. Default min(5 s, grace). */
  noWorkerCheckIntervalMs?: number;
  /**
   * The most results one read of the results stream takes (one handler call, so one controller
   * round per run), and the most this dispatcher holds read but not yet saved. Default
   * DEFAULT_RESULT_BATCH_SIZE.
   */
  resultBatchSize?: number;
  /**
   * A result another controller read but has not acknowledged for this long (it died, or hangs)
   * is taken over by this one. Live controllers renew what they hold every half of it. Default 30 s.
   */
  resultClaimIdleMs?: number;
  /** See DEFAULT_RETENTION_MS. */
  retentionMs?: number;
  /**
   * An attempt input whose JSON text is at least this many bytes is stored once in Redis under its
   * hash and the job carries the hash (value-refs.ts); results likewise, by the pool's setting.
   * `null`: always inline. Default DEFAULT_VALUE_REF_THRESHOLD_BYTES (8 KiB).
   */
  valueRefThresholdBytes?: number | null;
  /** Safety expiry of values stored by reference; see DEFAULT_VALUE_TTL_MS (7 days). */
  valueTtlMs?: number;
  /** This dispatcher's address among the controllers (its inbox). Default `<host>-<pid>-<random hex>`. */
  address?: string;
  logger?: WorkerLogger;
  clock?: Clock;
}

export const DEFAULT_NO_WORKER_GRACE_MS = 60_000;
export const DEFAULT_RESULT_CLAIM_IDLE_MS = 30_000;
/** Attempts queued per addBulk (see `enqueue`): large enough that a slice costs about one round trip per 1,000 jobs. */
const DISPATCH_SLICE = 1_000;
/** A read of this many results is one round and one save of ~that many nodes (a few ms). */
export const DEFAULT_RESULT_BATCH_SIZE = 256;

/**
 * The distributed mode's TaskDispatcher.
 *
 * - One job per attempt on the task's own queue (`task.<name>`), job id = attempt id, so a
 *   re-dispatch while the job exists is a no-op, and so is one of a finished attempt (its job is
 *   removed as it finishes; its published-result marker says it is done). Inputs above the value
 *   threshold are stored once by hash and the job carries the hash (value-refs.ts).
 * - Results come back to the controller that dispatched the attempt: each job carries this
 *   dispatcher's `address` as `replyTo`, and workers publish to its inbox stream while it counts as
 *   live (ControllerRegistry), else to the stream shared by every controller of the prefix. Both
 *   are read through one consumer group (ResultConsumer), in batches: what one XREADGROUP returns
 *   is one handler call, and the next read waits for that batch to be saved. An entry is
 *   acknowledged only once its own settlement has resolved; one that rejects is handed over again
 *   (after the error's `retryAfterMs` if it names one), and if the controller dies its inbox is
 *   emptied into the shared stream by the others (shared entries it held are claimed). Handlers
 *   must therefore be idempotent (a result can be delivered twice if a controller dies after
 *   recording it but before acking). `route` hands a result to another live controller's inbox.
 * - Every attempt is watched until its result arrives (AttemptWatchdog): a job lost from Redis is
 *   dispatched again, an attempt no worker serves fails with NO_WORKER_FOR_TASK; `workerCount(task)`
 *   lets a caller ask directly.
 * - `cancel(attempts)` removes waiting jobs and tells the pools to abort running ones (see there).
 * - `close()` stops consuming (the results being handled finish first) and closes connections.
 *   Attempts in flight are the workers' business; their results wait in the stream.
 */
export class BullMqTaskDispatcher implements TaskDispatcher {
  readonly prefix: string;
  /** Runs dispatched here go to the worker pools of this prefix, wherever they run. */
  readonly pool: string;
  /** Where results of the attempts dispatched here come back (this dispatcher's inbox); its controller's id. */
  readonly address: string;
  private readonly connection: ReturnType<typeof toRedisOptions>;
  private readonly logger: WorkerLogger;
  private readonly clock: Clock;
  private readonly retentionMs: number;
  private readonly resultBatchSize: number;
  private readonly resultClaimIdleMs: number;
  private readonly valueRefs: ValueRefOptions;
  private values: ValueStore | null = null;
  private readonly queues = new Map<string, Queue>();
  private readonly watchdog: AttemptWatchdog;
  private redis: Redis | null = null;
  private publisher: ResultPublisher | null = null;
  private consumer: ResultConsumer | null = null;
  private controllers: ControllerRegistry | undefined;
  private readonly takingOverFrom = new Map<string, Promise<void>>();
  private closed = false;

  constructor(options: BullMqTaskDispatcherOptions) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.pool = `bullmq:${this.prefix}`;
    this.address = options.address ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    if (!ADDRESS_PATTERN.test(this.address)) {
      throw new WorkerError('INVALID_OPTION', `address must be 1-200 letters, digits, '_', '.' or '-', got '${this.address}'`);
    }
    this.connection = toRedisOptions(options.connection, `${this.prefix}.memoflow-dispatcher`);
    this.logger = options.logger ?? pino({ name: 'memoflow-dispatcher' });
    this.clock = options.clock ?? systemClock;
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.resultBatchSize = options.resultBatchSize ?? DEFAULT_RESULT_BATCH_SIZE;
    if (!Number.isInteger(this.resultBatchSize) || this.resultBatchSize < 1) {
      throw new WorkerError('INVALID_OPTION', `resultBatchSize must be a positive integer, got ${String(this.resultBatchSize)}`);
    }
    this.valueRefs = valueRefOptions(options);
    this.resultClaimIdleMs = options.resultClaimIdleMs ?? DEFAULT_RESULT_CLAIM_IDLE_MS;
    if (!(this.resultClaimIdleMs > 0)) {
      throw new WorkerError('INVALID_OPTION', `resultClaimIdleMs must be positive, got ${String(this.resultClaimIdleMs)}`);
    }
    const graceMs = options.noWorkerGraceMs === undefined ? DEFAULT_NO_WORKER_GRACE_MS : options.noWorkerGraceMs;
    this.watchdog = new AttemptWatchdog({
      noWorkerGraceMs: graceMs,
      intervalMs: options.noWorkerCheckIntervalMs ?? Math.min(5_000, graceMs ?? 5_000),
      logger: this.logger,
      probe: {
        countWorkers: (task) => this.workerCount(task),
        jobPresence: (attempts) => this.jobPresence(attempts),
        redispatch: (attempts) => this.enqueue(attempts),
        reportUnserved: (attempt, unservedForMs) => this.reportUnserved(attempt, unservedForMs),
      },
    });
  }

  async dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    if (this.closed) throw new WorkerError('DISPATCHER_CLOSED', 'dispatch() called on a closed BullMqTaskDispatcher');
    for (const attempt of attempts) assertJobId(attempt.id);
    await this.enqueue(attempts);
    for (const attempt of attempts) this.watchdog.track(attempt);
  }

  /**
   * Queues the attempts in slices of DISPATCH_SLICE, one after the other: a round may dispatch a
   * whole 100,000-wide level, and BullMQ builds every job of an addBulk (data, options, its Redis
   * commands) in memory at once; a slice at a time bounds that to a slice's worth.
   */
  private async enqueue(attempts: readonly TaskAttempt[]): Promise<void> {
    for (let start = 0; start < attempts.length; start += DISPATCH_SLICE) await this.enqueueSlice(attempts.slice(start, start + DISPATCH_SLICE));
  }

  /**
   * Queues the attempts that are not finished: one pipelined EXISTS of their published-result
   * markers (a finished attempt's job is removed as it finishes, so the marker is what says it is
   * done: results-retention.ts), then the inputs they pass by reference are stored, then one
   * addBulk per task queue; job id = attempt id, so an attempt whose job exists is not added twice.
   * The check and the add are separate round trips: an attempt that finishes between them (its job
   * removed) is queued again, and the worker's own marker check completes that job unrun.
   */
  private async enqueueSlice(attempts: readonly TaskAttempt[]): Promise<void> {
    const markers = this.commands().pipeline();
    for (const attempt of attempts) markers.exists(resultSeenKey(this.prefix, attempt.id));
    const published = (await markers.exec()) ?? [];
    const byTask = new Map<string, { attempt: TaskAttempt; data: object }[]>();
    const holds: Parameters<ValueStore['hold']>[0][number][] = [];
    attempts.forEach((attempt, i) => {
      const [error, exists] = published[i] ?? [new Error('no reply'), null];
      if (error !== null) throw error;
      if (exists === 1) return;
      const { data, values } = attemptJobData(attempt, this.valueRefs.thresholdBytes);
      for (const value of values) holds.push({ value, holder: inputHolder(attempt.id) });
      const list = byTask.get(attempt.task) ?? [];
      list.push({ attempt, data });
      byTask.set(attempt.task, list);
    });
    await this.valueStore().hold(holds);
    const opts = (attempt: TaskAttempt): JobsOptions => ({
      jobId: attempt.id,
      // Retries only re-publish a result that could not be written; task failures are results.
      attempts: 3,
      backoff: { type: 'exponential', delay: 1_000 },
      // Kept no longer than recovery needs (results-retention.ts): the result is published first.
      removeOnComplete: true,
      removeOnFail: true,
    });
    await Promise.all(
      [...byTask].map(([task, list]) =>
        // `replyTo`: workers publish the result to this dispatcher's inbox (ignored by earlier releases).
        this.taskQueue(task).addBulk(list.map(({ attempt, data }) => ({ name: task, data: { ...data, replyTo: this.address }, opts: opts(attempt) }))),
      ),
    );
    if (holds.length > 0) {
      const holders = new Set(holds.map((hold) => hold.holder));
      await this.releaseHoldsOfPublished(attempts.filter((attempt) => holders.has(inputHolder(attempt.id))));
    }
  }

  /**
   * An attempt that finished between the marker check and the hold had its inputs released by its
   * publish, then held again here; if its job still existed, the addBulk added nothing, and no
   * publish will come to release them. So, once queued, the holds of attempts published by now
   * are released (one pipelined EXISTS; only dispatches that pass values by reference pay it).
   * One not published yet releases them itself when it is.
   */
  private async releaseHoldsOfPublished(held: readonly TaskAttempt[]): Promise<void> {
    const markers = this.commands().pipeline();
    for (const attempt of held) markers.exists(resultSeenKey(this.prefix, attempt.id));
    const published = (await markers.exec()) ?? [];
    const done = held.filter((_, i) => published[i]?.[0] === null && published[i]?.[1] === 1);
    await Promise.all(done.map((attempt) => this.valueStore().release(inputRefHashes(attempt, this.valueRefs.thresholdBytes), inputHolder(attempt.id))));
  }

  /**
   * Whether each attempt is open, finished or missing, in one pipeline: EXISTS of its
   * published-result marker (finished: jobs are removed as they finish) and HMGET of the job hash's
   * `timestamp` (set when a job is added, so absent means the hash is gone) and `finishedOn`.
   * Missing means neither a result nor a job: Redis lost them.
   */
  private async jobPresence(attempts: readonly TaskAttempt[]): Promise<Map<string, JobPresence>> {
    const pipeline = this.commands().pipeline();
    for (const attempt of attempts) {
      pipeline.exists(resultSeenKey(this.prefix, attempt.id));
      pipeline.hmget(this.taskQueue(attempt.task).toKey(attempt.id), 'timestamp', 'finishedOn');
    }
    const replies = (await pipeline.exec()) ?? [];
    const presence = new Map<string, JobPresence>();
    attempts.forEach((attempt, i) => {
      const [markerError, published] = replies[2 * i] ?? [new Error('no reply'), null];
      const [jobError, fields] = replies[2 * i + 1] ?? [new Error('no reply'), null];
      if (markerError !== null || jobError !== null) return; // unknown this time: treated as open, asked again next check
      const [timestamp, finishedOn] = fields as [string | null, string | null];
      presence.set(attempt.id, published === 1 || finishedOn !== null ? 'finished' : timestamp === null ? 'missing' : 'open');
    });
    return presence;
  }

  onResults(handler: AttemptResultsHandler): void {
    if (this.closed) throw new WorkerError('DISPATCHER_CLOSED', 'onResults() called on a closed BullMqTaskDispatcher');
    if (this.consumer !== null) throw new WorkerError('HANDLER_ALREADY_SET', 'onResults() may be called once per dispatcher');
    this.consumer = new ResultConsumer({
      connection: this.connection,
      commands: this.commands(),
      prefix: this.prefix,
      consumer: this.address,
      registry: this.registry(),
      batchSize: this.resultBatchSize,
      claimIdleMs: this.resultClaimIdleMs,
      blockMs: 5_000,
      retentionMs: this.retentionMs,
      logger: this.logger,
      // Outputs passed by reference are fetched first (a missing one becomes a failed result, never
      // data), then the batch goes to the controller; each result is watched until its run saved it,
      // and a rejection leaves its entry pending, to be handed over again.
      handle: (received) => {
        const values = this.valueStore();
        // One read for every output by reference in the batch.
        const handedOver = values.resolveResults(received).then((results) => handler(results));
        return received.map((result, i) =>
          handedOver
            .then((settlements) => settlements[i] ?? Promise.reject(new Error(`the result handler returned ${settlements.length} settlements for ${received.length} results`)))
            .then(() => this.watchdog.forget(result.attemptId)),
        );
      },
    });
    this.consumer.start();
  }

  /**
   * Removes each attempt's job if it still waits, so it never starts, then tells every pool of the
   * prefix (pub/sub on `cancelChannel`) to abort the ones running and never to start one it claims
   * later; the attempts are no longer watched (a removed job is not lost work to re-dispatch). A
   * pool not connected when the message goes out misses it: an attempt it runs then finishes, and
   * its result is dropped by the controller.
   */
  async cancel(attempts: readonly AttemptToCancel[]): Promise<void> {
    if (attempts.length === 0) return;
    if (this.closed) throw new WorkerError('DISPATCHER_CLOSED', 'cancel() called on a closed BullMqTaskDispatcher');
    for (const attempt of attempts) this.watchdog.forget(attempt.id);
    // remove() refuses a locked (running) job and answers 0: the message below reaches its pool.
    await Promise.all(attempts.map((attempt) => this.taskQueue(attempt.task).remove(attempt.id)));
    await this.commands().publish(cancelChannel(this.prefix), JSON.stringify({ attempts: attempts.map((attempt) => attempt.id) }));
  }

  /**
   * Hands a result to the controller at `owner`: one script adds it to that controller's inbox if
   * it counts as live, else rejects (CONTROLLER_GONE, retryable), so the caller keeps the result.
   * The output goes inline (it was fetched already), whatever its size.
   */
  async route(result: AttemptResult, owner: string): Promise<void> {
    if (!ADDRESS_PATTERN.test(owner) || !(await this.registry().route(owner, JSON.stringify(encodeResult(result))))) {
      throw new WorkerError('CONTROLLER_GONE', `no live controller at '${owner}' to hand the result of ${result.attemptId} to`, { retryable: true });
    }
  }

  /**
   * Its controller took over runs leased to the controller at `address`: that controller's inbox is
   * emptied into the shared stream at once (one drain per address at a time; several takeovers of
   * one dead controller's runs share it), so their results do not wait for it to count as gone.
   */
  takeOverFrom(address: string): Promise<void> {
    if (this.closed || address === this.address || !ADDRESS_PATTERN.test(address)) return Promise.resolve();
    let pending = this.takingOverFrom.get(address);
    if (pending === undefined) {
      pending = this.registry()
        .takeOver(address)
        .then((moved) => {
          if (moved > 0) this.logger.warn({ count: moved, from: address }, 'results:inbox-of-gone-controller-moved');
        })
        .catch((err: unknown) => this.logger.error({ err, from: address }, 'results:take-over-failed'))
        .finally(() => this.takingOverFrom.delete(address));
      this.takingOverFrom.set(address, pending);
    }
    return pending;
  }

  /** Workers connected to the task's queue now (0 means no pool registers the task). */
  async workerCount(task: string): Promise<number> {
    return this.taskQueue(task).getWorkersCount();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watchdog.stop();
    await Promise.allSettled([...this.takingOverFrom.values()]);
    await this.consumer?.close();
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }

  /** The dispatcher's own non-blocking client: result acks, claims, trims and NO_WORKER reports. */
  private commands(): Redis {
    if (this.redis === null) {
      this.redis = new Redis(this.connection);
      this.redis.on('error', (err) => this.logger.error({ err }, 'redis:error'));
    }
    return this.redis;
  }

  private registry(): ControllerRegistry {
    this.controllers ??= new ControllerRegistry(this.commands(), this.prefix, this.address, this.resultClaimIdleMs);
    return this.controllers;
  }

  private valueStore(): ValueStore {
    this.values ??= new ValueStore(this.commands(), this.prefix, this.valueRefs);
    return this.values;
  }

  private taskQueue(task: string): Queue {
    return this.queue(taskQueueName(task));
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection: toBullMqConnection(this.connection), prefix: this.prefix });
      queue.on('error', (err) => this.logger.error({ err, queue: name }, 'redis:error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  private async reportUnserved(attempt: TaskAttempt, unservedForMs: number): Promise<'reported' | 'gone' | 'busy'> {
    const queue = this.taskQueue(attempt.task);
    const state = await queue.getJobState(attempt.id);
    if (state === 'completed' || state === 'failed' || state === 'unknown') return 'gone';
    if (state === 'active') return 'busy';
    // remove() refuses a locked job, so a worker that grabbed it just now keeps it.
    if ((await queue.remove(attempt.id)) !== 1) return 'busy';
    const error = new WorkerError(
      'NO_WORKER_FOR_TASK',
      `no worker serves task '${attempt.task}': queue '${queue.name}' (prefix '${this.prefix}') has had no worker ` +
        `for ${Math.round(unservedForMs / 1000)} s; start a worker pool that registers '${attempt.task}'`,
    );
    const now = this.clock.now();
    this.publisher ??= new ResultPublisher(this.commands(), this.prefix, this.retentionMs, this.valueRefs);
    // The withdrawn job held the attempt's inputs by reference: released with the publish.
    await this.publisher.publish(failedAttemptResult(attempt, error, now), inputRefHashes(attempt, this.valueRefs.thresholdBytes), this.address);
    return 'reported';
  }
}
