import type { CacheEntryKind, CacheLookupResult } from '../../ports/cache-catalog.js';
import type { CacheLookup } from '../vocabulary/commands.js';
import type { LookupOutcome } from '../vocabulary/events.js';

/**
 * What one catalog query of `kind` answered for each lookup that asked for it: a hit, a corrupt
 * entry, or a miss. Shared by the run driver and the planner (`plan/`), so a plan reads the catalog
 * exactly as a run does.
 */
export function lookupOutcomes(kind: CacheEntryKind, wanted: readonly CacheLookup[], found: CacheLookupResult): LookupOutcome[] {
  return wanted.map(({ nodeId, key, afterReservation, shadow }): LookupOutcome => {
    // A lookup made holding the node's reservation says so: its miss executes the node. A shadow lookup says so too (core/cutoff.ts).
    const base = { nodeId, key, kind, ...(afterReservation === true ? { afterReservation } : {}), ...(shadow === undefined ? {} : { shadow }) };
    const entry = found.hits.get(key);
    if (entry !== undefined) return { ...base, outcome: 'hit', entry };
    const corrupt = found.corrupt.get(key);
    if (corrupt !== undefined) return { ...base, outcome: 'corrupt', reason: corrupt };
    return { ...base, outcome: 'miss' };
  });
}
