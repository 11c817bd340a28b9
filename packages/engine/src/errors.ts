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
  | 'STALE_STATE'
  | 'ILLEGAL_TRANSITION'
  | 'TASK_TIMEOUT'
  | 'CATALOG_ERROR'
  | 'NOT_SUPPORTED'
  // Set up and operation: a bad flag or setting, a flows file that does not load, a database or
  // queue that cannot be reached, a data directory another process holds.
  | 'INVALID_OPTION'
  | 'MODULE_LOAD_FAILED'
  | 'CONNECTION_FAILED'
  | 'DATA_DIR_LOCKED';

/** Where a bad-input error points: which workflow, node and field. */
export interface ErrorLocation {
  workflow?: string;
  node?: string;
  field?: string;
}

export interface MemoflowErrorOptions extends ErrorLocation {
  retryable?: boolean;
  cause?: unknown;
}

/** The engine's base error. Every package has one like it; all carry a string `code`. */
export class MemoflowError extends Error {
  readonly code: EngineErrorCode;
  readonly retryable: boolean;
  readonly location: ErrorLocation;

  constructor(code: EngineErrorCode, message: string, options: MemoflowErrorOptions = {}) {
    super(withLocation(message, options), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MemoflowError';
    this.code = code;
    this.retryable = options.retryable ?? false;
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

/** Classifies any thrown value. The worker is the one place that calls this on user errors. */
export function toErrorInfo(thrown: unknown): ErrorInfo {
  if (thrown instanceof Error) {
    const marked = thrown as Error & { nonRetryable?: unknown; retryable?: unknown; code?: unknown };
    // User errors retry by default; NonRetryableError opts out; engine errors say for themselves.
    let retryable = true;
    if (marked.nonRetryable === true) retryable = false;
    else if (thrown instanceof MemoflowError) retryable = thrown.retryable;
    const info: ErrorInfo = { name: thrown.name, message: thrown.message, retryable };
    if (typeof marked.code === 'string') info.code = marked.code;
    if (thrown.stack !== undefined) info.stack = thrown.stack;
    return info;
  }
  return { name: 'Error', message: typeof thrown === 'string' ? thrown : JSON.stringify(thrown) ?? String(thrown), retryable: true };
}
