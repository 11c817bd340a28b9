import { createHash } from 'node:crypto';
import type { AttemptResult, Json, TaskAttempt } from '@memoflow/engine';
import type { Redis } from 'ioredis';
import { WorkerError } from '../errors.js';
import type { QueuedAttempt, ReceivedResult } from './wire-format.js';

/*
 * Large values by reference (issue 9, item 8: each value is stored once).
 *
 * An attempt input, or a result output, whose JSON text is at least `thresholdBytes` long does not
 * travel inside the job or the results-stream entry: it is stored once under its content hash,
 * `<prefix>:values:<sha256 of the text>`, and the job or entry carries the hash. A thousand
 * consumers of one value hold one copy of it; a producer's output and a consumer's input with the
 * same text are the same key.
 *
 * Lifetime: the key is a hash whose field `v` is the text and whose other fields are its holders.
 * - `in:<attempt id>`: the attempt's job needs it until the attempt's result is published. Added by
 *   the dispatcher before the job is queued; removed in the same script that publishes the result
 *   (every way an attempt ends publishes one: success, task failure, stalled, no worker).
 * - `out:<stream entry id>`: a result entry needs it until a controller acknowledges the entry,
 *   i.e. until the result is recorded in the run store. Added by the publishing script; removed by
 *   the acknowledging one (results-retention.ts).
 * The last holder to leave deletes the key. Holding and releasing are idempotent (a field is there
 * or not), so a re-dispatch, a re-published result or a second acknowledgement cannot skew a count.
 * Every hold also sets the key's expiry to `ttlMs` (default 7 days) from now: a safety net for
 * holders that never leave (a job deleted by hand, a prefix abandoned), not the normal way out. A
 * value that expires while still needed (a job queued for longer than the expiry, a result left
 * unacknowledged that long) is reported as a retryable VALUE_MISSING failure, never as data.
 *
 * Why Redis and not Postgres (the wording): workers speak only Redis (pools have no
 * DATABASE_URL, and giving every pool a Postgres pool is a deployment change with its own load), a
 * value by reference must be readable by the worker before the body runs, and a result's value must
 * exist before the controller has written anything. Postgres remains where values are kept for
 * good (node outputs, the catalog); Redis keeps a value only while an attempt or result needs it.
 */

/**
 * A value whose JSON text is at least this long goes by reference: 8 KiB. A reference costs one
 * more round trip where the value is read (the worker for inputs, the controller for an output)
 * and about 100 bytes of key plus about 85 per holder; a copy costs the value's size in every job
 * that carries it. At 8 KiB a copy is some 40 times a holder, and sending it costs about what the
 * extra round trip does, so a value shared by two jobs is already cheaper by reference; the fan-out
 * the threshold guards against (one 10 KB value into 1,000 queued jobs: 10 MB inline, 95 KB by
 * reference, bench/value-storage.mjs) is what decides it. `bench/value-storage.mjs
 * --value-ref-bytes=N` measures another setting.
 */
export const DEFAULT_VALUE_REF_THRESHOLD_BYTES = 8 * 1024;
/** Safety expiry of a stored value, renewed by every hold (see above). 7 days. */
export const DEFAULT_VALUE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export interface ValueRefOptions {
  /** JSON text of at least this many bytes goes by reference; `null`: everything inline. */
  thresholdBytes: number | null;
  ttlMs: number;
}

export function valueRefOptions(options: { valueRefThresholdBytes?: number | null; valueTtlMs?: number }): ValueRefOptions {
  const thresholdBytes = options.valueRefThresholdBytes === undefined ? DEFAULT_VALUE_REF_THRESHOLD_BYTES : options.valueRefThresholdBytes;
  if (thresholdBytes !== null && !(Number.isInteger(thresholdBytes) && thresholdBytes >= 0)) {
    throw new WorkerError('INVALID_OPTION', `valueRefThresholdBytes must be a non-negative integer or null, got ${String(thresholdBytes)}`);
  }
  const ttlMs = options.valueTtlMs ?? DEFAULT_VALUE_TTL_MS;
  if (!(Number.isInteger(ttlMs) && ttlMs > 0)) throw new WorkerError('INVALID_OPTION', `valueTtlMs must be a positive integer, got ${String(ttlMs)}`);
  return { thresholdBytes, ttlMs };
}

/** The key prefix of stored values; `<prefix>:values:<hash>` is the value with that hash. */
export function valueKeyPrefix(prefix: string): string {
  return `${prefix}:values:`;
}

export function valueKey(prefix: string, hash: string): string {
  return `${valueKeyPrefix(prefix)}${hash}`;
}

/** The holder field of an attempt's job, for the values of its inputs. */
export function inputHolder(attemptId: string): string {
  return `in:${attemptId}`;
}

/** A value's JSON text and its content hash (SHA-256, hex, of the UTF-8 text). */
export interface StoredValue {
  hash: string;
  text: string;
}

export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Whether JSON text of this length goes by reference (bytes, counted only when it could matter). */
export function isLarge(text: string, thresholdBytes: number | null): boolean {
  if (thresholdBytes === null) return false;
  if (text.length >= thresholdBytes) return true;
  return text.length * 3 >= thresholdBytes && Buffer.byteLength(text) >= thresholdBytes;
}

/**
 * The job data of an attempt: inputs at or above the threshold are replaced by `null` (their place
 * kept, so the inputs' order is unchanged) in `inlineInputs` and named in `inputRefs` with their
 * hash; `values` are what the job needs stored. Attempts with no large input are sent as they are.
 */
export function attemptJobData(attempt: TaskAttempt, thresholdBytes: number | null): { data: object; values: StoredValue[] } {
  if (thresholdBytes === null) return { data: attempt, values: [] };
  let inputs: { [name: string]: Json } | null = null;
  const inputRefs: { [name: string]: string } = {};
  const values: StoredValue[] = [];
  for (const [name, value] of Object.entries(attempt.inputs)) {
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined || !isLarge(text, thresholdBytes)) continue;
    const hash = contentHash(text);
    inputs ??= { ...attempt.inputs };
    inputs[name] = null;
    inputRefs[name] = hash;
    values.push({ hash, text });
  }
  if (inputs === null) return { data: attempt, values };
  // `inlineInputs`, not `inputs`: a worker of the previous release refuses the job (no `inputs`)
  // instead of running the body with nulls for the inputs it cannot see.
  const { inputs: _all, ...rest } = attempt;
  return { data: { ...rest, inlineInputs: inputs, inputRefs }, values };
}

/** The hashes of an attempt's inputs that go by reference (what its job holds). */
export function inputRefHashes(attempt: TaskAttempt, thresholdBytes: number | null): string[] {
  return attemptJobData(attempt, thresholdBytes).values.map((v) => v.hash);
}

/*
 * Lua shared by the scripts that hold and release values. A hold writes the text only if the key
 * is not there (the same hash is the same text), adds the holder, and renews the safety expiry. A
 * release removes the holder and deletes the key once only the text is left.
 */
export const VALUE_LUA = `
local function hold_value(key, text, holder, ttl)
  redis.call('HSETNX', key, 'v', text)
  redis.call('HSET', key, holder, '')
  redis.call('PEXPIRE', key, ttl)
end
local function release_value(key, holder)
  if redis.call('HDEL', key, holder) == 1 and redis.call('HLEN', key) <= 1 then redis.call('DEL', key) end
end
`;

/** KEYS[1] value key; ARGV[1] ttl ms, ARGV[2] text, ARGV[3..] holders: the value is held by each. */
const HOLD = `${VALUE_LUA}
for i = 3, #ARGV do hold_value(KEYS[1], ARGV[2], ARGV[i], ARGV[1]) end
return #ARGV - 2`;

/** KEYS[1] value key; ARGV[1..] holders: releases each (the last one out deletes the value). */
const RELEASE = `${VALUE_LUA}
for i = 1, #ARGV do release_value(KEYS[1], ARGV[i]) end
return #ARGV`;

interface ValueCommands<R> {
  memoflowHoldValue(key: string, ttlMs: number, text: string, ...holders: string[]): R;
  memoflowReleaseValue(key: string, ...holders: string[]): R;
}
type ValueRedis = Redis & ValueCommands<Promise<number>>;
/** ioredis adds defined commands to pipelines too; its types do not know them. */
type ValuePipeline = ValueCommands<unknown> & { exec(): Promise<[Error | null, unknown][] | null> };

/** Holders per script call: Lua's unpack and argument stack stay far from their limits. */
const HOLDERS_PER_CALL = 1_000;

/**
 * Stores, reads and releases values by reference on one client (the dispatcher's or the pool's).
 * Reads check the text against its hash: a value that is gone or altered is VALUE_MISSING.
 */
export class ValueStore {
  private readonly redis: ValueRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    readonly options: ValueRefOptions,
  ) {
    if (typeof (redis as unknown as Record<string, unknown>)['memoflowHoldValue'] !== 'function') {
      redis.defineCommand('memoflowHoldValue', { numberOfKeys: 1, lua: HOLD });
      redis.defineCommand('memoflowReleaseValue', { numberOfKeys: 1, lua: RELEASE });
    }
    this.redis = redis as unknown as ValueRedis;
  }

  /** Stores each value for its holders, in one pipeline (a value held by many is sent once). */
  async hold(holds: readonly { value: StoredValue; holder: string }[]): Promise<void> {
    if (holds.length === 0) return;
    const byHash = new Map<string, { text: string; holders: string[] }>();
    for (const { value, holder } of holds) {
      const entry = byHash.get(value.hash) ?? { text: value.text, holders: [] };
      entry.holders.push(holder);
      byHash.set(value.hash, entry);
    }
    const pipeline = this.redis.pipeline() as unknown as ValuePipeline;
    for (const [hash, { text, holders }] of byHash) {
      for (let i = 0; i < holders.length; i += HOLDERS_PER_CALL) {
        pipeline.memoflowHoldValue(valueKey(this.prefix, hash), this.options.ttlMs, text, ...holders.slice(i, i + HOLDERS_PER_CALL));
      }
    }
    throwFirstError(await pipeline.exec());
  }

  /** Releases what `holder` held (a dispatch that turned out not to need it). */
  async release(hashes: readonly string[], holder: string): Promise<void> {
    if (hashes.length === 0) return;
    const pipeline = this.redis.pipeline() as unknown as ValuePipeline;
    for (const hash of new Set(hashes)) pipeline.memoflowReleaseValue(valueKey(this.prefix, hash), holder);
    throwFirstError(await pipeline.exec());
  }

  /** The attempt with its inputs by reference filled in; VALUE_MISSING if one is gone. */
  async resolveAttempt(queued: QueuedAttempt): Promise<TaskAttempt> {
    const names = Object.keys(queued.inputRefs);
    if (names.length === 0) return queued.attempt;
    const texts = await this.read(names.map((name) => queued.inputRefs[name] as string));
    const inputs = { ...queued.attempt.inputs };
    names.forEach((name, i) => {
      const text = texts[i];
      if (text === null || text === undefined) {
        throw new WorkerError(
          'VALUE_MISSING',
          `input '${name}' of attempt ${queued.attempt.id} (task '${queued.attempt.task}') was passed by reference and is no longer in Redis ` +
            `(value ${String(queued.inputRefs[name]).slice(0, 12)}: older than valueTtlMs, or Redis lost it); a retry stores it again`,
          { retryable: true },
        );
      }
      inputs[name] = JSON.parse(text) as Json;
    });
    return { ...queued.attempt, inputs };
  }

  /** The result with its output by reference filled in; a failed VALUE_MISSING result if it is gone. */
  async resolveResult(received: ReceivedResult): Promise<AttemptResult> {
    const [result] = await this.resolveResults([received]);
    return result as AttemptResult;
  }

  /**
   * A batch of results with their outputs by reference filled in, read in one pipeline (one round
   * trip per batch, not per result); each missing output becomes a failed VALUE_MISSING result.
   */
  async resolveResults(received: readonly ReceivedResult[]): Promise<AttemptResult[]> {
    const refs = received.flatMap((r) => ('outputRef' in r ? [r.outputRef] : []));
    const texts = refs.length === 0 ? [] : await this.read(refs);
    let next = 0;
    return received.map((r) => {
      if (!('outputRef' in r)) return r;
      const text = texts[next++];
      const { outputRef, ...rest } = r;
      if (text === null || text === undefined) {
        const { outputHash: _hash, ok: _ok, ...base } = rest;
        return {
          ...base,
          ok: false,
          error: {
            name: 'WorkerError',
            code: 'VALUE_MISSING',
            message: `the output of attempt ${r.attemptId} was passed by reference and is no longer in Redis (value ${outputRef.slice(0, 12)}: older than valueTtlMs, or Redis lost it)`,
            retryable: true,
          },
        };
      }
      return { ...rest, output: JSON.parse(text) as Json };
    });
  }

  /** The texts of these hashes (one pipeline), each checked against its hash; null where missing or altered. */
  private async read(hashes: readonly string[]): Promise<(string | null)[]> {
    const pipeline = this.redis.pipeline();
    for (const hash of hashes) pipeline.hget(valueKey(this.prefix, hash), 'v');
    const replies = (await pipeline.exec()) ?? [];
    return hashes.map((hash, i) => {
      const [error, text] = replies[i] ?? [new Error('no reply'), null];
      if (error !== null) throw error;
      return typeof text === 'string' && contentHash(text) === hash ? text : null;
    });
  }
}

function throwFirstError(replies: [Error | null, unknown][] | null): void {
  for (const [error] of replies ?? []) if (error !== null) throw error;
}
