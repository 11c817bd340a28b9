import type { AttemptResult, AttemptResultsHandler, Json, TaskAttempt, TaskContext, TaskImplementation, TaskOutcome } from '@memoflow/engine';
import type { WorkerLogger } from '../logger.js';

let counter = 0;

/** A TaskAttempt with a fresh id unless one is given. */
export function makeAttempt(overrides: Partial<TaskAttempt> & { task: string }): TaskAttempt {
  counter += 1;
  const runId = overrides.runId ?? 'run1';
  const nodeId = overrides.nodeId ?? `n${counter}`;
  const attempt = overrides.attempt ?? 1;
  return {
    id: overrides.id ?? `${runId}-${nodeId}-${attempt}`,
    runId,
    nodeId,
    attempt,
    inputs: {},
    timeoutMs: null,
    cacheKey: null,
    ...overrides,
  };
}

/** A task whose body returns its result as the output (no hash). */
export function taskOf(
  name: string,
  body: (inputs: { [name: string]: Json }, context: TaskContext) => Json | Promise<Json>,
): TaskImplementation {
  return {
    name,
    async execute(inputs, context): Promise<TaskOutcome> {
      return { output: await body(inputs, context), outputHash: null };
    },
  };
}

/**
 * For tests that look at results one by one: calls `each` for every result of a batch (all at
 * once), and settles each result with its call.
 */
export function eachResult(each: (result: AttemptResult) => Promise<void>): AttemptResultsHandler {
  return (results) => results.map((result) => each(result));
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: object;
  message: string;
}

/** A WorkerLogger that records lines for assertions. */
export function recordingLogger(records: LogRecord[] = [], bindings: object = {}): WorkerLogger & { records: LogRecord[] } {
  const at = (level: LogRecord['level']) => (fields: object, message: string) => {
    records.push({ level, fields: { ...bindings, ...fields }, message });
  };
  return {
    records,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => recordingLogger(records, { ...bindings, ...fields }),
  };
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
