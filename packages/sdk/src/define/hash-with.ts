import type { z } from 'zod';

/** The content-hash function a schema declares (Flyte's HashMethod). */
export type HashFunction<T> = (value: T) => string;

const hashFunctions = new WeakMap<z.ZodType, HashFunction<never>>();

/**
 * Declares that values of `schema` are identified by `hash(value)`: a cache key uses that hash
 * instead of encoding the value, and the cascade rule treats such outputs as content-addressed
 * (a rerun upstream that produced the same hash does not force downstream nodes to rerun).
 *
 *   const Frame = hashWith(z.array(Row), (rows) => sha256(JSON.stringify(rows)));
 */
export function hashWith<S extends z.ZodType>(schema: S, hash: HashFunction<z.output<S>>): S {
  hashFunctions.set(schema, hash);
  return schema;
}

export function hashFunctionOf(schema: z.ZodType | undefined): HashFunction<unknown> | undefined {
  return schema === undefined ? undefined : (hashFunctions.get(schema) as HashFunction<unknown> | undefined);
}

/** Runs a declared hash function, insisting on a non-empty string (it becomes part of cache keys). */
export function computeHash(schema: z.ZodType | undefined, value: unknown, what: string): string | undefined {
  const hash = hashFunctionOf(schema);
  if (hash === undefined) return undefined;
  const result = hash(value);
  if (typeof result !== 'string' || result.length === 0) {
    throw new TypeError(`the hashWith function of ${what} must return a non-empty string, got ${JSON.stringify(result)}`);
  }
  return result;
}
