/** A seeded source of chance for the chaos harness: the same seed makes the same choices. */
export interface Chance {
  /** In [0, 1). */
  next(): number;
  /** True with probability `p`. */
  odds(p: number): boolean;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: small, fast, and good enough to pick delays and faults. */
export function seeded(seed: number): Chance {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    odds: (p) => next() < p,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from nothing');
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
  };
}

/**
 * Waits a little: most often only a turn of the event loop, sometimes a few milliseconds, so calls
 * that the code under test starts together finish in an order the seed picks.
 */
export function pause(chance: Chance, maxMs = 3): Promise<void> {
  const roll = chance.next();
  if (roll < 0.4) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, Math.floor(roll * maxMs)));
}
