import { MemoflowError, type ErrorLocation, type Json } from '@memoflow/engine';

/**
 * Checks that a value survives JSON exactly (what crosses queues and the catalog), returning it as
 * Json. Rejects what JSON would silently change: undefined inside arrays, NaN, Infinity, Dates,
 * Maps, class instances, functions.
 */
export function toJsonValue(value: unknown, where: ErrorLocation, path = ''): Json {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    throw notJson(`${String(value)} is not a JSON number`, where, path);
  }
  if (Array.isArray(value)) return value.map((item, i) => toJsonValue(item, where, `${path}[${i}]`));
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      throw notJson(`a ${(value as object).constructor.name} is not plain JSON (use plain objects, arrays, strings, numbers, booleans, null)`, where, path);
    }
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue; // canonical: no undefined
      out[key] = toJsonValue(item, where, path === '' ? key : `${path}.${key}`);
    }
    return out;
  }
  throw notJson(`a ${typeof value} is not JSON`, where, path);
}

function notJson(message: string, where: ErrorLocation, path: string): MemoflowError {
  const field = where.field === undefined ? path : path === '' ? where.field : `${where.field}.${path}`;
  return new MemoflowError('INPUT_SCHEMA_MISMATCH', message, { ...where, ...(field === '' ? {} : { field }) });
}
