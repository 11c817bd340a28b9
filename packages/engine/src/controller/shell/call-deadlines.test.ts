import { describe, expect, test } from 'vitest';
import { withDeadlines } from './call-deadlines.js';

class Port {
  #calls = 0; // a #private field: the methods must run on the port, not on the proxy
  answer = 'field';
  slow(ms: number, fail = false): Promise<string> {
    this.#calls += 1;
    return new Promise((resolve, reject) => setTimeout(() => (fail ? reject(new Error('late failure')) : resolve(`after ${ms}`)), ms));
  }
  never(): Promise<never> {
    this.#calls += 1;
    return new Promise(() => undefined);
  }
  exempted(): Promise<string> {
    this.#calls += 1;
    return new Promise((resolve) => setTimeout(() => resolve('exempt'), 60));
  }
  count(): number {
    return this.#calls;
  }
}

describe('calls with a deadline', () => {
  test('an answer in time passes through; one that never comes rejects with CALL_TIMEOUT naming the call', async () => {
    const port = withDeadlines(new Port(), 30, 'store');
    await expect(port.slow(1)).resolves.toBe('after 1');
    await expect(port.never()).rejects.toMatchObject({ code: 'CALL_TIMEOUT', retryable: true, message: 'store.never did not answer within 30 ms (its outcome is unknown)' });
    expect(port.count()).toBe(2); // a plain method (no promise) is called as it is
    expect(port.answer).toBe('field');
  });

  test('a late answer, or a late failure, is dropped (no unhandled rejection)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const port = withDeadlines(new Port(), 10, 'store');
      await expect(port.slow(40, true)).rejects.toMatchObject({ code: 'CALL_TIMEOUT' });
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('exempt methods have no deadline; a method replaced on the port later is the one called', async () => {
    const target = new Port();
    const port = withDeadlines(target, 20, 'store', { exempt: ['exempted'] });
    await expect(port.exempted()).resolves.toBe('exempt');
    target.slow = () => Promise.resolve('replaced');
    await expect(port.slow(1)).resolves.toBe('replaced');
  });

  test('a deadline hit doubles for the next calls of that method (a retry may queue behind the call given up on), and one answer in time resets it', async () => {
    const port = withDeadlines(new Port(), 20, 'store', { extraMs: { slow: (ms) => (ms === 45 ? 5 : 0) } });
    await expect(port.slow(30)).rejects.toMatchObject({ message: 'store.slow did not answer within 20 ms (its outcome is unknown)' });
    await expect(port.never()).rejects.toMatchObject({ message: 'store.never did not answer within 20 ms (its outcome is unknown)' }); // per method
    await expect(port.slow(30)).resolves.toBe('after 30'); // 40 ms now
    await expect(port.slow(45)).rejects.toMatchObject({ message: 'store.slow did not answer within 25 ms (its outcome is unknown)' }); // back to the base, plus its extra
    await expect(port.slow(45)).resolves.toBe('after 45'); // 50 ms
  });
});
