import { RESULT_FIELD, RESULT_WITH_REF_FIELD, resultBackoffMs } from './results-stream.js';

/* Reading stream replies, and the arithmetic of entry ids: helpers of ResultConsumer. */

export function pairs(list: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

export interface StreamEntry {
  stream: string;
  id: string;
  payload: string | undefined;
}

/** XREADGROUP's reply (any number of streams) as entries. */
export function streamEntries(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const [stream, entries] of reply as [string, unknown[]][]) for (const entry of parseEntries(stream, entries)) out.push(entry);
  return out;
}

export function parseEntries(stream: string, entries: unknown[]): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (const raw of entries) {
    if (!Array.isArray(raw)) continue;
    const [id, fields] = raw as [string, string[] | null];
    // An entry whose output goes by reference has its result under RESULT_WITH_REF_FIELD instead.
    let index = fields?.indexOf(RESULT_FIELD) ?? -1;
    if (index < 0) index = fields?.indexOf(RESULT_WITH_REF_FIELD) ?? -1;
    out.push({ stream, id, payload: index >= 0 ? fields?.[index + 1] : undefined });
  }
  return out;
}

/** A handler's error may say when to try again (RUN_LEASED: when another controller's lease ends). */
export function retryDelayMs(error: unknown, deliveries: number): number {
  const after = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof after === 'number' && Number.isFinite(after) ? Math.min(30_000, Math.max(50, after)) : resultBackoffMs(deliveries);
}

export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

export function nextId(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${ms}-${BigInt(seq) + 1n}`;
}
