import type { ErrorInfo } from './errors.js';
import type { Json } from './json.js';

/**
 * What every store memoflow writes to can keep. Postgres `json` rejects U+0000 (`\u0000` cannot be
 * converted to text) and strings holding a lone UTF-16 surrogate (half an emoji, from slicing a
 * string by index) are not valid Unicode; a value past the size limit would make every save of its
 * run fail. Any of these in a task's output or error used to make each save of the run fail, so the
 * round was retried forever and the run never ended: they are screened before a save, and the node
 * fails instead with a clear error (a failure's strings are repaired instead of refused, so the
 * failure itself is always recorded).
 */

/** The largest output the engine stores inline: 64 MiB of JSON text (Postgres' limit is 1 GiB per value, but a run's save must also fit in memory). */
export const MAX_STORED_VALUE_BYTES = 64 * 1024 * 1024;

// A lone surrogate: a high one not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether a string holds what no store keeps (U+0000, a lone surrogate). */
export function isUnstorableText(text: string): boolean {
  return text.includes('\u0000') || LONE_SURROGATE.test(text);
}

/** Why a string cannot be stored, or null. */
export function stringProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'contains U+0000 (a NUL character), which Postgres cannot store';
  if (LONE_SURROGATE.test(text)) return 'contains a lone UTF-16 surrogate (a string cut inside a character, e.g. an emoji sliced by index)';
  return null;
}

/**
 * Why `value` cannot be stored, naming where (`output.rows[3].name`), or null when it can. Walks the
 * value depth first with an explicit stack of the containers it is inside, so a deeply nested value
 * cannot overflow the call stack, and builds the path only for the problem it reports (a path per
 * value made a 100,000-node spec's check allocate millions of strings). Counts the encoded size as
 * it goes (an estimate within a few bytes of JSON.stringify's, never below it for the strings that
 * dominate real values).
 */
export function storageProblem(value: Json, root = 'value', limitBytes = MAX_STORED_VALUE_BYTES): string | null {
  let bytes = 0;
  const open: OpenContainer[] = [];
  let current: Json = value;
  for (;;) {
    if (typeof current === 'string') {
      const problem = stringProblem(current);
      if (problem !== null) return `${pathOf(open, root)} ${problem}`;
      bytes += current.length + 2;
    } else if (typeof current === 'number') {
      if (!Number.isFinite(current)) return `${pathOf(open, root)} is ${String(current)}, which JSON cannot encode`;
      bytes += 8;
    } else if (current === null || typeof current === 'boolean') {
      bytes += 5;
    } else if (Array.isArray(current)) {
      bytes += 2 + current.length;
      open.push({ items: current, keys: null, next: 0 });
    } else if (typeof current === 'object') {
      const keys = Object.keys(current);
      bytes += 2 + keys.length;
      // Last key first, as the walk always checked them (so the key reported is the same one).
      for (let k = keys.length - 1; k >= 0; k--) {
        const key = keys[k] as string;
        const problem = stringProblem(key);
        if (problem !== null) return `the key ${JSON.stringify(key).slice(0, 40)} of ${pathOf(open, root)} ${problem}`;
        bytes += key.length + 3;
      }
      open.push({ items: current, keys, next: 0 });
    } else {
      return `${pathOf(open, root)} is a ${typeof current}, which JSON cannot encode`;
    }
    if (bytes > limitBytes) return `${root} is larger than the ${Math.round(limitBytes / (1024 * 1024))} MiB a stored value may be (return a reference to the data, e.g. a path or URL, instead of the data)`;
    // The next value: the next child of the innermost container that has one left (a child may
    // itself be undefined, a hole or an undefined property, which is reported, not skipped).
    for (;;) {
      const top = open[open.length - 1];
      if (top === undefined) return null;
      const size = top.keys === null ? (top.items as readonly Json[]).length : top.keys.length;
      if (top.next < size) {
        const at = top.next++;
        current = (top.keys === null ? (top.items as readonly Json[])[at] : (top.items as { readonly [key: string]: Json })[top.keys[at] as string]) as Json;
        break;
      }
      open.pop();
    }
  }
}

/** A container the walk is inside: its items (or its keys, for an object) and the next one to visit. */
interface OpenContainer {
  items: readonly Json[] | { readonly [key: string]: Json };
  keys: string[] | null;
  next: number;
}

/** The path of the value being visited: `root`, then each open container's child being visited (the one before `next`). */
function pathOf(open: readonly OpenContainer[], root: string): string {
  let path = root;
  for (const container of open) {
    const at = container.next - 1;
    if (container.keys === null) {
      path += `[${at}]`;
    } else {
      const key = container.keys[at] as string;
      path += /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    }
  }
  return path;
}

/** A string with U+0000 and lone surrogates replaced by U+FFFD, so an error can always be recorded. */
export function repairString(text: string): string {
  if (stringProblem(text) === null) return text;
  return text.replaceAll('\u0000', '\uFFFD').replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD');
}

const MAX_ERROR_TEXT = 16 * 1024;

/** An ErrorInfo that every store can keep: its strings repaired and cut to 16 KiB each. */
export function storableError(error: ErrorInfo): ErrorInfo {
  const clean = (text: string): string => {
    const repaired = repairString(text);
    return repaired.length > MAX_ERROR_TEXT ? `${repaired.slice(0, MAX_ERROR_TEXT)}… (${repaired.length - MAX_ERROR_TEXT} more characters)` : repaired;
  };
  const info: ErrorInfo = { name: clean(String(error.name)), message: clean(String(error.message)), retryable: error.retryable === true };
  if (typeof error.code === 'string') info.code = clean(error.code);
  if (typeof error.stack === 'string') info.stack = clean(error.stack);
  return info;
}
