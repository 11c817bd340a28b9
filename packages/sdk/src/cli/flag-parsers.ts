import { InvalidArgumentError } from 'commander';

/**
 * Strict parsers for numeric flags. `Number.parseInt` reads `abc` as NaN (then silently ignored),
 * `3x` as 3 and `-5` as -5; these accept only a plain integer in range and otherwise make commander
 * fail with one line naming the flag ("option '--concurrency <n>' argument 'abc' is invalid. ...",
 * exit 2).
 */
export function integerFlag(options: { min: number; max?: number; what?: string }): (value: string) => number {
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  const what = options.what ?? (options.min === 1 ? 'a positive integer' : `an integer of at least ${options.min}`);
  return (value: string) => {
    const trimmed = value.trim();
    const parsed = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < options.min || parsed > max) {
      throw new InvalidArgumentError(`expected ${what}${options.max === undefined ? '' : ` up to ${max}`}.`);
    }
    return parsed;
  };
}

export const positiveInteger = integerFlag({ min: 1 });
/** Milliseconds for timers: Node's setTimeout overflows past 2^31-1 ms (about 24.8 days). */
export const timerMilliseconds = integerFlag({ min: 1, max: 2 ** 31 - 1, what: 'a positive number of milliseconds' });

/** `--resume-from <run>:<node>`: run ids never contain ':', so the first one splits (node ids may not contain it either). */
export function resumePoint(value: string): { run: string; node: string } {
  const at = value.indexOf(':');
  const run = at === -1 ? '' : value.slice(0, at).trim();
  const node = at === -1 ? '' : value.slice(at + 1).trim();
  if (run === '' || node === '') throw new InvalidArgumentError('expected <run>:<node>, e.g. r1abc2def3:clean.');
  return { run, node };
}
