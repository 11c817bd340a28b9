import type { z } from 'zod';
import { MemoflowError, describeGiven, toErrorInfo, type ErrorLocation } from '@memoflow/engine';

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

/**
 * Runs a declared hash function, insisting on a non-empty string (it becomes part of cache keys).
 * A hash function that throws or returns something else is a MemoflowError naming `where` (the
 * workflow, node and field whose value it hashed), never the TypeError it would otherwise be.
 */
export function computeHash(schema: z.ZodType | undefined, value: unknown, what: string, where: ErrorLocation): string | undefined {
  const hash = hashFunctionOf(schema);
  if (hash === undefined) return undefined;
  let result: unknown;
  try {
    result = hash(value);
  } catch (error) {
    const info = toErrorInfo(error);
    // Retried as the error itself would be (hashing may read a file); a wrong result is not.
    throw new MemoflowError('INVALID_SPEC', `the hashWith function of ${what} threw: ${info.name === 'Error' ? '' : `${info.name}: `}${info.message.slice(0, 300)}`, { ...where, cause: error, retryable: info.retryable });
  }
  if (typeof result !== 'string' || result.length === 0) {
    throw new MemoflowError('INVALID_SPEC', `the hashWith function of ${what} must return a non-empty string, got ${describeGiven(result)}`, where);
  }
  return result;
}
