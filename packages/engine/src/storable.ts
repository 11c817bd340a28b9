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
 * value with an explicit stack, so a deeply nested value cannot overflow the call stack; counts its
 * encoded size as it goes (an estimate within a few bytes of JSON.stringify's, never below it for
 * the strings that dominate real values).
 */
export function storageProblem(value: Json, root = 'value', limitBytes = MAX_STORED_VALUE_BYTES): string | null {
  let bytes = 0;
  const stack: { value: Json; path: string }[] = [{ value, path: root }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop() as { value: Json; path: string };
    if (typeof current === 'string') {
      const problem = stringProblem(current);
      if (problem !== null) return `${path} ${problem}`;
      bytes += current.length + 2;
    } else if (typeof current === 'number') {
      if (!Number.isFinite(current)) return `${path} is ${String(current)}, which JSON cannot encode`;
      bytes += 8;
    } else if (current === null || typeof current === 'boolean') {
      bytes += 5;
    } else if (Array.isArray(current)) {
      bytes += 2 + current.length;
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i] as Json, path: `${path}[${i}]` });
    } else if (typeof current === 'object') {
      const keys = Object.keys(current);
      bytes += 2 + keys.length;
      for (const key of keys.reverse()) {
        const problem = stringProblem(key);
        if (problem !== null) return `the key ${JSON.stringify(key).slice(0, 40)} of ${path} ${problem}`;
        bytes += key.length + 3;
        stack.push({ value: current[key] as Json, path: /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]` });
      }
    } else {
      return `${path} is a ${typeof current}, which JSON cannot encode`;
    }
    if (bytes > limitBytes) return `${root} is larger than the ${Math.round(limitBytes / (1024 * 1024))} MiB a stored value may be (return a reference to the data, e.g. a path or URL, instead of the data)`;
  }
  return null;
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
