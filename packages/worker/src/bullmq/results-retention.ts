import type { Redis } from 'ioredis';
import { OUTPUT_REF_FIELD } from './results-stream.js';
import { VALUE_LUA } from './value-refs.js';

/*
 * What Redis keeps of a finished attempt, and for how long: exactly what recovery needs.
 *
 * Recovery means: a controller, worker or Redis client that dies at any point loses no result and
 * runs no attempt twice that it can avoid, and a controller that restarts, or takes over a run,
 * re-dispatches every node its store says is `dispatched`. What that needs of Redis:
 *
 * - The task job: until its attempt's result is in the results stream. The job completes only
 *   after the result is published, so it is removed as it completes (`removeOnComplete: true`), and
 *   a job BullMQ gives up on (stalled too often) is removed as it fails: the pool publishes a
 *   TASK_STALLED result for it, and if even that fails, the vanished job with no result is what the
 *   watchdog re-dispatches. A finished job kept afterwards would serve only as the "already done"
 *   answer to a re-dispatch, which the published-result marker gives instead (results-stream.ts).
 * - A result entry: until a controller acknowledges it, which happens only after the result is
 *   recorded in the run store. From then on nothing reads it (redelivery and takeover only ever
 *   concern pending entries), so it is deleted in the same script that acknowledges it. Entries
 *   not yet read, or read and pending, are never touched.
 * - A value passed by reference: until its last holder (a job or an entry) is done (value-refs.ts).
 * - The published-result marker: a day (DEFAULT_RETENTION_MS), about 100 bytes per attempt.
 *
 * Watchdog: with finished jobs gone, "the job is missing" no longer means "lost". An attempt is
 * finished if its marker exists (result published: in the stream, or already recorded), open if its
 * job exists, and lost only if neither does (Redis lost its data): only then is it re-dispatched.
 */

/**
 * KEYS[1] stream; ARGV[1] group, ARGV[2] value key prefix, ARGV[3..] entry ids. Acknowledges each
 * entry for the group, releases the output it holds by reference, and deletes it. Returns how
 * many were pending. Deleting an entry another consumer still handles (it claimed it from a slow
 * controller) is safe: handlers are idempotent, and the engine ignores a second result.
 */
const ACK_AND_DELETE = `${VALUE_LUA}
local pending = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  pending = pending + redis.call('XACK', KEYS[1], ARGV[1], id)
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  if #entry > 0 then
    local fields = entry[1][2]
    for j = 1, #fields, 2 do
      if fields[j] == '${OUTPUT_REF_FIELD}' then release_value(ARGV[2] .. fields[j + 1], 'out:' .. id) end
    end
    redis.call('XDEL', KEYS[1], id)
  end
end
return pending`;

type AckingRedis = Redis & {
  memoflowAckResults(stream: string, group: string, valueKeyPrefix: string, ...ids: string[]): Promise<number>;
};

/** Entries per script call: one call stays short, and Lua's argument stack far from its limit. */
const IDS_PER_CALL = 1_000;

/** Acknowledges and deletes results (see ACK_AND_DELETE); one script call per 1,000 entries. */
export async function acknowledgeResults(redis: Redis, stream: string, group: string, valueKeyPrefix: string, ids: readonly string[]): Promise<void> {
  if (typeof (redis as unknown as Record<string, unknown>)['memoflowAckResults'] !== 'function') {
    redis.defineCommand('memoflowAckResults', { numberOfKeys: 1, lua: ACK_AND_DELETE });
  }
  const acking = redis as AckingRedis;
  for (let i = 0; i < ids.length; i += IDS_PER_CALL) {
    await acking.memoflowAckResults(stream, group, valueKeyPrefix, ...ids.slice(i, i + IDS_PER_CALL));
  }
}
