import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { WorkerLogger } from '../logger.js';
import type { ControllerRegistry } from './controller-registry.js';
import { compareIds, nextId, pairs, parseEntries, retryDelayMs, streamEntries, type StreamEntry } from './results-entries.js';
import { acknowledgeResults } from './results-retention.js';
import { RESULTS_GROUP, resultsInboxKey, resultsStreamKey } from './results-stream.js';
import { valueKeyPrefix } from './value-refs.js';
import { decodeReceivedResult } from './wire-format.js';
import type { ReceivedResult } from './wire-format.js';

export interface ResultConsumerOptions {
  /** Options for the consumer's own blocking connection (it is named `<prefix>.memoflow-results`). */
  connection: RedisOptions;
  /** A non-blocking client for acks, claims and trims (owned by the caller). */
  commands: Redis;
  prefix: string;
  /** This consumer's name in the group and its controller's address (its inbox); unique per dispatcher. */
  consumer: string;
  /** Where this controller counts as live, and how gone controllers' inboxes are emptied. */
  registry: ControllerRegistry;
  /**
   * The most results one read takes, and the most this consumer holds read but not settled (or
   * waiting to be handed over) at once; results waiting for a retry do not count.
   */
  batchSize: number;
  /** A result left unacknowledged this long by its consumer (dead controller) is claimed by another. */
  claimIdleMs: number;
  /** How long one XREADGROUP blocks waiting for results. */
  blockMs: number;
  /** Consumers holding nothing and idle this long (crashed controllers) are deleted from the group. */
  retentionMs: number;
  logger: WorkerLogger;
  /**
   * One call per read (see AttemptResultsHandler): one promise per result, acknowledged when it
   * resolves. An output passed by reference is still to be fetched (ValueStore.resolveResult).
   */
  handle(results: readonly ReceivedResult[]): readonly Promise<void>[];
}

interface Entry {
  /** The stream it came from: this controller's inbox or the shared stream. */
  stream: string;
  id: string;
  payload: string | undefined;
  /** How many times this consumer has handed it to the handler. */
  deliveries: number;
  retry?: NodeJS.Timeout;
}

/** KEYS[1] stream; ARGV[1] group, ARGV[2] consumer: deletes the consumer only if it holds nothing. */
const DELETE_IF_IDLE = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending == 0 then return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return -1`;

/** KEYS[1] stream; ARGV[1] group, ARGV[2] min idle ms: deletes consumers (dead controllers) holding nothing. */
const DELETE_STALE_CONSUMERS = `
local deleted = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    deleted = deleted + 1
  end
end
return deleted`;

/**
 * How long the next read waits for the last batch to be saved before it goes ahead anyway: a run
 * whose round is retrying (its store failing) must not hold back other runs' results for longer.
 */
const STALLED_BATCH_MS = 1_000;

type ScriptedRedis = Redis & {
  memoflowDeleteConsumerIfIdle(stream: string, group: string, consumer: string): Promise<number>;
  memoflowDeleteStaleConsumers(stream: string, group: string, minIdleMs: number): Promise<number>;
};

/**
 * Reads this controller's results through the `controllers` consumer group of two streams, its own
 * inbox (results of the attempts it dispatched) and the shared stream (results no live controller
 * was named for), and hands what each read returned to the handler as one batch, holding at most
 * `batchSize` results at once. The next read waits until the last batch has settled (or for
 * STALLED_BATCH_MS), so it takes everything that arrived meanwhile: one read, one controller round
 * and one save per run per batch. Guarantees (see ARCHITECTURE.md):
 * - an entry is acknowledged (and deleted, its value released: acknowledgeResults, batched per
 *   stream) only after its own settlement resolved, so a result whose save failed stays pending
 *   and is handed over again (capped exponential backoff, or the error's `retryAfterMs`: RUN_LEASED),
 *   alone or with the others that failed with it, while the rest of its batch is acknowledged;
 * - the controller counts as live (ControllerRegistry) while this consumer runs: a heartbeat every
 *   `claimIdleMs / 3` renews it for `claimIdleMs`; workers publish to its inbox only while it does;
 * - the inbox of a controller that stopped counting as live (it died) is emptied into the shared
 *   stream by the others at their next heartbeat, pending and unread entries alike; on close a
 *   controller does that with its own inbox at once;
 * - shared entries this consumer holds are re-claimed every `claimIdleMs / 2`, which keeps their
 *   idle time low, and shared entries a dead controller left pending are taken over (XAUTOCLAIM)
 *   once idle for `claimIdleMs`;
 * - entries nobody has read yet wait in the shared stream for any controller (the group starts at 0).
 */
export class ResultConsumer {
  private readonly shared: string;
  private readonly inbox: string;
  private readonly reader: Redis;
  private readonly commands: ScriptedRedis;
  private readerId: number | null = null;
  /** By `<stream> <id>`. */
  private readonly held = new Map<string, Entry>();
  private readonly ready: Entry[] = [];
  /** Results handed to the handler and not settled yet. */
  private inFlight = 0;
  /** A hand-over of `ready` at the end of this turn is scheduled (retries due together go together). */
  private handOverSoon = false;
  private idle: (() => void) | null = null;
  private wakeLoop: (() => void) | null = null;
  /** Settles when every result of the last read has settled (saved, or waiting for a retry). */
  private lastBatch: Promise<void> | null = null;
  /** Ends the read loop's wait for `lastBatch` (close). */
  private stopWaiting: (() => void) | null = null;
  /** Entry ids to acknowledge, by stream. */
  private acks = new Map<string, string[]>();
  private ackFlush: Promise<void> | null = null;
  private maintenance: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | null = null;
  private loop: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: ResultConsumerOptions) {
    this.shared = resultsStreamKey(options.prefix);
    this.inbox = resultsInboxKey(options.prefix, options.consumer);
    this.reader = new Redis({
      ...options.connection,
      connectionName: `${options.prefix}.memoflow-results`,
      maxRetriesPerRequest: null,
      lazyConnect: true,
    });
    this.reader.on('error', (err) => options.logger.error({ err }, 'redis:error'));
    // After a reconnect the blocking client has a new id; close() needs it to unblock the read.
    this.reader.on('ready', () => {
      this.reader.client('ID').then(
        (id) => (this.readerId = Number(id)),
        () => undefined,
      );
    });
    const commands = options.commands as unknown as ScriptedRedis;
    if (typeof (commands as unknown as Record<string, unknown>)['memoflowDeleteConsumerIfIdle'] !== 'function') {
      commands.defineCommand('memoflowDeleteConsumerIfIdle', { numberOfKeys: 1, lua: DELETE_IF_IDLE });
      commands.defineCommand('memoflowDeleteStaleConsumers', { numberOfKeys: 1, lua: DELETE_STALE_CONSUMERS });
    }
    this.commands = commands;
  }

  start(): void {
    this.loop = this.run();
  }

  /**
   * Stops reading, lets running handlers finish, flushes acks, hands what is left in the inbox
   * (entries waiting for a retry, entries not read yet) to the shared stream and closes the reader.
   * Shared entries held but not finished stay pending and are claimed by another controller.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.wakeLoop?.();
    this.stopWaiting?.();
    if (this.readerId !== null) {
      await this.commands.client('UNBLOCK', this.readerId).catch(() => undefined);
    }
    await this.loop?.catch(() => undefined);
    await this.maintenance;
    await this.beating;
    while (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    for (const entry of this.held.values()) if (entry.retry !== undefined) clearTimeout(entry.retry);
    this.held.clear();
    this.ready.length = 0;
    await this.flushAcks();
    await this.options.registry.retire().catch((err: unknown) => this.options.logger.error({ err }, 'results:retire-failed'));
    await this.commands.memoflowDeleteConsumerIfIdle(this.shared, RESULTS_GROUP, this.options.consumer).catch(() => undefined);
    this.reader.disconnect();
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    try {
      await this.reader.connect();
      this.readerId = Number(await this.reader.client('ID'));
      await this.ensureGroups();
      // Live before the first read: workers publish to the inbox from now on.
      await this.beat();
    } catch (err) {
      if (this.closed) return;
      logger.error({ err }, 'results:start-failed');
    }
    this.heartbeatTimer = setInterval(() => void this.beat(), Math.max(20, Math.floor(this.options.claimIdleMs / 3)));
    this.runMaintenance(); // claims what dead controllers left at once, then every claimIdleMs / 2
    while (!this.closed) {
      // The next read waits until the last batch is saved, so what arrives meanwhile comes in one
      // read for the controller's next round (reading on at once makes many small batches).
      if (this.lastBatch !== null) {
        await this.settledOrStalled(this.lastBatch);
        this.lastBatch = null;
        continue;
      }
      const free = this.options.batchSize - this.inFlight - this.ready.length;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.wakeLoop = resolve));
        this.wakeLoop = null;
        continue;
      }
      let reply: unknown;
      try {
        reply = await this.reader.xreadgroup(
          'GROUP', RESULTS_GROUP, this.options.consumer,
          'COUNT', free, 'BLOCK', this.options.blockMs,
          'STREAMS', this.inbox, this.shared, '>', '>',
        );
      } catch (err) {
        if (this.closed) break;
        // A stream that vanished (its group gone with it) is created again; anything else waits a second.
        if (/NOGROUP|no longer exists/i.test((err as Error).message)) await this.ensureGroups().catch(() => undefined);
        else {
          logger.error({ err }, 'results:read-failed');
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
        continue;
      }
      // Entries read as close() began are this consumer's now: handle them rather than leave them.
      this.lastBatch = this.take(streamEntries(reply));
    }
  }

  private async settledOrStalled(batch: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.stopWaiting = resolve;
      timer = setTimeout(resolve, STALLED_BATCH_MS);
      void batch.then(resolve);
    });
    clearTimeout(timer);
    this.stopWaiting = null;
  }

  /**
   * Renews this controller's liveness and empties the inboxes of the controllers that are gone: one
   * script, plus one per gone inbox. Every `claimIdleMs / 3`, so a dead controller's results reach
   * the shared stream at most that long after it stops counting as live (`claimIdleMs` after its
   * last heartbeat), about when its run leases expire (the same length in a standalone controller).
   */
  private beat(): Promise<void> {
    this.beating ??= this.options.registry
      .heartbeat()
      .then(async (gone) => {
        if (gone.length === 0 || this.closed) return;
        const moved = await this.options.registry.drainGone(gone);
        if (moved > 0) this.options.logger.warn({ count: moved, from: gone }, 'results:inbox-of-gone-controller-moved');
      })
      .catch((err: unknown) => this.options.logger.error({ err }, 'results:heartbeat-failed'))
      .finally(() => {
        this.beating = null;
      });
    return this.beating;
  }

  private async ensureGroups(): Promise<void> {
    for (const stream of [this.inbox, this.shared]) {
      try {
        await this.commands.xgroup('CREATE', stream, RESULTS_GROUP, '0', 'MKSTREAM');
      } catch (err) {
        if (!/BUSYGROUP/.test((err as Error).message)) throw err;
      }
    }
  }

  /** What one read (or one claim) returned: new entries go to the handler as one batch, settled by the promise returned. */
  private take(entries: readonly StreamEntry[]): Promise<void> | null {
    for (const { stream, id, payload } of entries) {
      const key = `${stream} ${id}`;
      if (this.held.has(key)) continue;
      const entry: Entry = { stream, id, payload, deliveries: 0 };
      this.held.set(key, entry);
      this.ready.push(entry);
    }
    return this.handOver();
  }

  /**
   * Hands every ready entry to the handler in one call; each is acknowledged or retried as it
   * settles. The promise (null if nothing was handed over) settles when they all have.
   */
  private handOver(): Promise<void> | null {
    const { logger } = this.options;
    const batch: { entry: Entry; result: ReceivedResult }[] = [];
    for (const entry of this.ready.splice(0)) {
      try {
        batch.push({ entry, result: decodeReceivedResult(JSON.parse(entry.payload ?? 'null')) });
      } catch (err) {
        // Data, not code: a malformed entry is logged and dropped, never retried.
        logger.error({ err, entryId: entry.id }, 'result:malformed');
        this.ack(entry);
      }
    }
    if (batch.length === 0) return null;
    this.inFlight += batch.length;
    let settlements: readonly Promise<void>[] = [];
    let thrown: { err: unknown } | null = null;
    try {
      settlements = this.options.handle(batch.map(({ result }) => result));
    } catch (err) {
      thrown = { err };
    }
    const settled = batch.map(({ entry, result }, i) => {
      entry.deliveries += 1;
      const saved = async (): Promise<void> => {
        if (thrown !== null) throw thrown.err;
        const settlement = settlements[i];
        if (settlement === undefined) throw new Error(`the result handler returned ${settlements.length} settlements for ${batch.length} results`);
        await settlement;
      };
      return this.settle(entry, result, saved()).finally(() => {
        this.inFlight -= 1;
        if (this.inFlight === 0) this.idle?.();
        this.wakeLoop?.();
      });
    });
    return Promise.all(settled).then(() => undefined);
  }

  private async settle(entry: Entry, result: ReceivedResult, settlement: Promise<void>): Promise<void> {
    try {
      await settlement;
    } catch (err) {
      // A result the controller asks for again later (RESULT_EARLY: its dispatch is not recorded yet;
      // RUN_LEASED) is routine; anything else is a failure worth an error line.
      const code = (err as { code?: unknown } | null)?.code;
      if (code === 'RESULT_EARLY' || code === 'RUN_LEASED') this.options.logger.info({ code, attemptId: result.attemptId, deliveries: entry.deliveries }, 'result:handed-over-later');
      else this.options.logger.error({ err, attemptId: result.attemptId, deliveries: entry.deliveries }, 'result:handler-failed');
      if (this.closed) return; // stays pending: another controller claims it (an inbox's: close hands it on)
      entry.retry = setTimeout(() => {
        delete entry.retry;
        if (this.closed) return;
        this.ready.push(entry);
        this.handOverAtTurnEnd();
      }, retryDelayMs(err, entry.deliveries));
      return;
    }
    this.ack(entry);
  }

  /** Results that failed together come due together: their timers fire in one phase, and go as one batch. */
  private handOverAtTurnEnd(): void {
    if (this.handOverSoon) return;
    this.handOverSoon = true;
    setImmediate(() => {
      this.handOverSoon = false;
      if (!this.closed) void this.handOver();
    });
  }

  /** Acks are batched: every ack queued in the same turn goes out in one script call per stream, which also deletes the entries. */
  private ack(entry: Entry): void {
    this.held.delete(`${entry.stream} ${entry.id}`);
    const list = this.acks.get(entry.stream) ?? [];
    list.push(entry.id);
    this.acks.set(entry.stream, list);
    this.ackFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushAcks());
  }

  private async flushAcks(): Promise<void> {
    const acks = this.acks;
    this.acks = new Map();
    this.ackFlush = null;
    for (const [stream, ids] of acks) {
      try {
        await acknowledgeResults(this.commands, stream, RESULTS_GROUP, valueKeyPrefix(this.options.prefix), ids);
      } catch (err) {
        // Still pending: claimed (or moved, an inbox's) and delivered again later (handlers are idempotent).
        this.options.logger.error({ err, count: ids.length }, 'results:ack-failed');
      }
    }
  }

  private runMaintenance(): void {
    if (this.closed) return;
    this.maintenance = this.maintain()
      .catch((err: unknown) => this.options.logger.error({ err }, 'results:maintenance-failed'))
      .finally(() => {
        this.maintenance = null;
        if (!this.closed) this.timer = setTimeout(() => this.runMaintenance(), Math.max(50, this.options.claimIdleMs / 2));
      });
  }

  /**
   * Renews the shared entries this consumer holds, takes over the ones dead controllers left
   * pending, trims acknowledged entries of both streams (a backstop: acks delete them).
   */
  private async maintain(): Promise<void> {
    const { claimIdleMs, consumer, retentionMs } = this.options;
    const mine = [...this.held.values()].filter((entry) => entry.stream === this.shared).map((entry) => entry.id);
    for (let i = 0; i < mine.length; i += 500) {
      await this.commands.xclaim(this.shared, RESULTS_GROUP, consumer, 0, ...mine.slice(i, i + 500), 'JUSTID');
    }
    let cursor = '0-0';
    for (let pass = 0; pass < 10 && !this.closed; pass++) {
      const [next, claimed] = (await this.commands.xautoclaim(this.shared, RESULTS_GROUP, consumer, claimIdleMs, cursor, 'COUNT', 100)) as [string, unknown[]];
      const entries = parseEntries(this.shared, claimed);
      if (entries.length > 0) this.options.logger.warn({ count: entries.length }, 'results:claimed');
      if (!this.closed) void this.take(entries); // claimed entries: handled beside reads, not waited for
      cursor = next;
      if (cursor === '0-0') break;
    }
    for (const stream of [this.shared, this.inbox]) await this.trim(stream, Date.now());
    await this.commands.memoflowDeleteStaleConsumers(this.shared, RESULTS_GROUP, Math.max(retentionMs, claimIdleMs * 4));
  }

  /**
   * Drops entries older than `floorMs` that the group has acknowledged: nothing at or after the
   * oldest pending entry, nor after the group's last delivered one, is ever trimmed.
   */
  private async trim(stream: string, floorMs: number): Promise<void> {
    const groups = (await this.commands.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
    const group = groups.map(pairs).find((g) => g['name'] === RESULTS_GROUP);
    if (group === undefined) return;
    const lastDelivered = String(group['last-delivered-id']);
    const summary = (await this.commands.xpending(stream, RESULTS_GROUP)) as [number, string | null, ...unknown[]];
    let safe = summary[0] > 0 && summary[1] !== null ? summary[1] : nextId(lastDelivered);
    const floor = `${Math.max(0, Math.floor(floorMs))}-0`;
    if (compareIds(floor, safe) < 0) safe = floor;
    await this.commands.xtrim(stream, 'MINID', '~', safe);
  }
}
