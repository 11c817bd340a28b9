import type { AttemptResult } from '@memoflow/engine';
import type { Redis } from 'ioredis';
import { ADDRESS_PATTERN, encodeResult } from './wire-format.js';

/**
 * Finished task jobs, and the marker that a result was published, stay in Redis this long
 * (default one day). This is the window in which re-dispatching a finished attempt, or
 * re-publishing its result, is a no-op: task jobs have the attempt id as job id, and a result is
 * published only if its attempt's marker is not there yet. Acknowledged results stay in the
 * stream this long too; unacknowledged ones stay until a controller acknowledges them.
 */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * The shared results stream of the prefix: a Redis Stream (not a BullMQ queue, see
 * ARCHITECTURE.md) read by every controller through one consumer group. Results land here whose
 * attempt names no live controller to reply to (queued by a controller of an earlier release, or
 * whose controller is gone), results published by workers of an earlier release, and what is left
 * in a dead controller's inbox. Its key cannot clash with a BullMQ queue's keys, which are
 * `<prefix>:<queue>:<suffix>` (queues are named `task.<name>`).
 */
export function resultsStreamKey(prefix: string): string {
  return `${prefix}:results-stream`;
}

/**
 * One controller's inbox: the results of the attempts it dispatched (their jobs carry its address
 * as `replyTo`), read by it alone while it is live.
 */
export function resultsInboxKey(prefix: string, address: string): string {
  return `${prefix}:results-stream:${address}`;
}

/**
 * The live controllers of the prefix: a sorted set of addresses scored by the time (Redis's
 * clock, ms) until which each counts as live. A controller renews its score while it runs; a
 * worker publishes to an inbox only while its score is in the future.
 */
export function controllersKey(prefix: string): string {
  return `${prefix}:controllers`;
}


/** `<prefix>:results-seen:<attemptId>`: set when an attempt's result is published (first wins). */
export function resultSeenKey(prefix: string, attemptId: string): string {
  return `${prefix}:results-seen:${attemptId}`;
}

/** The consumer group every controller reads results through (so each result goes to one of them). */
export const RESULTS_GROUP = 'controllers';

/** The field of a stream entry that holds the encoded result (JSON). */
export const RESULT_FIELD = 'r';

/**
 * A result whose handler failed is handed to it again after this delay (by delivery number):
 * doubling from 500 ms, capped at 30 s, for as long as it takes (a result outlives an outage
 * instead of being dropped).
 */
export function resultBackoffMs(deliveries: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, deliveries - 1));
}

/** Redis's clock in ms, inside a script (one clock for every controller and worker). */
export const REDIS_NOW_MS = `local function now_ms() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end`;

/**
 * KEYS[1] shared stream, KEYS[2] seen marker, KEYS[3] controllers, KEYS[4] the reply-to inbox (or
 * the shared stream again); ARGV[1] retention ms, ARGV[2] field, ARGV[3] encoded result, ARGV[4]
 * the reply-to address ('' for none).
 * Atomic "publish once": a second publish of the same attempt (a task job re-run after its worker
 * died between publishing and completing it, a stalled job reported after all) is a no-op, so the
 * first result published is the one controllers see, as with the former results queue's job ids.
 * Where to: the inbox of the controller that dispatched the attempt while it is live, else the
 * shared stream, in the same atomic step, so a result never lands in the inbox of a controller
 * already counted as gone (whose inbox the others empty into the shared stream).
 */
const PUBLISH_ONCE = `
${REDIS_NOW_MS}
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  local stream = KEYS[1]
  if ARGV[4] ~= '' then
    local live = redis.call('ZSCORE', KEYS[3], ARGV[4])
    if live and tonumber(live) > now_ms() then stream = KEYS[4] end
  end
  return redis.call('XADD', stream, '*', ARGV[2], ARGV[3])
end
return false`;

type PublishingRedis = Redis & {
  memoflowPublishResultTo(stream: string, seen: string, controllers: string, inbox: string, retentionMs: number, field: string, payload: string, replyTo: string): Promise<string | null>;
};

/** Publishes attempt results to their controller's inbox, else the shared stream; one script call (EVALSHA) each. */
export class ResultPublisher {
  private readonly redis: PublishingRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly retentionMs: number,
  ) {
    if (typeof (redis as unknown as Record<string, unknown>)['memoflowPublishResultTo'] !== 'function') {
      redis.defineCommand('memoflowPublishResultTo', { numberOfKeys: 4, lua: PUBLISH_ONCE });
    }
    this.redis = redis as unknown as PublishingRedis;
  }

  /**
   * Resolves once the result is in Redis (or was already: a second publish is a no-op): in the
   * inbox of the controller at `replyTo` while it is live, else in the shared stream.
   */
  async publish(result: AttemptResult, replyTo: string | null = null): Promise<void> {
    const shared = resultsStreamKey(this.prefix);
    const to = replyTo !== null && ADDRESS_PATTERN.test(replyTo) ? replyTo : null;
    await this.redis.memoflowPublishResultTo(
      shared,
      resultSeenKey(this.prefix, result.attemptId),
      controllersKey(this.prefix),
      to === null ? shared : resultsInboxKey(this.prefix, to),
      this.retentionMs,
      RESULT_FIELD,
      JSON.stringify(encodeResult(result)),
      to ?? '',
    );
  }
}
