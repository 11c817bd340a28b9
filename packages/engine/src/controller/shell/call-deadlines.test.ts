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
    await expect(port.never()).rejects.toMatchObject({ code: 'CALL_TIMEOUT', retryable: true, message: 'store.never did not answer within 30 ms (its outcome is unknown; tried again)' });
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
    const port = withDeadlines(target, 20, 'store', ['exempted']);
    await expect(port.exempted()).resolves.toBe('exempt');
    target.slow = () => Promise.resolve('replaced');
    await expect(port.slow(1)).resolves.toBe('replaced');
  });
});
