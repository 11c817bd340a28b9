import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongTimeout } from './long-timeout.js';

describe('setLongTimeout', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it.each([
    ['25d', 25 * 86_400_000],
    ['4w', 4 * 604_800_000],
    ['1e12 ms', 1e12],
    ['just over 2^31-1', MAX_TIMER_MS + 1],
    ['a short one', 50],
  ])('%s fires after its whole delay, not after 1 ms', (_name, delay) => {
    const fired = vi.fn();
    setLongTimeout(fired, delay);
    vi.advanceTimersByTime(1);
    if (delay > 1) expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(delay - 2);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(MAX_TIMER_MS * 2);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('cancels whichever link of the chain is pending', () => {
    const fired = vi.fn();
    const cancel = setLongTimeout(fired, MAX_TIMER_MS * 3);
    vi.advanceTimersByTime(MAX_TIMER_MS + 10);
    cancel();
    vi.advanceTimersByTime(MAX_TIMER_MS * 3);
    expect(fired).not.toHaveBeenCalled();
  });
});
