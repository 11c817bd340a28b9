import { MemoflowError, describeGiven, type ErrorLocation } from '../errors.js';

const UNITS: { readonly [unit: string]: number } = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;

/**
 * Parses `'90s'`, `'12h'`, `'28d'` (or a number of milliseconds) into milliseconds.
 * Any positive finite length is valid, including lengths past Node's timer limit (2^31-1 ms, about
 * 24.8 days: `'25d'`, `'4w'`, `1e12`): TTLs are compared with timestamps, and whatever waits for a
 * duration must chain timers (the worker's `setLongTimeout`), since `setTimeout` fires such a
 * delay after 1 ms.
 * Anything else (a value of another type from a JavaScript caller, a string of 400 digits that
 * reads as Infinity) is an INVALID_DURATION naming `where`, never a TypeError.
 */
export function parseDuration(value: string | number, where: ErrorLocation): number {
  const given: unknown = value;
  if (typeof given === 'number') {
    if (Number.isFinite(given) && given > 0) return given;
  } else if (typeof given === 'string') {
    const match = PATTERN.exec(given.trim());
    const unit = match?.[2];
    if (match !== null && unit !== undefined) {
      const ms = Number(match[1]) * (UNITS[unit] ?? Number.NaN);
      if (Number.isFinite(ms) && ms > 0) return ms;
    }
  }
  throw new MemoflowError('INVALID_DURATION', `${describeGiven(given)} is not a duration: use a positive number with a unit (ms, s, m, h, d, w), e.g. '90s', '12h', '28d'`, where);
}
