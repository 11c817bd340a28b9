import type { ConnectionOptions } from 'bullmq';
import type { RedisOptions } from 'ioredis';

/** Where Redis is: a `redis://` / `rediss://` URL or ioredis options. */
export type RedisConnection = string | RedisOptions;

/**
 * ioredis options for BullMQ from a URL or options, named so `CLIENT LIST` shows which memoflow
 * component (and which prefix) owns a connection; tests use the name to detect leaked clients.
 * BullMQ creates (and closes) its own clients from options, and names a worker's blocking client
 * itself (that name is what `Queue.getWorkers()` matches), so this name never hides a worker.
 */
export function toRedisOptions(connection: RedisConnection, connectionName: string): RedisOptions {
  const options = typeof connection === 'string' ? parseRedisUrl(connection) : { ...connection };
  return { connectionName, ...options };
}

/**
 * The same options as BullMQ's `connection`. BullMQ 6 types its connection options itself
 * (no longer as ioredis's), without `| undefined` on optional fields, and merges them over its
 * defaults with `Object.assign`: a key set to `undefined` (`host: undefined`) would override the
 * default, where ioredis alone would ignore it. Dropping such keys keeps both meanings equal;
 * BullMQ still builds ioredis clients from these options.
 */
export function toBullMqConnection(options: RedisOptions): ConnectionOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

export function parseRedisUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`not a Redis URL (expected redis:// or rediss://): ${redact(parsed)}`);
  }
  const options: RedisOptions = {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port === '' ? 6379 : Number(parsed.port),
  };
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password);
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '') options.db = Number(db);
  if (parsed.protocol === 'rediss:') options.tls = {};
  return options;
}

function redact(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password !== '') copy.password = '***';
  return copy.href;
}

/**
 * Fails fast when Redis cannot be reached: connects one client (no retries, no offline queue) and
 * sends PING, within `timeoutMs`. BullMQ and ioredis otherwise retry forever in the background, so
 * a wrong REDIS_URL would make a run wait silently. Rejects with an Error whose `code` is the
 * socket's (ECONNREFUSED, ENOTFOUND, ...) or ETIMEDOUT.
 */
export async function probeRedis(connection: RedisConnection, timeoutMs = 5_000): Promise<void> {
  const { Redis } = await import('ioredis');
  const options = toRedisOptions(connection, 'memoflow-probe');
  const client = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: timeoutMs });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => (lastError = error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`no answer from Redis within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
      }),
    ]);
  } catch (error) {
    throw lastError !== undefined && (error as { code?: unknown }).code === undefined ? lastError : error;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    client.disconnect();
  }
}
