import { traceCarrierOf } from '@memoflow/engine';
import type { AttemptResult, ErrorInfo, Json, TaskAttempt } from '@memoflow/engine';

/**
 * What crosses the queues. Job data is plain JSON: an attempt as is, a result with its dates as
 * ISO strings; an input or output above the size threshold is replaced by its hash (value-refs.ts). Decoding validates shape (data from a queue is data, never code) and throws a
 * plain Error naming the field, so a malformed job fails visibly instead of running wrongly.
 */
export type WireAttemptResult =
  | (Omit<Extract<AttemptResult, { ok: true }>, 'startedAt' | 'finishedAt'> & { startedAt: string; finishedAt: string })
  | (Omit<Extract<AttemptResult, { ok: false }>, 'startedAt' | 'finishedAt'> & { startedAt: string; finishedAt: string });

export function encodeResult(result: AttemptResult): WireAttemptResult {
  return { ...result, startedAt: result.startedAt.toISOString(), finishedAt: result.finishedAt.toISOString() };
}

/** A successful result whose output went by reference (value-refs.ts): the value's hash instead of the value. */
export type OutputByReference = Omit<Extract<AttemptResult, { ok: true }>, 'output'> & { outputRef: string };

/** A result as read from the results stream: complete, or with its output still to be fetched. */
export type ReceivedResult = AttemptResult | OutputByReference;

/**
 * An attempt as read from its job: each input by reference is `null` in `attempt.inputs` and named
 * in `inputRefs` with its hash (on the wire, such a job has `inlineInputs` and `inputRefs` instead
 * of `inputs`, so a worker of the previous release refuses it rather than run it with nulls).
 */
export interface QueuedAttempt {
  attempt: TaskAttempt;
  inputRefs: { [name: string]: string };
}

/** A complete result (no output by reference), e.g. one kept on a job. */
export function decodeResult(data: unknown): AttemptResult {
  const result = decodeReceivedResult(data);
  if ('outputRef' in result) throw new Error('result.output was passed by reference');
  return result;
}

export function decodeReceivedResult(data: unknown): ReceivedResult {
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
    const outputRef = r['outputRef'];
    if (outputRef !== undefined) return { ...base, ok: true, outputRef: valueHash(outputRef, 'result.outputRef'), outputHash: hash ?? null };
    return { ...base, ok: true, output: (r['output'] ?? null) as Json, outputHash: hash ?? null };
  }
  const e = record(r['error'], 'result.error');
  const error: ErrorInfo = { name: str(e, 'name'), message: str(e, 'message'), retryable: e['retryable'] === true };
  if (typeof e['code'] === 'string') error.code = e['code'];
  if (typeof e['stack'] === 'string') error.stack = e['stack'];
  return { ...base, ok: false, error };
}

/** An attempt with all its inputs in the job (none by reference). */
export function decodeAttempt(data: unknown): TaskAttempt {
  const queued = decodeQueuedAttempt(data);
  if (Object.keys(queued.inputRefs).length > 0) throw new Error('attempt.inputs were passed by reference');
  return queued.attempt;
}

export function decodeQueuedAttempt(data: unknown): QueuedAttempt {
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
    // A job with inputs by reference has `inlineInputs` instead (value-refs.ts attemptJobData).
    inputs: (a['inputRefs'] === undefined ? record(a['inputs'], 'attempt.inputs') : record(a['inlineInputs'], 'attempt.inlineInputs')) as { [name: string]: Json },
    timeoutMs,
    cacheKey,
  };
  // Absent on jobs queued by a controller of the previous release: the worker checks what it can.
  const taskVersion = optionalStr(a, 'taskVersion');
  const signature = optionalStr(a, 'signature');
  if (taskVersion !== undefined) attempt.taskVersion = taskVersion;
  if (signature !== undefined) attempt.signature = signature;
  // Tracing is never a reason to refuse an attempt: a trace context that is not one is dropped.
  const trace = traceCarrierOf(a['trace']);
  if (trace !== undefined) attempt.trace = trace;
  const inputRefs: { [name: string]: string } = {};
  if (a['inputRefs'] !== undefined) {
    for (const [name, hash] of Object.entries(record(a['inputRefs'], 'attempt.inputRefs'))) {
      if (!Object.hasOwn(attempt.inputs, name)) throw new Error(`attempt.inputRefs.${name} names no input`);
      inputRefs[name] = valueHash(hash, `attempt.inputRefs.${name}`);
    }
  }
  return { attempt, inputRefs };
}

/** A value reference: the SHA-256 (hex) of the value's JSON text. */
function valueHash(value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw new Error(`${what} must be a SHA-256 in hex`);
  return value;
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
