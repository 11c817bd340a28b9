/**
 * Settings shared by the fuzz suite (issue 8, item 16). One fixed seed, so CI runs the same cases
 * every time and a failure reproduces; fast-check prints the seed and the path of a failing case
 * (`FUZZ_SEED=<seed>` replays it, with `{ path }` to go straight to the shrunk case). `FUZZ_SCALE=10`
 * runs ten times as many cases of each property, to look further than CI does.
 */
import type { Parameters } from 'fast-check';

export const FUZZ_SEED = readNumber('FUZZ_SEED', 20_250_816);
const FUZZ_SCALE = readNumber('FUZZ_SCALE', 1);

function readNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * fast-check parameters for a property of `numRuns` cases. `timeout` fails a case that runs longer
 * (a hang is a failure, not a slow test). Shrinking re-runs cases, so a failing property costs more
 * than a passing one; that is the price of a small counterexample.
 */
export function fuzzParameters<T>(numRuns: number, extra: Parameters<T> = {}): Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: Math.max(1, Math.round(numRuns * FUZZ_SCALE)), ...extra };
}

/** Rejects when `promise` has not settled after `ms`: a hang becomes a failure naming what hung. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms (a hang)`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
