import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { systemClock } from '@memoflow/engine';
import type {
  AttemptResult,
  AttemptResultsHandler,
  AttemptToCancel,
  Clock,
  TaskAttempt,
  TaskDispatcher,
  TaskRegistry,
} from '@memoflow/engine';
import { WorkerError } from '../errors.js';
import { consoleLogger } from '../logger.js';
import type { WorkerLogger } from '../logger.js';
import { runIsolated } from './isolate.js';
import { AttemptCancellations } from '../attempt-cancellations.js';
import { timeoutIgnoredMessage } from '../run-attempt.js';
import type { RunAttemptOptions } from '../run-attempt.js';

export interface InProcessTaskDispatcherOptions {
  tasks: TaskRegistry;
  /** Attempts running at once; further ones wait in FIFO order. Default 8. */
  concurrency?: number;
  clock?: Clock;
  /** Receives handler failures and undelivered results. Default: console (warn/error only). */
  logger?: WorkerLogger;
  /** How long a timed-out body keeps its slot while it honours the abort. Default DEFAULT_TIMEOUT_GRACE_MS. */
  timeoutGraceMs?: number;
}

export const DEFAULT_IN_PROCESS_CONCURRENCY = 8;

/**
 * The embedded mode's TaskDispatcher: runs attempts in this process, at most `concurrency` at a
 * time, in dispatch order.
 *
 * - Idempotent per attempt id: an id already queued, running or finished is ignored. Ids are
 *   remembered for the dispatcher's lifetime (one string per attempt; embedded runs are small).
 * - Results are delivered in batches, in completion order, and the handler is never re-entered:
 *   a batch is handed over once every result of the previous one has settled, and it holds every
 *   result that finished meanwhile. From idle, a batch goes at the end of the turn in which its
 *   first result finished (setImmediate, no timer), so attempts finishing together go together:
 *   one controller round and one save per batch. Delivery does not hold an execution slot.
 *   Results finished before `onResults` is called are buffered until it is.
 * - A result whose settlement rejects (or a handler that throws, for its whole batch) is logged and
 *   dropped: there is no transport to redeliver from (the controller's recovery re-dispatches from
 *   its store). The other results of the batch are unaffected.
 * - `close()` is graceful: it stops accepting attempts, drops the ones still queued (never
 *   started, so nothing is half done; the controller re-dispatches them on recovery), waits for
 *   running attempts and delivers their results, then resolves. No promise outlives it, except
 *   task bodies that ignored their timeout's abort signal past the grace period (see runAttempt).
 * - A timed-out attempt keeps its slot, and its result waits, until its body settles or the grace
 *   period ends (see runAttempt): concurrency stays bounded and a retry never starts beside it.
 * - `cancel(ids)`: a queued attempt is dropped (it never starts and reports no result); a running
 *   one has its body's signal aborted (ATTEMPT_CANCELLED) and reports whatever it ends with.
 * - Attempts are isolated like queued ones: each gets its own copy of its inputs, and the output
 *   handed to the controller is a copy too, so a body that mutates its inputs (sorts an array in
 *   place) or keeps mutating what it returned changes nothing outside it (see runIsolated).
 */
export class InProcessTaskDispatcher implements TaskDispatcher {
  /** This process: its runs' attempts run nowhere else. */
  readonly pool = inProcessPool();
  /** Its controller's id (the owner of its runs' leases): the pool, which names this process. */
  readonly address = this.pool;
  private readonly tasks: TaskRegistry;
  private readonly concurrency: number;
  private readonly clock: Clock;
  private readonly logger: WorkerLogger;
  private readonly attemptOptions: RunAttemptOptions;

  private readonly seen = new Set<string>();
  private readonly cancellations = new AttemptCancellations();
  private readonly queue: TaskAttempt[] = [];
  private readonly running = new Set<Promise<void>>();
  /** Finished results not handed over yet (all of them while no handler is registered). */
  private readonly finished: AttemptResult[] = [];
  private handler: AttemptResultsHandler | null = null;
  /** The delivery loop while it runs (handing over batches until `finished` is empty); never rejects. */
  private delivery: Promise<void> | null = null;
  private closed = false;

  constructor(options: InProcessTaskDispatcherOptions) {
    const concurrency = options.concurrency ?? DEFAULT_IN_PROCESS_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new WorkerError('INVALID_OPTION', `concurrency must be a positive integer, got ${String(concurrency)}`);
    }
    this.tasks = options.tasks;
    this.concurrency = concurrency;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? consoleLogger({ component: 'in-process-dispatcher' });
    const logger = this.logger;
    this.attemptOptions = {
      ...(options.timeoutGraceMs === undefined ? {} : { timeoutGraceMs: options.timeoutGraceMs }),
      onTimeoutIgnored: (abandoned) => logger.warn(abandoned, timeoutIgnoredMessage(abandoned)),
    };
  }

  /** Its own runs, and the runs of a process on this host that has died, when their tasks are registered here. */
  mayDrive(pool: string, tasks: readonly string[]): boolean {
    if (!tasks.every((task) => this.tasks.has(task))) return false;
    if (pool === this.pool) return true;
    const owner = parseInProcessPool(pool);
    return owner !== null && owner.host === hostname() && !processAlive(owner.pid);
  }

  /** A controller of an in-process pool on this host whose process has exited: its leases need not be waited out. */
  isGone(address: string): boolean {
    const owner = parseInProcessPool(address);
    return owner !== null && owner.host === hostname() && owner.pid !== process.pid && !processAlive(owner.pid);
  }

  dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    if (this.closed) {
      return Promise.reject(new WorkerError('DISPATCHER_CLOSED', 'dispatch() called on a closed InProcessTaskDispatcher'));
    }
    for (const attempt of attempts) {
      if (this.seen.has(attempt.id) || this.cancellations.isCancelled(attempt.id)) continue;
      this.seen.add(attempt.id);
      this.queue.push(attempt);
    }
    this.pump();
    return Promise.resolve();
  }

  cancel(attempts: readonly AttemptToCancel[]): Promise<void> {
    const ids = new Set(attempts.map((attempt) => attempt.id));
    const kept = this.queue.filter((attempt) => !ids.has(attempt.id));
    this.queue.length = 0;
    for (const attempt of kept) this.queue.push(attempt);
    this.cancellations.cancel([...ids]);
    return Promise.resolve();
  }

  onResults(handler: AttemptResultsHandler): void {
    if (this.handler !== null) {
      throw new WorkerError('HANDLER_ALREADY_SET', 'onResults() may be called once per dispatcher');
    }
    if (this.closed) throw new WorkerError('DISPATCHER_CLOSED', 'onResults() called on a closed InProcessTaskDispatcher');
    this.handler = handler;
    this.startDelivery();
  }

  async close(): Promise<void> {
    if (this.closed) {
      await this.settled();
      return;
    }
    this.closed = true;
    const dropped = this.queue.splice(0);
    if (dropped.length > 0) {
      // The first few by id and the count: a wide run's queue holds 100,000s, one log line each would flood.
      const named = dropped.slice(0, 20).map((a) => a.id);
      this.logger.warn({ count: dropped.length, attempts: named }, `dispatcher closed: ${dropped.length} queued attempt(s) not started${dropped.length > named.length ? ` (the first ${named.length} named)` : ''}`);
    }
    await this.settled();
    if (this.finished.length > 0) {
      this.logger.warn(
        { attempts: this.finished.map((r) => r.attemptId) },
        'dispatcher closed with results and no handler: results dropped',
      );
      this.finished.length = 0;
    }
  }

  /** Number of attempts running now (for tests and metrics). */
  get runningCount(): number {
    return this.running.size;
  }

  /** Number of attempts waiting for a slot (for tests and metrics). */
  get queuedCount(): number {
    return this.queue.length;
  }

  private async settled(): Promise<void> {
    // A finishing attempt queues its result (starting the delivery loop) before leaving `running`,
    // so once `running` is empty the loop, while it runs, covers every result.
    while (this.running.size > 0) await Promise.all([...this.running]);
    while (this.delivery !== null) await this.delivery;
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.concurrency) {
      const attempt = this.queue.shift();
      if (attempt === undefined) return;
      const cancellation = this.cancellations.start(attempt.id);
      const execution: Promise<void> = runIsolated(this.tasks, attempt, this.clock, { ...this.attemptOptions, signal: cancellation.signal })
        .then(
          (result) => this.deliver(result),
          // runAttempt never rejects by contract; if it ever does, log rather than wedge a slot.
          (error: unknown) => this.logger.error({ err: error, attemptId: attempt.id }, 'runAttempt rejected'),
        )
        .finally(() => {
          cancellation.done();
          this.running.delete(execution);
          this.pump();
        });
      this.running.add(execution);
    }
  }

  private deliver(result: AttemptResult): void {
    this.finished.push(result);
    this.startDelivery();
  }

  /** Starts the delivery loop unless it runs (or no handler is registered yet). */
  private startDelivery(): void {
    const handler = this.handler;
    if (handler === null || this.delivery !== null || this.finished.length === 0) return;
    this.delivery = (async () => {
      // The end of this turn: attempts that finish together (a burst released by one event) join.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.finished.length > 0) await this.handOver(handler, this.finished.splice(0));
    })().finally(() => {
      this.delivery = null;
      this.startDelivery(); // a result that came after the loop's last check
    });
  }

  /** Hands one batch to the handler and waits until each of its results has settled. */
  private async handOver(handler: AttemptResultsHandler, batch: AttemptResult[]): Promise<void> {
    let settlements: readonly Promise<void>[] = [];
    let thrown: { error: unknown } | null = null;
    try {
      settlements = handler(batch);
    } catch (error) {
      thrown = { error };
    }
    await Promise.all(
      batch.map(async (result, i) => {
        try {
          if (thrown !== null) throw thrown.error;
          const settlement = settlements[i];
          if (settlement === undefined) throw new Error(`the result handler returned ${settlements.length} settlements for ${batch.length} results`);
          await settlement;
        } catch (error) {
          this.logger.error(
            { err: error, runId: result.runId, nodeId: result.nodeId, attemptId: result.attemptId },
            'result handler failed; result dropped',
          );
        }
      }),
    );
  }
}

function inProcessPool(): string {
  return `in-process:${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

function parseInProcessPool(pool: string): { host: string; pid: number } | null {
  const match = /^in-process:(.+):(\d+):[0-9a-f]+$/.exec(pool);
  return match === null ? null : { host: match[1] as string, pid: Number(match[2]) };
}

/** Whether a process with this pid runs (a reused pid reads as alive: the safe side, the run is left alone). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
