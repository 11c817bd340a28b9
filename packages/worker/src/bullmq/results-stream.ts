import type { AttemptResult } from '@memoflow/engine';
import type { Redis } from 'ioredis';
import { encodeResult } from './wire-format.js';

/**
 * Finished task jobs, and the marker that a result was published, stay in Redis this long
 * (default one day). This is the window in which re-dispatching a finished attempt, or
 * re-publishing its result, is a no-op: task jobs have the attempt id as job id, and a result is
 * published only if its attempt's marker is not there yet. Acknowledged results stay in the
 * stream this long too; unacknowledged ones stay until a controller acknowledges them.
 */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Results of every task, for every controller of the prefix: one Redis Stream (not a BullMQ
 * queue, see ARCHITECTURE.md) read through one consumer group. Its key cannot clash with a
 * BullMQ queue's keys, which are `<prefix>:<queue>:<suffix>`.
 */
export function resultsStreamKey(prefix: string): string {
  return `${prefix}:results-stream`;
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

/**
 * KEYS[1] stream, KEYS[2] seen marker; ARGV[1] retention ms, ARGV[2] field, ARGV[3] encoded result.
 * Atomic "publish once": a second publish of the same attempt (a task job re-run after its worker
 * died between publishing and completing it, a stalled job reported after all) is a no-op, so the
 * first result published is the one controllers see, as with the former results queue's job ids.
 */
const PUBLISH_ONCE = `
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[3])
end
return false`;

type PublishingRedis = Redis & {
  memoflowPublishResult(stream: string, seen: string, retentionMs: number, field: string, payload: string): Promise<string | null>;
};

/** Publishes attempt results to the prefix's results stream; one script call (EVALSHA) each. */
export class ResultPublisher {
  private readonly redis: PublishingRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly retentionMs: number,
  ) {
    if (typeof (redis as unknown as Record<string, unknown>)['memoflowPublishResult'] !== 'function') {
      redis.defineCommand('memoflowPublishResult', { numberOfKeys: 2, lua: PUBLISH_ONCE });
    }
    this.redis = redis as unknown as PublishingRedis;
  }

  /** Resolves once the result is in Redis (or was already: a second publish is a no-op). */
  async publish(result: AttemptResult): Promise<void> {
    await this.redis.memoflowPublishResult(
      resultsStreamKey(this.prefix),
      resultSeenKey(this.prefix, result.attemptId),
      this.retentionMs,
      RESULT_FIELD,
      JSON.stringify(encodeResult(result)),
    );
  }
}
