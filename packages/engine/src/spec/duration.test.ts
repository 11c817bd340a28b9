import { describe, expect, test } from 'vitest';
import { MemoflowError } from '../errors.js';
import { parseDuration } from './duration.js';
import { DEFAULT_CACHE_TTL_MS } from './workflow-spec.js';

const where = { workflow: 'wf', node: 'n', field: 'cache.ttl' };

describe('parseDuration', () => {
  test.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['5m', 300_000],
    ['12h', 43_200_000],
    ['28d', DEFAULT_CACHE_TTL_MS],
    ['2w', 1_209_600_000],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    [' 10 m ', 600_000],
  ] as const)('%j is %d ms', (text, ms) => {
    expect(parseDuration(text, where)).toBe(ms);
  });

  test('a positive number is milliseconds', () => {
    expect(parseDuration(1500, where)).toBe(1500);
    expect(parseDuration(0.5, where)).toBe(0.5);
  });

  test.each(['', '10', '0s', '-1s', '10y', '1e3s', 's', '1 h 2 m', '10S', '5 min'])('%j is INVALID_DURATION', (text) => {
    expect(() => parseDuration(text, where)).toThrow(MemoflowError);
    try {
      parseDuration(text, where);
    } catch (error) {
      const e = error as MemoflowError;
      expect(e.code).toBe('INVALID_DURATION');
      expect(e.location).toEqual(where);
      expect(e.message).toContain("field 'cache.ttl'");
      expect(e.message).toContain(JSON.stringify(text));
    }
  });

  test.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY])('the number %d is INVALID_DURATION', (value) => {
    expect(() => parseDuration(value, where)).toThrow(expect.objectContaining({ code: 'INVALID_DURATION' }));
  });
});

describe('durations past the timer limit', () => {
  test("keep their full length ('25d', '4w', 1e12): timers that wait for them chain", () => {
    expect(parseDuration('25d', {})).toBe(25 * 86_400_000);
    expect(parseDuration('4w', {})).toBe(4 * 604_800_000);
    expect(parseDuration(1e12, {})).toBe(1e12);
    expect(parseDuration('25d', {})).toBeGreaterThan(2 ** 31 - 1);
  });
});
