import { MemoflowError } from '../errors.js';
import type { NewCacheEntry } from '../ports/cache-catalog.js';

/*
 * An entry's `durationMs`: the compute its execution took, which a HIT on it saves. It is
 * provenance, like `runId`: not part of the checksum (a wrong duration misreports savings, it
 * never serves a wrong value), so entries written before durations existed still verify.
 */

/** Why `ms` cannot be stored as an entry's duration (whole milliseconds, 0 to 2^53 - 1), or undefined. */
export function durationProblem(ms: unknown): string | undefined {
  if (ms === undefined || ms === null) return undefined;
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) return `durationMs must be a whole number of milliseconds from 0 to ${Number.MAX_SAFE_INTEGER}, got ${typeof ms === 'number' ? String(ms) : typeof ms}`;
  return undefined;
}

/** Throws a clear error for the first entry of a batch whose duration no store keeps (the batch is refused whole, as one statement would). */
export function checkEntryDurations(entries: readonly NewCacheEntry[]): void {
  for (const entry of entries) {
    const problem = durationProblem(entry.durationMs);
    if (problem !== undefined) throw new MemoflowError('CATALOG_ERROR', `cache entry of task '${entry.task}' (run ${entry.runId}, node '${entry.nodeId}'): ${problem}`, { node: entry.nodeId, field: 'durationMs' });
  }
}

/** A measured span as an entry's duration: whole milliseconds, never negative (clocks of two machines may disagree). */
export function measuredMs(startedAt: Date, finishedAt: Date): number {
  return Math.max(0, Math.round(finishedAt.getTime() - startedAt.getTime()));
}
