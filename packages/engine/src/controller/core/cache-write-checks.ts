import { keyOfParts, partsHashTo, type CacheKeyParts } from '../../cache/cache-key.js';
import { outputSchemaProblem } from '../../cache/output-validator.js';
import type { CacheEntry, CacheEntryKind } from '../../ports/cache-catalog.js';
import type { NodeSpec } from '../../spec/workflow-spec.js';
import type { CacheWriteRetry, NodeExecution } from '../../state/run-state.js';

/**
 * Why a hit the catalog returned cannot be served to a node, or undefined if it can. The catalog's
 * checksum binds value and valueHash to key and kind; this checks the rest of the entry's
 * identity (it is the entry asked for, and its stored parts hash to its key, so `cache explain`
 * is not misled) and, for outputs, that the value has the task's output type (`spec.outputSchema`;
 * no schema, no check). `wanted`, the parts the node's key was computed from, lets parts equal to
 * them pass without hashing (`partsHashTo`). Never throws.
 */
export function entryProblem(found: { key: string; kind: CacheEntryKind; entry: CacheEntry }, spec: NodeSpec | undefined, wanted?: CacheKeyParts | null): string | undefined {
  const { entry } = found;
  if (entry.key !== found.key || entry.kind !== found.kind) return `the catalog returned entry ${entry.kind}/${entry.key.slice(0, 10)} for ${found.kind}/${found.key.slice(0, 10)}`;
  if (!partsHashTo(entry.parts, entry.key, wanted)) return partsMismatch(entry.parts);
  if (found.kind === 'output' && spec !== undefined) {
    const problem = outputSchemaProblem(spec.outputSchema, entry.value);
    if (problem !== undefined) return `its value does not match the task's output schema: ${problem}`;
  }
  return undefined;
}

/** What an entry's parts hash to instead of its key (this path is rare: hash again to say it). */
function partsMismatch(parts: unknown): string {
  try {
    return `its key parts hash to ${keyOfParts(parts as CacheKeyParts).slice(0, 10)}, not to its key`;
  } catch {
    return 'its key parts cannot be encoded';
  }
}

/** Backoff between puts of a failed write: 250 ms, doubling, at most 30 s (unbounded count while the run lives). */
export function writeRetryDelayMs(failures: number): number {
  return Math.min(250 * 2 ** Math.max(0, Math.min(failures - 1, 20)), 30_000);
}

export function scheduleWriteRetry(failures: number, lastError: string, retryAtMs: number): CacheWriteRetry {
  return { failures, lastError, retryAtMs, final: false };
}

/** The run's final word on writes that were lost for good (PUT_FAILURE), or undefined if none were. */
export function lostWritesMessage(nodes: readonly NodeExecution[]): string | undefined {
  const lost = nodes.filter((node) => node.cacheStatus === 'PUT_FAILURE');
  if (lost.length === 0) return undefined;
  const named = lost.slice(0, 20).map((node) => `${node.nodeId} (${node.task})`);
  const more = lost.length > named.length ? ` and ${lost.length - named.length} more` : '';
  return `${lost.length} cache write(s) lost, the next run executes them again: ${named.join(', ')}${more}`;
}
