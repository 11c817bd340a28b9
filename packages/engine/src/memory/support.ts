import { MemoflowError } from '../errors.js';
import { isUnstorableText } from '../storable.js';

/**
 * Scripted failures for the in-memory adapters: `failNext(method, error)` makes the next call of
 * `method` reject with `error` (queued: call it twice to fail the next two calls). Tests use it to
 * drive LOOKUP_FAILURE / PUT_FAILURE and lost saves without a broken database.
 */
export class FailurePlan<M extends string> {
  readonly #queued = new Map<M, Error[]>();

  add(method: M, error: Error): void {
    const queue = this.#queued.get(method) ?? [];
    queue.push(error);
    this.#queued.set(method, queue);
  }

  /** Throws the next scripted error for `method`, if any. */
  check(method: M): void {
    const error = this.#queued.get(method)?.shift();
    if (error !== undefined) throw error;
  }

  clear(): void {
    this.#queued.clear();
  }
}

/**
 * Deep copy of a JSON value with the store's semantics (what the real stores' `json` columns give
 * back): object key order is kept, as JSON.stringify and JSON.parse keep it. It refuses strings
 * (values or keys) holding U+0000 or a lone surrogate: the real stores reject them, so the fake
 * does too.
 */
export function copyJson<T>(value: T): T {
  const text = JSON.stringify(value, (key: string, item: unknown) => {
    if (isUnstorableText(key) || (typeof item === 'string' && isUnstorableText(item))) {
      throw new MemoflowError('CATALOG_ERROR', 'value not storable: a string holds U+0000 or a lone surrogate');
    }
    return item;
  });
  return JSON.parse(text) as T;
}

export function copyDate(date: Date): Date;
export function copyDate(date: Date | null): Date | null;
export function copyDate(date: Date | null): Date | null {
  return date === null ? null : new Date(date.getTime());
}

/** Code-unit order, as ORDER BY ... COLLATE "C" gives for the keys and ids we store. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
