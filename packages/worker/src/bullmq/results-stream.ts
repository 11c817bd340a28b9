import type { AttemptResult } from '@memoflow/engine';
import type { Redis } from 'ioredis';
import { contentHash, inputHolder, isLarge, VALUE_LUA, valueKey, valueRefOptions } from './value-refs.js';
import type { StoredValue, ValueRefOptions } from './value-refs.js';
import { ADDRESS_PATTERN, encodeResult } from './wire-format.js';
import type { WireAttemptResult } from './wire-format.js';

/**
 * How long the marker that an attempt's result was published (`results-seen`) stays: one day by
 * default. Finished task jobs are removed as they finish and acknowledged results as they are
 * acknowledged (see results-retention.ts for what recovery needs of each); the marker is what stands
 * for a finished attempt afterwards, so while it is there
 * - dispatching the attempt again is a no-op (the dispatcher skips attempts with a marker);
 * - a job of the attempt run again (its worker died between publishing and completing it)
 *   completes without running the body, and a second publish is a no-op (the first result wins);
 * - the watchdog tells a finished attempt (marker) from a lost one (no job, no marker).
 * It must outlast every copy of the attempt's job that may still run and every controller that
 * may still dispatch the attempt (one that loaded its node as dispatched before the result was
 * recorded). Both are bounded by minutes in practice (lock expiry plus a queue's wait, a lease or
 * a sweep); a day is the margin, at about 100 bytes per attempt.
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

/** The field of a stream entry that holds the hash of an output passed by reference (value-refs.ts). */
export const OUTPUT_REF_FIELD = 'v';

/**
 * The field that holds the encoded result instead of RESULT_FIELD when the output goes by
 * reference, so a controller of the previous release (which would read the missing output as
 * null) finds no result in the entry and reports it as malformed rather than record a null.
 */
export const RESULT_WITH_REF_FIELD = 'rv';

/**
 * KEYS[1] shared stream, KEYS[2] seen marker, KEYS[3] controllers, KEYS[4] the reply-to inbox (or
 * the shared stream again), KEYS[5] the output's value key when it goes by reference, then the
 * value keys of the attempt's inputs by reference. ARGV[1] marker ttl ms, ARGV[2] the field for
 * the result (RESULT_FIELD, or RESULT_WITH_REF_FIELD), ARGV[3] encoded result, ARGV[4] the
 * attempt's input holder, ARGV[5] output hash or '', ARGV[6] output text, ARGV[7] value ttl ms,
 * ARGV[8] the reply-to address ('' for none). Returns the entry id, or false if already published.
 * Atomic "publish once": a second publish of the same attempt (a task job re-run after its worker
 * died between publishing and completing it, a stalled job reported after all) is a no-op, so the
 * first result published is the one controllers see, as with the former results queue's job ids.
 * Where to: the inbox of the controller that dispatched the attempt while it is live, else the
 * shared stream, in the same atomic step, so a result never lands in the inbox of a controller
 * already counted as gone (whose inbox the others empty into the shared stream).
 * The output by reference is held by the entry (`out:<entry id>`) until it is acknowledged; the
 * inputs are released on every publish, no-op ones included (a job queued again for an attempt
 * already published held them again).
 */
const PUBLISH_ONCE = `${VALUE_LUA}
${REDIS_NOW_MS}
local first = 5
if ARGV[5] ~= '' then first = 6 end
local id = false
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  local stream = KEYS[1]
  if ARGV[8] ~= '' then
    local live = redis.call('ZSCORE', KEYS[3], ARGV[8])
    if live and tonumber(live) > now_ms() then stream = KEYS[4] end
  end
  if ARGV[5] ~= '' then
    id = redis.call('XADD', stream, '*', ARGV[2], ARGV[3], '${OUTPUT_REF_FIELD}', ARGV[5])
    hold_value(KEYS[5], ARGV[6], 'out:' .. id, ARGV[7])
  else
    id = redis.call('XADD', stream, '*', ARGV[2], ARGV[3])
  end
end
for i = first, #KEYS do release_value(KEYS[i], ARGV[4]) end
return id`;

type PublishingRedis = Redis & {
  memoflowPublishResultTo(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<string | null>;
};

/**
 * Publishes attempt results to their controller's inbox, else the shared stream; one script call
 * (EVALSHA) each. An output at or above the value threshold is stored by reference (value-refs.ts)
 * in the same call.
 */
export class ResultPublisher {
  private readonly redis: PublishingRedis;
  private readonly values: ValueRefOptions;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly retentionMs: number,
    values: ValueRefOptions = valueRefOptions({}),
  ) {
    if (typeof (redis as unknown as Record<string, unknown>)['memoflowPublishResultTo'] !== 'function') {
      redis.defineCommand('memoflowPublishResultTo', { lua: PUBLISH_ONCE });
    }
    this.redis = redis as unknown as PublishingRedis;
    this.values = values;
  }

  /** Whether a result of this attempt has been published (its marker is there). */
  async isPublished(attemptId: string): Promise<boolean> {
    return (await this.redis.exists(resultSeenKey(this.prefix, attemptId))) === 1;
  }

  /**
   * Resolves once the result is in Redis (or was already: a second publish is a no-op): in the
   * inbox of the controller at `replyTo` while it is live, else in the shared stream.
   * `inputRefs`: the hashes of the attempt's inputs by reference, released by its job.
   */
  async publish(result: AttemptResult, inputRefs: readonly string[] = [], replyTo: string | null = null): Promise<void> {
    const { payload, output } = encodePayload(result, this.values.thresholdBytes);
    const shared = resultsStreamKey(this.prefix);
    const to = replyTo !== null && ADDRESS_PATTERN.test(replyTo) ? replyTo : null;
    const keys = [shared, resultSeenKey(this.prefix, result.attemptId), controllersKey(this.prefix), to === null ? shared : resultsInboxKey(this.prefix, to)];
    if (output !== null) keys.push(valueKey(this.prefix, output.hash));
    for (const hash of new Set(inputRefs)) keys.push(valueKey(this.prefix, hash));
    await this.redis.memoflowPublishResultTo(
      keys.length,
      ...keys,
      this.retentionMs,
      output === null ? RESULT_FIELD : RESULT_WITH_REF_FIELD,
      payload,
      inputHolder(result.attemptId),
      output?.hash ?? '',
      output?.text ?? '',
      this.values.ttlMs,
      to ?? '',
    );
  }
}

/** The entry's JSON; an output at or above the threshold is left out and returned to be stored by reference. */
function encodePayload(result: AttemptResult, thresholdBytes: number | null): { payload: string; output: StoredValue | null } {
  if (!result.ok) return { payload: JSON.stringify(encodeResult(result)), output: null };
  const { output, ...rest } = encodeResult(result) as Extract<WireAttemptResult, { ok: true }>;
  const text = (JSON.stringify(output) as string | undefined) ?? 'null';
  if (isLarge(text, thresholdBytes)) {
    const hash = contentHash(text);
    return { payload: JSON.stringify({ ...rest, outputRef: hash }), output: { hash, text } };
  }
  // The output's text is spliced in rather than encoded twice (rest always has fields).
  return { payload: `${JSON.stringify(rest).slice(0, -1)},"output":${text}}`, output: null };
}
