import { parse, type Options } from 'acorn';
import type { Node } from 'estree';
import { analyze } from 'periscopic';

/**
 * What a function body refers to outside itself, found by parsing its source text.
 *
 * Why: a version derived from `body.toString()` (`cache: true` without `cache.version`) sees only
 * the body's text. What the body closes over (a factory's argument, a module-level constant, an
 * imported helper whose code changes) is invisible to it, and JavaScript cannot read closure
 * values, so two closures of one factory (`make(0.2)`, `make(0.3)`) would share cache entries. A
 * body that refers to anything but standard globals therefore cannot have its version derived.
 */
export type FreeVariables =
  | { kind: 'closed'; names: string[] }
  /** The source could not be parsed (a native or bound function, syntax acorn does not know). */
  | { kind: 'unparsable'; reason: string };

/**
 * Globals a body may use without closing over anything: ECMAScript's and the standard web/Node
 * globals, fixed here rather than read from `globalThis` (a value a program puts on `globalThis`
 * is state outside the body like any other). `eval` is left out: a direct eval reads the closure.
 */
const STANDARD_GLOBALS = new Set([
  // ECMAScript
  'AggregateError', 'Array', 'ArrayBuffer', 'Atomics', 'BigInt', 'BigInt64Array', 'BigUint64Array', 'Boolean', 'DataView', 'Date',
  'Error', 'EvalError', 'FinalizationRegistry', 'Float16Array', 'Float32Array', 'Float64Array', 'Function', 'Infinity', 'Int16Array',
  'Int32Array', 'Int8Array', 'Intl', 'Iterator', 'JSON', 'Map', 'Math', 'NaN', 'Number', 'Object', 'Promise', 'Proxy', 'RangeError',
  'ReferenceError', 'Reflect', 'RegExp', 'Set', 'SharedArrayBuffer', 'String', 'Symbol', 'SyntaxError', 'TypeError', 'URIError',
  'Uint16Array', 'Uint32Array', 'Uint8Array', 'Uint8ClampedArray', 'WeakMap', 'WeakRef', 'WeakSet', 'WebAssembly', 'decodeURI',
  'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'globalThis', 'isFinite', 'isNaN', 'parseFloat', 'parseInt',
  'undefined', 'unescape',
  // Web platform and Node globals
  'AbortController', 'AbortSignal', 'Blob', 'BroadcastChannel', 'Buffer', 'ByteLengthQueuingStrategy', 'CompressionStream',
  'CountQueuingStrategy', 'Crypto', 'CryptoKey', 'CustomEvent', 'DOMException', 'DecompressionStream', 'Event', 'EventTarget', 'File',
  'FormData', 'Headers', 'MessageChannel', 'MessageEvent', 'MessagePort', 'Performance', 'PerformanceEntry', 'PerformanceMark',
  'PerformanceMeasure', 'PerformanceObserver', 'PerformanceObserverEntryList', 'PerformanceResourceTiming', 'ReadableByteStreamController',
  'ReadableStream', 'ReadableStreamBYOBReader', 'ReadableStreamBYOBRequest', 'ReadableStreamDefaultController',
  'ReadableStreamDefaultReader', 'Request', 'Response', 'SubtleCrypto', 'TextDecoder', 'TextDecoderStream', 'TextEncoder',
  'TextEncoderStream', 'TransformStream', 'TransformStreamDefaultController', 'URL', 'URLSearchParams', 'WebSocket', 'WritableStream',
  'WritableStreamDefaultController', 'WritableStreamDefaultWriter', 'atob', 'btoa', 'clearImmediate', 'clearInterval', 'clearTimeout',
  'console', 'crypto', 'fetch', 'global', 'navigator', 'performance', 'process', 'queueMicrotask', 'setImmediate', 'setInterval',
  'setTimeout', 'structuredClone',
]);

/**
 * Identifiers tooling injects into function sources that stand for no user value:
 * - `__name(fn, "name")`: esbuild's `keepNames` (tsx, vite) wraps nested named functions in it;
 * - `__vite_ssr_import_meta__` and `__vite_ssr_dynamic_import__`: vitest's SSR transform writes
 *   `import.meta` and `import()` as these; untransformed, neither is an identifier at all.
 * Not listed on purpose: vitest's `__vite_ssr_import_N__` (and `__vi_import_N__`) are *imports*
 * (`helper` becomes `__vite_ssr_import_1__.helper`), and an imported binding is a free variable like
 * any other (the imported code is not in the body's text), so it is refused, as it is untransformed.
 */
const TOOLING_IDENTIFIERS = new Set(['__name', '__vite_ssr_import_meta__', '__vite_ssr_dynamic_import__']);

const PARSE_OPTIONS: Options = { ecmaVersion: 'latest', sourceType: 'module' };

/** The identifiers a function's source refers to that it neither declares nor gets as a standard global. */
export function freeVariables(fn: (...args: never[]) => unknown): FreeVariables {
  const source = Function.prototype.toString.call(fn);
  const program = parseFunction(source);
  if (program === undefined) return { kind: 'unparsable', reason: `its source cannot be parsed (${summarise(source)})` };
  const { globals } = analyze(program);
  // `arguments` is a function's own, except in an arrow (where it would be the enclosing one's).
  const isArrow = firstExpression(program)?.type === 'ArrowFunctionExpression';
  const names = [...globals.keys()].filter(
    (name) => !STANDARD_GLOBALS.has(name) && !TOOLING_IDENTIFIERS.has(name) && !(name === 'arguments' && !isArrow),
  );
  return { kind: 'closed', names: [...new Set(names)].sort() };
}

/** A function expression or arrow parses in parentheses; method shorthand (`m() {}`) in an object literal. */
function parseFunction(source: string): Node | undefined {
  for (const wrapped of [`(${source}\n)`, `({${source}\n})`]) {
    try {
      return parse(wrapped, PARSE_OPTIONS) as unknown as Node;
    } catch {
      // try the next form
    }
  }
  return undefined;
}

function firstExpression(program: Node): Node | undefined {
  if (program.type !== 'Program') return undefined;
  const statement = program.body[0];
  return statement?.type === 'ExpressionStatement' ? statement.expression : undefined;
}

function summarise(source: string): string {
  const flat = source.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}
