import { MemoflowError, type ErrorLocation, type Json } from '@memoflow/engine';

/**
 * How deeply arrays and objects may nest in a value that crosses JSON. Every layer below walks
 * values recursively (canonical hashing, JSON.stringify, structuredClone, the stores), and in Node
 * those overflow the stack somewhere between 1,000 and 5,000 levels, as a bare `RangeError`. 1,000
 * leaves them headroom and is far beyond any real data (a 20,000-deep value is a bug or an attack).
 */
export const MAX_JSON_DEPTH = 1000;

/**
 * Checks that a value survives JSON exactly (what crosses queues and the catalog), returning it as
 * Json. Rejects what JSON would silently change: undefined inside arrays, holes in sparse arrays,
 * NaN, Infinity, Dates, Maps, class instances, functions; and what it cannot hold or keep: cycles,
 * nesting deeper than MAX_JSON_DEPTH, and `__proto__` keys (see checkRawValue for why refused).
 * Errors are MemoflowErrors naming the field and the path inside it.
 */
export function toJsonValue(value: unknown, where: ErrorLocation, path = ''): Json {
  return convert(value, where, path, 0, new Set());
}

function convert(value: unknown, where: ErrorLocation, path: string, depth: number, ancestors: Set<object>): Json {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    // JSON has no -0: stored and read back it is 0, so it is 0 from the start (a fresh run's result
    // and the same run read from the store, or a cache hit, would otherwise differ).
    if (Object.is(value, -0)) return 0;
    if (Number.isFinite(value)) return value;
    throw notJson(`${String(value)} is not a JSON number`, where, path);
  }
  if (typeof value !== 'object') throw notJson(`a ${typeof value} is not JSON`, where, path);
  enter(value, where, path, depth, ancestors);
  try {
    if (Array.isArray(value)) {
      const items: Json[] = new Array<Json>(value.length);
      for (let i = 0; i < value.length; i++) {
        // `map` would keep the hole, and JSON would turn it into null: the stored value would differ.
        if (!(i in value)) throw hole(where, `${path}[${i}]`, i);
        items[i] = convert(value[i], where, `${path}[${i}]`, depth + 1, ancestors);
      }
      return items;
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      throw notJson(`a ${typeof name === 'string' && name !== '' ? name : 'non-plain object'} is not plain JSON (use plain objects, arrays, strings, numbers, booleans, null)`, where, path);
    }
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue; // canonical: no undefined
      const at = path === '' ? key : `${path}.${key}`;
      if (key === '__proto__') throw protoKey(where, at);
      out[key] = convert(item, where, at, depth + 1, ancestors);
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

/**
 * Checks a value as it was handed over, before a zod schema parses it: no cycle, no nesting deeper
 * than MAX_JSON_DEPTH, no `__proto__` key, no hole in an array (zod reads a hole as undefined). Only arrays and plain objects are walked (what else is
 * in there is for the schema and `toJsonValue` to judge); `skip` leaves values out (references in
 * a workflow body).
 *
 * Before parsing, because parsing loses or breaks on them: zod drops `__proto__` keys from
 * records and objects without a word (and `out[key] = ...` would set a prototype instead), and a
 * recursive schema recurses into a cycle until the stack overflows.
 *
 * `__proto__` keys are refused rather than kept: zod cannot keep them through `z.object` or
 * `z.record`, and a task body could not read one anyway (`value.__proto__` is the prototype), so
 * keeping them only where `z.any()` happens to would make a value's fate depend on its schema.
 */
export function checkRawValue(value: unknown, where: ErrorLocation, path = '', skip?: (value: unknown) => boolean): void {
  walkRaw(value, where, path, 0, new Set(), skip);
}

function walkRaw(value: unknown, where: ErrorLocation, path: string, depth: number, ancestors: Set<object>, skip: ((value: unknown) => boolean) | undefined): void {
  if (typeof value !== 'object' || value === null || skip?.(value) === true) return;
  const isArray = Array.isArray(value);
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!isArray && proto !== Object.prototype && proto !== null) return;
  enter(value, where, path, depth, ancestors);
  try {
    if (isArray) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) throw hole(where, `${path}[${i}]`, i);
        walkRaw(value[i] as unknown, where, `${path}[${i}]`, depth + 1, ancestors, skip);
      }
      return;
    }
    for (const key of Object.keys(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (key === '__proto__') throw protoKey(where, at);
      walkRaw((value as { [key: string]: unknown })[key], where, at, depth + 1, ancestors, skip);
    }
  } finally {
    ancestors.delete(value);
  }
}

/** Pushes `value` on the path being walked, refusing a cycle (a value inside itself) and excess depth. */
function enter(value: object, where: ErrorLocation, path: string, depth: number, ancestors: Set<object>): void {
  if (ancestors.has(value)) {
    throw notJson('the value is cyclic (it contains itself here); JSON cannot hold a cycle', where, path);
  }
  if (depth >= MAX_JSON_DEPTH) {
    throw notJson(`the value nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects (the limit for values that cross JSON)`, where, path);
  }
  ancestors.add(value);
}

function hole(where: ErrorLocation, path: string, index: number): MemoflowError {
  return notJson(`the array has a hole at index ${index} (a sparse array); JSON has no holes: fill it (e.g. with null)`, where, path);
}

function protoKey(where: ErrorLocation, path: string): MemoflowError {
  return notJson(
    "a key named '__proto__' cannot be kept: schemas drop it and JavaScript reads it as the prototype; rename the key",
    where,
    path,
  );
}

function notJson(message: string, where: ErrorLocation, fullPath: string): MemoflowError {
  // A path 1,000 levels deep is no help to read: keep its start and end.
  const path = fullPath.length > 200 ? `${fullPath.slice(0, 80)}...${fullPath.slice(-80)}` : fullPath;
  const field = where.field === undefined ? path : path === '' ? where.field : `${where.field}${path.startsWith('[') ? '' : '.'}${path}`;
  return new MemoflowError('INPUT_SCHEMA_MISMATCH', message, { ...where, ...(field === '' ? {} : { field }) });
}
