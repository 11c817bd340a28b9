/**
 * Regression: the controller's store and catalog calls got deadlines (a call on a connection that
 * died without a word never answers), but the client's own reads did not: `memoflow runs show`,
 * `runs ls`, `cache ls`, explain, plan and the web UI read the stores directly and hung for as
 * long as the kernel's keepalive took to give up (~11 minutes). They have the same deadline now,
 * and fail with CALL_TIMEOUT (retryable) naming the call. (Review also found a bad callTimeoutMs
 * refused only after the storage had opened, which then stayed open: it is checked first now.)
 */
import { describe, expect, test } from 'vitest';
import { MemoflowError } from '@memoflow/engine';
import { connect } from '@memoflow/sdk';
import { storageOf } from '../../packages/sdk/src/client/storage-of.js';
import { useEmbedded } from '../support/modes.js';

const never = <T>() => new Promise<T>(() => undefined);

describe("a client read whose store never answers", () => {
  const t = useEmbedded({ each: true, connect: { callTimeoutMs: 200 } });

  test.each([
    ['runs.show', (mf: typeof t.mf) => mf.runs.show('r-missing')],
    ['runs.list', (mf: typeof t.mf) => mf.runs.list()],
    ['cache.list', (mf: typeof t.mf) => mf.cache.list()],
  ] as const)('%s fails with CALL_TIMEOUT after the deadline', async (_name, read) => {
    const storage = storageOf(t.mf as unknown as Parameters<typeof storageOf>[0]);
    // Replaced on the store itself: the deadline wraps whatever method the store has when called.
    Object.assign(storage.runStore, { load: never, list: never });
    Object.assign(storage.catalog, { list: never });
    const started = Date.now();
    const error = await read(t.mf).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).code).toBe('CALL_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('a bad callTimeoutMs', () => {
  test.each([0, -5, Number.NaN, '100'])('%s is refused before any storage opens', async (value) => {
    const error = await connect({ dataDir: '/nonexistent/never-opened', callTimeoutMs: value as number }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).code).toBe('INVALID_OPTION');
    expect((error as MemoflowError).location).toMatchObject({ field: 'callTimeoutMs' });
  });
});
