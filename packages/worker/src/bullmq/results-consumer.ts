import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { WorkerLogger } from '../logger.js';
import { acknowledgeResults } from './results-retention.js';
import { RESULT_FIELD, RESULT_WITH_REF_FIELD, resultBackoffMs, RESULTS_GROUP, resultsStreamKey } from './results-stream.js';
import { valueKeyPrefix } from './value-refs.js';
import { decodeReceivedResult } from './wire-format.js';
import type { ReceivedResult } from './wire-format.js';

export interface ResultConsumerOptions {
  /** Options for the consumer's own blocking connection (it is named `<prefix>.memoflow-results`). */
  connection: RedisOptions;
  /** A non-blocking client for acks, claims and trims (owned by the caller). */
  commands: Redis;
  prefix: string;
  /** This consumer's name in the group; unique per dispatcher. */
  consumer: string;
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
 * Reads the results stream through the `controllers` consumer group and hands what each read
 * returned to the handler as one batch, holding at most `batchSize` results at once. The next read
 * waits until the last batch has settled (or for STALLED_BATCH_MS), so it takes everything that
 * arrived meanwhile: one read, one controller round and one save per run per batch.
 * Guarantees (see ARCHITECTURE.md):
 * - an entry is acknowledged (XACK, batched) only after its own settlement resolved, so a result
 *   whose save failed stays pending and is handed over again (capped exponential backoff), alone
 *   or with the others that failed with it, while the rest of its batch is acknowledged;
 * - entries this consumer holds (running, waiting for a slot or a retry) are re-claimed every
 *   `claimIdleMs / 2`, which keeps their idle time low: a live controller keeps its results;
 * - entries a dead controller left pending go idle and are taken over (XAUTOCLAIM) by whichever
 *   controller's periodic pass sees them first, at most about 1.5 x `claimIdleMs` later;
 * - entries nobody has read yet wait in the stream for any controller (the group starts at 0).
 */
export class ResultConsumer {
  private readonly key: string;
  private readonly reader: Redis;
  private readonly commands: ScriptedRedis;
  private readerId: number | null = null;
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
  private acks: string[] = [];
  private ackFlush: Promise<void> | null = null;
  private maintenance: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: ResultConsumerOptions) {
    this.key = resultsStreamKey(options.prefix);
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
   * Stops reading, lets running handlers finish, flushes acks and closes the reader. Entries held
   * but not finished (waiting for a retry) stay pending and are claimed by another controller.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.wakeLoop?.();
    this.stopWaiting?.();
    if (this.readerId !== null) {
      await this.commands.client('UNBLOCK', this.readerId).catch(() => undefined);
    }
    await this.loop?.catch(() => undefined);
    await this.maintenance;
    while (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    for (const entry of this.held.values()) if (entry.retry !== undefined) clearTimeout(entry.retry);
    this.held.clear();
    this.ready.length = 0;
    await this.flushAcks();
    await this.commands.memoflowDeleteConsumerIfIdle(this.key, RESULTS_GROUP, this.options.consumer).catch(() => undefined);
    this.reader.disconnect();
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    try {
      await this.reader.connect();
      this.readerId = Number(await this.reader.client('ID'));
      await this.ensureGroup();
    } catch (err) {
      if (this.closed) return;
      logger.error({ err }, 'results:start-failed');
    }
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
          'STREAMS', this.key, '>',
        );
      } catch (err) {
        if (this.closed) break;
        if (/NOGROUP/.test((err as Error).message)) await this.ensureGroup().catch(() => undefined);
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

  private async ensureGroup(): Promise<void> {
    try {
      await this.commands.xgroup('CREATE', this.key, RESULTS_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
  }

  /** What one read (or one claim) returned: new entries go to the handler as one batch, settled by the promise returned. */
  private take(entries: readonly [string, string | undefined][]): Promise<void> | null {
    for (const [id, payload] of entries) {
      if (this.held.has(id)) continue;
      const entry: Entry = { id, payload, deliveries: 0 };
      this.held.set(id, entry);
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
      this.options.logger.error({ err, attemptId: result.attemptId, deliveries: entry.deliveries }, 'result:handler-failed');
      if (this.closed) return; // stays pending: another controller claims it
      entry.retry = setTimeout(() => {
        delete entry.retry;
        if (this.closed) return;
        this.ready.push(entry);
        this.handOverAtTurnEnd();
      }, resultBackoffMs(entry.deliveries));
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

  /** Acks are batched: every ack queued in the same turn goes out in one script call, which also deletes the entries. */
  private ack(entry: Entry): void {
    this.held.delete(entry.id);
    this.acks.push(entry.id);
    this.ackFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushAcks());
  }

  private async flushAcks(): Promise<void> {
    const ids = this.acks;
    this.acks = [];
    this.ackFlush = null;
    if (ids.length === 0) return;
    try {
      await acknowledgeResults(this.commands, this.key, RESULTS_GROUP, valueKeyPrefix(this.options.prefix), ids);
    } catch (err) {
      // Still pending: claimed and delivered again later (handlers are idempotent).
      this.options.logger.error({ err, count: ids.length }, 'results:ack-failed');
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

  /** Renews what this consumer holds, takes over what dead ones left, trims acknowledged entries (a backstop: acks delete them). */
  private async maintain(): Promise<void> {
    const { claimIdleMs, consumer, retentionMs } = this.options;
    const mine = [...this.held.keys()];
    for (let i = 0; i < mine.length; i += 500) {
      await this.commands.xclaim(this.key, RESULTS_GROUP, consumer, 0, ...mine.slice(i, i + 500), 'JUSTID');
    }
    let cursor = '0-0';
    for (let pass = 0; pass < 10 && !this.closed; pass++) {
      const [next, claimed] = (await this.commands.xautoclaim(this.key, RESULTS_GROUP, consumer, claimIdleMs, cursor, 'COUNT', 100)) as [string, unknown[]];
      const entries = parseEntries(claimed);
      if (entries.length > 0) this.options.logger.warn({ count: entries.length }, 'results:claimed');
      if (!this.closed) void this.take(entries); // claimed entries: handled beside reads, not waited for
      cursor = next;
      if (cursor === '0-0') break;
    }
    await this.trim(Date.now());
    await this.commands.memoflowDeleteStaleConsumers(this.key, RESULTS_GROUP, Math.max(retentionMs, claimIdleMs * 4));
  }

  /**
   * Drops entries older than `floorMs` that the group has acknowledged: nothing at or after the
   * oldest pending entry, nor after the group's last delivered one, is ever trimmed.
   */
  private async trim(floorMs: number): Promise<void> {
    const groups = (await this.commands.xinfo('GROUPS', this.key)) as unknown[][];
    const group = groups.map(pairs).find((g) => g['name'] === RESULTS_GROUP);
    if (group === undefined) return;
    const lastDelivered = String(group['last-delivered-id']);
    const summary = (await this.commands.xpending(this.key, RESULTS_GROUP)) as [number, string | null, ...unknown[]];
    let safe = summary[0] > 0 && summary[1] !== null ? summary[1] : nextId(lastDelivered);
    const floor = `${Math.max(0, Math.floor(floorMs))}-0`;
    if (compareIds(floor, safe) < 0) safe = floor;
    await this.commands.xtrim(this.key, 'MINID', '~', safe);
  }
}

function pairs(list: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

/** XREADGROUP's reply (one stream) as [id, payload] pairs. */
function streamEntries(reply: unknown): [string, string | undefined][] {
  if (!Array.isArray(reply)) return [];
  const out: [string, string | undefined][] = [];
  for (const stream of reply as [string, unknown[]][]) out.push(...parseEntries(stream[1]));
  return out;
}

function parseEntries(entries: unknown[]): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  for (const raw of entries) {
    if (!Array.isArray(raw)) continue;
    const [id, fields] = raw as [string, string[] | null];
    let index = fields?.indexOf(RESULT_FIELD) ?? -1;
    if (index < 0) index = fields?.indexOf(RESULT_WITH_REF_FIELD) ?? -1;
    out.push([id, index >= 0 ? fields?.[index + 1] : undefined]);
  }
  return out;
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

function nextId(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${ms}-${BigInt(seq) + 1n}`;
}
