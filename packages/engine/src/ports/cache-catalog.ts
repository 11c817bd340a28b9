import type { Json } from '../json.js';
import type { CacheKeyParts } from '../cache/cache-key.js';
import type { CacheReservations } from './cache-reservations.js';

/** What an entry holds: a node's output, or a dynamic node's compiled sub-DAG (its "future"). */
export type CacheEntryKind = 'output' | 'future';

export interface NewCacheEntry {
  key: string;
  kind: CacheEntryKind;
  project: string;
  domain: string;
  task: string;
  parts: CacheKeyParts;
  value: Json;
  /** The `hashWith` hash of the value, when its type declares one. */
  valueHash: string | null;
  /** Provenance: the run and node that produced it (`cache evict --run`). */
  runId: string;
  nodeId: string;
  /**
   * The compute the entry's execution took, in ms (what a HIT on it saves): a task's successful
   * attempt's run time, a dynamic node's future its compile attempt's, a container's output its
   * own attempt's plus its children's (see `entryDurationMs`). Absent or null: unknown.
   */
  durationMs?: number | null;
}

export interface CacheEntry extends NewCacheEntry {
  /** Null: unknown (entries written before durations were recorded, or whose compute was not known). */
  durationMs: number | null;
  createdAt: Date;
}

export interface CacheLookupResult {
  /** Entries found and decoded, by key. */
  hits: Map<string, CacheEntry>;
  /** Entries found but undecodable (bad JSON, checksum mismatch), by key, with the reason. A miss with a warning. */
  corrupt: Map<string, string>;
}

/** Which entries a listing or an eviction concerns: every field given must match. */
export interface CacheEntryFilter {
  project?: string;
  domain?: string;
  task?: string;
  runId?: string;
  /** Outputs only, or dynamic nodes' futures only (evicting a dynamic node's output but not its future forces a FUTURE_HIT). */
  kind?: CacheEntryKind;
  keys?: readonly string[];
}

export interface CacheListFilter extends CacheEntryFilter {
  limit?: number;
}

/** An entry without its value, for listings. */
export type CacheEntrySummary = Omit<CacheEntry, 'value'>;

/** An empty filter matches every entry. */
export type CacheEvictFilter = CacheEntryFilter;

/**
 * The cache catalog (Flyte's datacatalog). Implementations: PostgresCacheCatalog,
 * PgliteCacheCatalog, InMemoryCacheCatalog; one contract suite runs against all of them.
 *
 * Every method is one round trip (one statement), whatever the batch size: the controller looks up
 * a whole round of ready nodes at once. Expiry (TTL) is decided by the engine from `createdAt`,
 * not by the catalog, so it is a plain function tested with a fake clock. Reservations
 * (`cache: { serialize: true }`) are in ports/cache-reservations.ts.
 */
export interface CacheCatalog extends CacheReservations {
  /** Looks up entries of one kind by key. Missing keys are simply absent from `hits`. */
  lookup(kind: CacheEntryKind, keys: readonly string[]): Promise<CacheLookupResult>;
  /** Upserts entries (key + kind is the identity): a newer result replaces an older one. */
  put(entries: readonly NewCacheEntry[]): Promise<void>;
  /** Newest first. */
  list(filter?: CacheListFilter): Promise<CacheEntrySummary[]>;
  /** Removes matching entries (an empty filter removes all); returns how many. */
  evict(filter: CacheEvictFilter): Promise<number>;
}
