/**
 * Error codes raised by the engine. String codes (never numbers) so logs, the CLI and tests can
 * match on them. `retryable` tells a caller whether the same call may succeed later.
 */
export type EngineErrorCode =
  | 'INVALID_SPEC'
  | 'CYCLE_IN_WORKFLOW'
  | 'UNKNOWN_NODE_REFERENCE'
  | 'UNBOUND_INPUT'
  | 'UNKNOWN_INPUT'
  | 'TYPE_MISMATCH'
  | 'INVALID_CACHE_VERSION'
  | 'INVALID_IGNORE_INPUTS'
  | 'INVALID_DURATION'
  | 'DUPLICATE_TASK_NAME'
  | 'UNKNOWN_TASK'
  | 'UNKNOWN_WORKFLOW'
  | 'INPUT_SCHEMA_MISMATCH'
  | 'MISSING_INPUT'
  | 'OUTPUT_SCHEMA_MISMATCH'
  | 'RUN_NOT_FOUND'
  | 'NODE_NOT_FOUND'
  | 'RUN_FAILED'
  /** The run was cancelled (`run.cancel()`, `memoflow runs cancel`): what `run.result()` rejects with. */
  | 'RUN_CANCELLED'
  | 'STALE_STATE'
  // A run another controller holds the lease of: its results go to that controller (retryable).
  | 'RUN_LEASED'
  // A result of an attempt whose dispatch the run's state does not record yet (its dispatch went
  // out beside a save that did not land): handed over again later (retryable).
  | 'RESULT_EARLY'
  | 'ILLEGAL_TRANSITION'
  | 'TASK_TIMEOUT'
  | 'CATALOG_ERROR'
  // A run's stored rows contradict each other (an input refers to an output the store does not hold).
  | 'RUN_STORE_CORRUPT'
  | 'OUTPUT_NOT_STORABLE'
  | 'NOT_SUPPORTED'
  // Resume and retry: the earlier run is of another workflow, or has not finished yet.
  | 'WORKFLOW_MISMATCH'
  | 'RUN_NOT_FINISHED'
  // Set up and operation: a bad flag or setting, a flows file that does not load, a database or
  // queue that cannot be reached, a data directory another process holds.
  | 'INVALID_OPTION'
  | 'MODULE_LOAD_FAILED'
  | 'CONNECTION_FAILED'
  | 'DATA_DIR_LOCKED'
  // A call of the run store or the catalog that did not answer within the controller's
  // callTimeoutMs (a connection that died without a word): its outcome is unknown (retryable).
  | 'CALL_TIMEOUT';

/** Where a bad-input error points: which workflow, node and field. */
export interface ErrorLocation {
  workflow?: string;
  node?: string;
  field?: string;
}

export interface MemoflowErrorOptions extends ErrorLocation {
  retryable?: boolean;
  cause?: unknown;
  /** For a retryable error: when trying again makes sense (RUN_LEASED: when the other controller's lease ends). */
  retryAfterMs?: number;
}

/** The engine's base error. Every package has one like it; all carry a string `code`. */
export class MemoflowError extends Error {
  readonly code: EngineErrorCode;
  readonly retryable: boolean;
  readonly location: ErrorLocation;
  readonly retryAfterMs?: number;

  constructor(code: EngineErrorCode, message: string, options: MemoflowErrorOptions = {}) {
    super(withLocation(message, options), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MemoflowError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    const location: ErrorLocation = {};
    if (options.workflow !== undefined) location.workflow = options.workflow;
    if (options.node !== undefined) location.node = options.node;
    if (options.field !== undefined) location.field = options.field;
    this.location = location;
  }
}

function withLocation(message: string, where: ErrorLocation): string {
  const parts: string[] = [];
  if (where.workflow !== undefined) parts.push(`workflow '${where.workflow}'`);
  if (where.node !== undefined) parts.push(`node '${where.node}'`);
  if (where.field !== undefined) parts.push(`field '${where.field}'`);
  return parts.length === 0 ? message : `${parts.join(', ')}: ${message}`;
}

/**
 * Thrown by user code to say "retrying will not help": the worker fails the node at once,
 * whatever `retries` says. Recognised by the `nonRetryable` marker, not by `instanceof`, so an
 * error from another copy of the package (a user's bundle) is classified the same way.
 */
export class NonRetryableError extends Error {
  readonly nonRetryable = true as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

/** The serialisable form of a failure, as stored on a node execution and carried by queues. */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  retryable: boolean;
  stack?: string;
}

/** Longest message kept from a thrown value (a thrown 10 MB string must not become a 10 MB record). */
const MAX_MESSAGE_LENGTH = 10_000;
const MAX_STACK_LENGTH = 20_000;

/**
 * Classifies any thrown value. The worker is the one place that calls this on user errors.
 * Total: it never throws, whatever was thrown (a BigInt, a cyclic object, an object whose `toJSON`
 * throws, an Error whose `message` or `name` getter throws, a revoked Proxy), so a failed attempt
 * always becomes a failed result and its retries are used. Every field is a plain string (or
 * boolean), however the value was made.
 */
export function toErrorInfo(thrown: unknown): ErrorInfo {
  try {
    if (isError(thrown)) {
      const marked = thrown as Error & { nonRetryable?: unknown; retryable?: unknown; code?: unknown };
      // User errors retry by default; NonRetryableError opts out; engine errors say for themselves.
      let retryable = true;
      if (read(() => marked.nonRetryable) === true) retryable = false;
      else if (thrown instanceof MemoflowError) retryable = read(() => thrown.retryable) !== false;
      const name = read(() => marked.name);
      const message = read(() => marked.message, UNREADABLE);
      const info: ErrorInfo = {
        name: typeof name === 'string' && name !== '' ? truncate(name, 200) : 'Error',
        // A message getter that throws leaves nothing to say but that: an empty message would make
        // the node's failure read "failed: " and name no cause.
        message: message === UNREADABLE ? 'an Error whose message cannot be read (its getter throws)' : typeof message === 'string' ? truncate(message, MAX_MESSAGE_LENGTH) : message === undefined ? '' : describeValue(message),
        retryable,
      };
      const code = read(() => marked.code);
      if (typeof code === 'string') info.code = truncate(code, 200);
      const stack = read(() => marked.stack);
      if (typeof stack === 'string') info.stack = truncate(stack, MAX_STACK_LENGTH);
      return info;
    }
    return { name: 'Error', message: describeValue(thrown), retryable: true };
  } catch {
    return { name: 'Error', message: 'a thrown value that cannot be inspected', retryable: true };
  }
}

function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false; // a Proxy whose getPrototypeOf trap throws
  }
}

const UNREADABLE = Symbol('unreadable');

/** A property read that may run a getter that throws: the throw becomes `undefined` (or `otherwise`). */
function read(get: () => unknown, otherwise?: unknown): unknown {
  try {
    return get();
  } catch {
    return otherwise;
  }
}

/**
 * A value a user gave (an option, a name, a setting) as a few words for an error message: `5`,
 * `"v 1"`, `null`, `a BigInt (5n)`, `an array`, `a Date`. Total: it never throws (no
 * `JSON.stringify`, which throws on a BigInt or a cycle), so describing a mistake cannot become
 * another mistake.
 */
export function describeGiven(value: unknown): string {
  try {
    switch (typeof value) {
      case 'string':
        return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
      case 'number':
        return Object.is(value, -0) ? '-0' : String(value);
      case 'boolean':
      case 'undefined':
        return String(value);
      case 'bigint':
        return `a BigInt (${value.toString()}n)`;
      case 'symbol':
        return 'a symbol';
      case 'function':
        return /^class[\s{]/.test(Function.prototype.toString.call(value)) ? 'a class' : 'a function';
      case 'object': {
        if (value === null) return 'null';
        if (Array.isArray(value)) return 'an array';
        const proto = Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null;
        if (proto === null || proto === Object.prototype) return 'an object';
        const name = proto.constructor?.name;
        return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
      }
    }
  } catch {
    // a Proxy whose traps throw
  }
  return 'a value that cannot be described';
}

/** A thrown non-Error as text: a string as is, JSON where it serialises, else its kind. */
function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return truncate(value, MAX_MESSAGE_LENGTH);
    case 'bigint':
      return `${value.toString()}n`;
    case 'symbol':
      return read(() => value.toString()) as string | undefined ?? 'a symbol';
    case 'undefined':
      return 'undefined';
    case 'function':
      return `a function${typeof read(() => value.name) === 'string' && value.name !== '' ? ` (${value.name})` : ''}`;
    case 'number':
    case 'boolean':
      return String(value);
    case 'object': {
      if (value === null) return 'null';
      try {
        const json = JSON.stringify(value);
        if (typeof json === 'string') return truncate(json, MAX_MESSAGE_LENGTH);
      } catch {
        // cyclic, a BigInt inside, a toJSON that throws: say what kind of object it was
      }
      const tag = read(() => Object.prototype.toString.call(value));
      return `an unserialisable value (${typeof tag === 'string' ? tag : 'object'})`;
    }
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/**
 * A database error's SQLSTATE, looked for on the error and along its `cause` chain (postgres.js
 * and PGlite expose `code`; drizzle and the catalog's readable errors wrap them). Five characters
 * only: a SQLSTATE, not a MemoflowError's code nor a socket's (ECONNREFUSED).
 */
export function sqlState(error: unknown): string | undefined {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 6; depth++) {
    if ('code' in current && typeof current.code === 'string' && /^[0-9A-Z]{5}$/.test(current.code)) return current.code;
    current = 'cause' in current ? current.cause : undefined;
  }
  return undefined;
}

/**
 * A save refused because another controller holds a live lease on the run (RunSaveRequest.owner):
 * retryable, once that lease may have ended; by then the saver has usually noticed it lost the run.
 */
export function fencedSaveError(runId: string, owner: string, ms: number): MemoflowError {
  const wait = Math.max(0, Math.round(ms));
  return new MemoflowError('RUN_LEASED', `run '${runId}' is leased to controller ${owner} for ${wait} ms more: this controller's save was refused`, { retryable: true, retryAfterMs: wait });
}
