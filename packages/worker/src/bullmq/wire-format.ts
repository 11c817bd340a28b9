import type { AttemptResult, ErrorInfo, Json, TaskAttempt } from '@memoflow/engine';

/**
 * What crosses the queues. Job data is plain JSON: an attempt as is, a result with its dates as
 * ISO strings. Decoding validates shape (data from a queue is data, never code) and throws a
 * plain Error naming the field, so a malformed job fails visibly instead of running wrongly.
 */
export type WireAttemptResult =
  | (Omit<Extract<AttemptResult, { ok: true }>, 'startedAt' | 'finishedAt'> & { startedAt: string; finishedAt: string })
  | (Omit<Extract<AttemptResult, { ok: false }>, 'startedAt' | 'finishedAt'> & { startedAt: string; finishedAt: string });

export function encodeResult(result: AttemptResult): WireAttemptResult {
  return { ...result, startedAt: result.startedAt.toISOString(), finishedAt: result.finishedAt.toISOString() };
}

export function decodeResult(data: unknown): AttemptResult {
  const r = record(data, 'result');
  const base = {
    attemptId: str(r, 'attemptId'),
    runId: str(r, 'runId'),
    nodeId: str(r, 'nodeId'),
    attempt: num(r, 'attempt'),
    startedAt: date(r, 'startedAt'),
    finishedAt: date(r, 'finishedAt'),
  };
  if (r['ok'] === true) {
    const hash = r['outputHash'];
    if (hash !== null && typeof hash !== 'string') throw new Error('result.outputHash must be a string or null');
    return { ...base, ok: true, output: (r['output'] ?? null) as Json, outputHash: hash ?? null };
  }
  const e = record(r['error'], 'result.error');
  const error: ErrorInfo = { name: str(e, 'name'), message: str(e, 'message'), retryable: e['retryable'] === true };
  if (typeof e['code'] === 'string') error.code = e['code'];
  if (typeof e['stack'] === 'string') error.stack = e['stack'];
  return { ...base, ok: false, error };
}

export function decodeAttempt(data: unknown): TaskAttempt {
  const a = record(data, 'attempt');
  const timeoutMs = a['timeoutMs'] ?? null;
  const cacheKey = a['cacheKey'] ?? null;
  if (timeoutMs !== null && typeof timeoutMs !== 'number') throw new Error('attempt.timeoutMs must be a number or null');
  if (cacheKey !== null && typeof cacheKey !== 'string') throw new Error('attempt.cacheKey must be a string or null');
  const attempt: TaskAttempt = {
    id: str(a, 'id'),
    runId: str(a, 'runId'),
    nodeId: str(a, 'nodeId'),
    task: str(a, 'task'),
    attempt: num(a, 'attempt'),
    inputs: record(a['inputs'], 'attempt.inputs') as { [name: string]: Json },
    timeoutMs,
    cacheKey,
  };
  // Absent on jobs queued by a controller of the previous release: the worker checks what it can.
  const taskVersion = optionalStr(a, 'taskVersion');
  const signature = optionalStr(a, 'signature');
  if (taskVersion !== undefined) attempt.taskVersion = taskVersion;
  if (signature !== undefined) attempt.signature = signature;
  return attempt;
}

/** What a controller's address may look like (it becomes part of a key): the dispatcher's own `<host>-<pid>-<hex>`, or a caller's. */
export const ADDRESS_PATTERN = /^[\w.-]{1,200}$/;

/**
 * The address of the controller that dispatched an attempt job (`replyTo` beside the attempt's
 * fields), to publish its result to; null for a job queued by a controller of an earlier release,
 * or an address that is not one (data, never trusted as a key name).
 */
export function replyToOf(data: unknown): string | null {
  if (typeof data !== 'object' || data === null) return null;
  const value = (data as Record<string, unknown>)['replyTo'];
  return typeof value === 'string' && ADDRESS_PATTERN.test(value) ? value : null;
}

function optionalStr(r: Record<string, unknown>, key: string): string | undefined {
  const value = r[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error(`attempt.${key} must be a string when present`);
  return value;
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function str(r: Record<string, unknown>, key: string): string {
  const value = r[key];
  if (typeof value !== 'string') throw new Error(`${key} must be a string`);
  return value;
}

function num(r: Record<string, unknown>, key: string): number {
  const value = r[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${key} must be a number`);
  return value;
}

function date(r: Record<string, unknown>, key: string): Date {
  const value = new Date(str(r, key));
  if (Number.isNaN(value.getTime())) throw new Error(`${key} must be an ISO date`);
  return value;
}
