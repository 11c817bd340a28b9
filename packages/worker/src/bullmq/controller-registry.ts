import type { Redis } from 'ioredis';
import { controllersKey, OUTPUT_REF_FIELD, REDIS_NOW_MS, RESULT_FIELD, RESULTS_GROUP, resultsInboxKey, resultsStreamKey } from './results-stream.js';
import { valueKeyPrefix } from './value-refs.js';

/**
 * KEYS[1] controllers; ARGV[1] address, ARGV[2] ms. The address counts as live for ARGV[2] ms
 * from now (Redis's clock). Returns the addresses whose live-until time has passed (at most 100):
 * the gone controllers whose inboxes are to be emptied.
 */
const HEARTBEAT = `
${REDIS_NOW_MS}
local now = now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)`;

/**
 * KEYS[1] controllers, KEYS[2] the owner's inbox; ARGV[1] owner address, ARGV[2] field, ARGV[3]
 * encoded result. Adds the result to the owner's inbox if the owner is live; else nothing (nil).
 */
const ROUTE = `
${REDIS_NOW_MS}
local live = redis.call('ZSCORE', KEYS[1], ARGV[1])
if live and tonumber(live) > now_ms() then return redis.call('XADD', KEYS[2], '*', ARGV[2], ARGV[3]) end
return false`;

/**
 * KEYS[1] a gone controller's inbox, KEYS[2] the shared stream, KEYS[3] controllers; ARGV[1] group,
 * ARGV[2] the consumer doing it, ARGV[3] the gone controller's address, ARGV[4] count, ARGV[5] the
 * output-by-reference field, ARGV[6] '1' to go ahead even if the address counts as live (its run
 * leases expired: see `takeOver`), ARGV[7] the value keys' prefix.
 * Moves up to ARGV[4] of the inbox's pending entries (read by its owner, never acknowledged: it
 * died before recording them) and up to as many unread ones to the shared stream, acknowledging and
 * deleting each in the inbox in the same atomic step, so each result is in exactly one of the two.
 * Every field moves with it; an output passed by reference (field ARGV[5]: its hash) changes
 * holder from `out:<old id>` to `out:<new id>`, so acknowledging the moved entry releases it.
 * Once nothing is left, deletes the inbox and the address. Returns how many moved, or -1 if the
 * address is live again (it was only slow: its inbox stays its own).
 */
const DRAIN_INBOX = `
${REDIS_NOW_MS}
local live = redis.call('ZSCORE', KEYS[3], ARGV[3])
if ARGV[6] ~= '1' and live and tonumber(live) > now_ms() then return -1 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[3])
  return 0
end
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')
local moved = 0
local function move(entry)
  local fields = entry[2]
  if fields and #fields > 0 then
    local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
    for i = 1, #fields, 2 do
      if fields[i] == ARGV[5] then
        local value = ARGV[7] .. fields[i + 1]
        if redis.call('HDEL', value, 'out:' .. entry[1]) == 1 then redis.call('HSET', value, 'out:' .. id, '') end
      end
    end
  end
  redis.call('XACK', KEYS[1], ARGV[1], entry[1])
  redis.call('XDEL', KEYS[1], entry[1])
  moved = moved + 1
end
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, '0-0', 'COUNT', ARGV[4])
for _, entry in ipairs(claimed[2]) do move(entry) end
local unread = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '>')
if unread then
  for _, entry in ipairs(unread[1][2]) do move(entry) end
end
if moved == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
return moved`;

type RegistryRedis = Redis & {
  memoflowHeartbeat(controllers: string, address: string, liveForMs: number): Promise<string[]>;
  memoflowRouteResult(controllers: string, inbox: string, owner: string, field: string, payload: string): Promise<string | null>;
  memoflowDrainInbox(inbox: string, shared: string, controllers: string, group: string, consumer: string, address: string, count: number, refField: string, force: '0' | '1', valuePrefix: string): Promise<number>;
};

/** Entries moved per script call when emptying an inbox (each call is atomic: keep it short). */
const DRAIN_BATCH = 200;

/**
 * The controllers of a prefix as Redis knows them, each by its address: who is live (a heartbeat
 * renewing a live-until time on Redis's clock), routing a result into a live controller's inbox,
 * and emptying the inbox of one that is gone into the shared stream. Every step is one script.
 */
export class ControllerRegistry {
  private readonly redis: RegistryRedis;
  private readonly controllers: string;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    /** This controller's address. */
    readonly address: string,
    /** How long after its last heartbeat a controller counts as gone. */
    private readonly liveForMs: number,
  ) {
    if (typeof (redis as unknown as Record<string, unknown>)['memoflowDrainInbox'] !== 'function') {
      redis.defineCommand('memoflowHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
      redis.defineCommand('memoflowRouteResult', { numberOfKeys: 2, lua: ROUTE });
      redis.defineCommand('memoflowDrainInbox', { numberOfKeys: 3, lua: DRAIN_INBOX });
    }
    this.redis = redis as unknown as RegistryRedis;
    this.controllers = controllersKey(prefix);
  }

  /** This controller is live for another `liveForMs`. Returns the addresses of controllers that are gone. */
  async heartbeat(): Promise<string[]> {
    const gone = await this.redis.memoflowHeartbeat(this.controllers, this.address, this.liveForMs);
    return gone.filter((address) => address !== this.address);
  }

  /** Adds an encoded result to `owner`'s inbox; false if `owner` is not live. */
  async route(owner: string, payload: string): Promise<boolean> {
    return (await this.redis.memoflowRouteResult(this.controllers, resultsInboxKey(this.prefix, owner), owner, RESULT_FIELD, payload)) !== null;
  }

  /**
   * Empties the inboxes of gone controllers into the shared stream (results they never recorded,
   * and results published to them before they counted as gone), then forgets them. Returns how
   * many results moved.
   */
  async drainGone(addresses: readonly string[]): Promise<number> {
    let total = 0;
    for (const address of addresses) if (address !== this.address) total += await this.drain(address);
    return total;
  }

  /**
   * Another controller's run leases expired and this one took runs over: its inbox is emptied into
   * the shared stream now, even if it still counts as live (its liveness outlasts its leases by up
   * to a heartbeat). If it was only paused, it reads on from a fresh inbox; results moved meanwhile
   * reach it through routing, and any result handled twice is ignored the second time.
   */
  async takeOver(address: string): Promise<number> {
    return address === this.address ? 0 : this.drain(address, true);
  }

  /**
   * This controller stops: it counts as gone at once (results go to the shared stream from now
   * on) and hands what is left in its inbox to the shared stream itself.
   */
  async retire(): Promise<number> {
    await this.redis.zrem(this.controllers, this.address);
    return this.drain(this.address);
  }

  private async drain(address: string, force = false): Promise<number> {
    let total = 0;
    for (;;) {
      const moved = await this.redis.memoflowDrainInbox(resultsInboxKey(this.prefix, address), resultsStreamKey(this.prefix), this.controllers, RESULTS_GROUP, this.address, address, DRAIN_BATCH, OUTPUT_REF_FIELD, force ? '1' : '0', valueKeyPrefix(this.prefix));
      if (moved <= 0) return total;
      total += moved;
    }
  }
}
