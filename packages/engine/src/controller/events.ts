import type { CacheEntry } from '../ports/cache-catalog.js';
import type { AttemptResult } from '../ports/task-dispatcher.js';

/** One node's outcome of a batched catalog lookup. */
export type LookupOutcome =
  | { nodeId: string; key: string; outcome: 'hit'; entry: CacheEntry }
  | { nodeId: string; key: string; outcome: 'miss' }
  | { nodeId: string; key: string; outcome: 'corrupt'; reason: string }
  | { nodeId: string; key: string; outcome: 'failure'; reason: string };

/** What the effect layer feeds back into `decide`. Stale events (for a node that moved on) are ignored. */
export type RunEvent =
  /** Nothing happened but the run should be advanced (start, recovery). */
  | { type: 'run:tick' }
  | { type: 'cache:looked-up'; results: LookupOutcome[] }
  | { type: 'attempt:finished'; result: AttemptResult }
  | { type: 'cache:written'; nodeIds: string[]; ok: true }
  | { type: 'cache:written'; nodeIds: string[]; ok: false; reason: string };
