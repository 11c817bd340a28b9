import { statSync } from 'node:fs';
import { MemoflowError } from '@memoflow/engine';
import { openPgliteStorage, openPostgresStorage, type Storage } from '@memoflow/catalog';
import { probeRedis } from '@memoflow/worker';
import { safeErrorText } from './error-text.js';

/** How long connect() waits for Postgres or Redis to answer before it says it cannot reach them. */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens the embedded store, turning what the user can fix (the path is a file, cannot be created,
 * is held by another process) into one MemoflowError naming `dataDir` (`--data-dir`).
 */
export async function openEmbeddedStorage(dataDir: string): Promise<Storage> {
  const existing = statOrUndefined(dataDir);
  if (existing !== undefined && !existing.isDirectory()) {
    throw new MemoflowError('INVALID_OPTION', `the data directory ${dataDir} (--data-dir, MEMOFLOW_DATA_DIR) is a file, not a directory`, { field: 'dataDir' });
  }
  try {
    return await openPgliteStorage({ dataDir });
  } catch (error) {
    if (error instanceof MemoflowError) throw error;
    throw new MemoflowError('INVALID_OPTION', `cannot open the data directory ${dataDir} (--data-dir, MEMOFLOW_DATA_DIR): ${safeErrorText(error)}`, { field: 'dataDir', cause: error });
  }
}

/** Opens Postgres storage, or says in one line why DATABASE_URL cannot be used. */
export async function openDatabaseStorage(url: string, schema: string): Promise<Storage> {
  const where = describeDatabaseUrl(url);
  try {
    return await withTimeout(openPostgresStorage({ url, schema }), CONNECT_TIMEOUT_MS + 2_000, `connecting to ${where}`);
  } catch (error) {
    if (error instanceof MemoflowError && error.code !== 'CATALOG_ERROR') throw error;
    throw new MemoflowError('CONNECTION_FAILED', `cannot use DATABASE_URL (${where}): ${safeErrorText(error)}`, { field: 'databaseUrl', cause: error });
  }
}

/** Checks REDIS_URL is a Redis URL and that Redis answers, so a run never waits on a queue nobody can reach. */
export async function checkRedis(url: string): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MemoflowError('INVALID_OPTION', `REDIS_URL is not a URL (expected redis://host:port): ${redactText(url)}`, { field: 'redisUrl' });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new MemoflowError('INVALID_OPTION', `REDIS_URL must start with redis:// or rediss://, got ${parsed.protocol}//`, { field: 'redisUrl' });
  }
  try {
    await probeRedis(url, CONNECT_TIMEOUT_MS);
  } catch (error) {
    throw new MemoflowError('CONNECTION_FAILED', `cannot reach Redis at REDIS_URL (${parsed.host || 'localhost'}): ${safeErrorText(error)}`, { field: 'redisUrl', cause: error });
  }
}

function describeDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MemoflowError('INVALID_OPTION', `DATABASE_URL is not a URL (expected postgres://user@host:port/db): ${redactText(url)}`, { field: 'databaseUrl' });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new MemoflowError('INVALID_OPTION', `DATABASE_URL must start with postgres:// or postgresql://, got ${parsed.protocol}//`, { field: 'databaseUrl' });
  }
  return `${parsed.host || 'localhost'}${parsed.pathname}`;
}

/** A setting that is not even a URL may still hold a password: show its shape only. */
function redactText(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 12)}…` : text.replace(/:[^@/]*@/, ':***@'));
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms / 1000} s`), { code: 'ETIMEDOUT' })), ms);
        timer.unref();
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
