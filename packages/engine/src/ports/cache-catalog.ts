import type { Json } from '../json.js';
import type { CacheKeyParts } from '../cache/cache-key.js';

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
}

export interface CacheEntry extends NewCacheEntry {
  createdAt: Date;
}

export interface CacheLookupResult {
  /** Entries found and decoded, by key. */
  hits: Map<string, CacheEntry>;
  /** Entries found but undecodable (bad JSON, checksum mismatch), by key, with the reason. A miss with a warning. */
  corrupt: Map<string, string>;
}

export interface CacheListFilter {
  project?: string;
  domain?: string;
  task?: string;
  runId?: string;
  kind?: CacheEntryKind;
  limit?: number;
}

/** An entry without its value, for listings. */
export type CacheEntrySummary = Omit<CacheEntry, 'value'>;

export interface CacheEvictFilter {
  runId?: string;
  task?: string;
  project?: string;
  domain?: string;
  keys?: readonly string[];
}

/**
 * The cache catalog (Flyte's datacatalog). Implementations: PostgresCacheCatalog,
 * PgliteCacheCatalog, InMemoryCacheCatalog; one contract suite runs against all of them.
 *
 * Every method is one round trip (one statement), whatever the batch size: the controller looks up
 * a whole round of ready nodes at once. Expiry (TTL) is decided by the engine from `createdAt`,
 * not by the catalog, so it is a plain function tested with a fake clock.
 */
export interface CacheCatalog {
  /** Looks up entries of one kind by key. Missing keys are simply absent from `hits`. */
  lookup(kind: CacheEntryKind, keys: readonly string[]): Promise<CacheLookupResult>;
  /** Upserts entries (key + kind is the identity): a newer result replaces an older one. */
  put(entries: readonly NewCacheEntry[]): Promise<void>;
  /** Newest first. */
  list(filter?: CacheListFilter): Promise<CacheEntrySummary[]>;
  /** Removes matching entries (an empty filter removes all); returns how many. */
  evict(filter: CacheEvictFilter): Promise<number>;
}
