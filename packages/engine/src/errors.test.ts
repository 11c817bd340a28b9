import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoflowError, NonRetryableError, toErrorInfo, type ErrorInfo } from './errors.js';

function hostileValues(): unknown[] {
  const cyclic: { self?: unknown } = {};
  cyclic.self = cyclic;
  const badMessage = new Error('x');
  Object.defineProperty(badMessage, 'message', { get: () => { throw new Error('getter'); } });
  const badName = new Error('named');
  Object.defineProperty(badName, 'name', { get: () => { throw new Error('getter'); } });
  const badStack = new Error('stack');
  Object.defineProperty(badStack, 'stack', { get: () => { throw new Error('getter'); } });
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const trap = new Proxy({}, { getPrototypeOf: () => { throw new Error('trap'); }, get: () => { throw new Error('trap'); } });
  const objectMessage = Object.assign(new Error('m'), { message: { nested: 5n } });
  return [5n, cyclic, { toJSON: () => { throw new Error('toJSON'); } }, badMessage, badName, badStack, revoked.proxy, trap, Symbol('s'), () => 1, undefined, null, 'x'.repeat(100_000), objectMessage, { a: 1n }, new Map([[1, 2]])];
}

function assertWellFormed(info: ErrorInfo): void {
  expect(typeof info.name).toBe('string');
  expect(typeof info.message).toBe('string');
  expect(typeof info.retryable).toBe('boolean');
  expect(() => JSON.stringify(info)).not.toThrow();
  expect(info.message.length).toBeLessThan(11_000);
}

describe('toErrorInfo', () => {
  it('never throws, whatever was thrown, and always gives plain strings', () => {
    for (const value of hostileValues()) assertWellFormed(toErrorInfo(value));
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true }), (value) => {
        assertWellFormed(toErrorInfo(value));
      }),
      { numRuns: 500 },
    );
  });

  it('describes what it can: a BigInt, a cyclic object, an unreadable message', () => {
    const [bigint, cyclic, , badMessage] = hostileValues();
    expect(toErrorInfo(bigint)).toEqual({ name: 'Error', message: '5n', retryable: true });
    expect(toErrorInfo(cyclic).message).toMatch(/unserialisable value \(\[object Object\]\)/);
    expect(toErrorInfo(badMessage)).toMatchObject({ name: 'Error', message: 'an Error whose message cannot be read (its getter throws)', retryable: true });
    expect(toErrorInfo('plain').message).toBe('plain');
  });

  it('keeps the classification: NonRetryableError, MemoflowError.retryable, codes', () => {
    expect(toErrorInfo(new NonRetryableError('no')).retryable).toBe(false);
    expect(toErrorInfo(new MemoflowError('CATALOG_ERROR', 'db', { retryable: true }))).toMatchObject({ code: 'CATALOG_ERROR', retryable: true });
    expect(toErrorInfo(new MemoflowError('INVALID_SPEC', 'bad')).retryable).toBe(false);
    expect(toErrorInfo(Object.assign(new Error('e'), { code: 'ENOENT' })).code).toBe('ENOENT');
  });
});
