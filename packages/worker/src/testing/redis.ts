import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A BullMQ prefix no other test uses. */
export function testPrefix(): string {
  return `mf-test-${randomBytes(5).toString('hex')}`;
}

/**
 * Deletes every key under the prefix and fails if any Redis client of the prefix is still
 * connected (a Queue, Worker or dispatcher someone forgot to close). Our components name their
 * connections `<prefix>.memoflow-*` and BullMQ names worker connections `<prefix>:...`.
 */
export async function cleanUpPrefix(prefix: string, leakWaitMs = 3_000): Promise<void> {
  const admin = new Redis(REDIS_URL, { connectionName: 'mf-test-admin', lazyConnect: true });
  await admin.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
    const deadline = Date.now() + leakWaitMs;
    let leaked: string[] = [];
    do {
      leaked = clientNames(await admin.client('LIST') as string).filter((name) => name.startsWith(prefix));
      if (leaked.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } while (Date.now() < deadline);
    throw new Error(`Redis connections left open under prefix ${prefix}: ${leaked.join(', ')}`);
  } finally {
    await admin.quit();
  }
}

function clientNames(list: string): string[] {
  return list
    .split('\n')
    .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '')
    .filter((name) => name !== '');
}
