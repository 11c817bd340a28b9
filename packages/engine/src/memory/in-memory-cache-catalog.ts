import { checksumProblem, entryChecksum } from '../cache/entry-checksum.js';
import { checkEntryDurations } from '../cache/entry-duration.js';
import { hashJson } from '../cache/canonical-hash.js';
import type { Json } from '../json.js';
import type { Clock } from '../ports/clock.js';
import { systemClock } from '../ports/clock.js';
import type {
  CacheCatalog,
  CacheEntry,
  CacheEntryKind,
  CacheEntrySummary,
  CacheEntryFilter,
  CacheEvictFilter,
  CacheListFilter,
  CacheLookupResult,
  NewCacheEntry,
} from '../ports/cache-catalog.js';
import type { ReleasedReservation, ReleaseSubscription, ReservationOutcome, ReservationRelease, ReservationRequest } from '../ports/cache-reservations.js';
import { InMemoryReservations } from './in-memory-reservations.js';
import { compareText, copyDate, copyJson, FailurePlan } from './support.js';

/** How a test damages a stored entry (`InMemoryCacheCatalog.corrupt`). */
export type CacheEntryDamage = 'undecodable' | 'tampered' | 'legacy' | 'value-hash' | { copyFrom: string };

export type CacheCatalogMethod = 'lookup' | 'put' | 'list' | 'evict' | 'acquireReservations' | 'extendReservations' | 'releaseReservations';

export interface InMemoryCacheCatalogOptions {
  /** Sets `createdAt` on put (default: the system clock). */
  clock?: Clock;
}

/** As stored: the value as JSON text beside its checksum, like the real catalog's columns. */
interface StoredEntry extends Omit<NewCacheEntry, 'value' | 'durationMs'> {
  durationMs: number | null;
  valueText: string;
  checksum: string;
  createdAt: Date;
}

/**
 * A CacheCatalog in process memory with the semantics of PostgresCacheCatalog (it passes the same
 * contract suite): values are copied in and out, `put` upserts on key + kind and resets
 * `createdAt`, lookups verify a checksum and report bad entries in `corrupt`, listings are newest
 * first (ties by key, then kind).
 *
 * Test hooks: `failNext(method, error)` makes the next call of `method` reject;
 * `corrupt(kind, key)` damages a stored entry as a bad disk or a manual edit would.
 */
export class InMemoryCacheCatalog implements CacheCatalog {
  readonly #entries = new Map<string, StoredEntry>();
  readonly #failures = new FailurePlan<CacheCatalogMethod>();
  readonly #clock: Clock;
  readonly #reservations: InMemoryReservations;

  constructor(options: InMemoryCacheCatalogOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#reservations = new InMemoryReservations(this.#clock, (method) => this.#failures.check(method));
  }

  /** The next call of `method` rejects with `error` (queued per method). */
  failNext(method: CacheCatalogMethod, error: Error = new Error(`simulated ${method} failure`)): void {
    this.#failures.add(method, error);
  }

  /**
   * Damages a stored entry: `undecodable` replaces its value with text that is not JSON,
   * `tampered` changes the value without updating its checksum, `legacy` gives it the value-only
   * checksum the previous release wrote, `value-hash` changes its valueHash, `{ copyFrom }` copies another entry's value, valueHash and
   * checksum over it (as a manual edit would). Returns false if an entry is absent.
   */
  corrupt(kind: CacheEntryKind, key: string, how: CacheEntryDamage = 'tampered'): boolean {
    const entry = this.#entries.get(identity(kind, key));
    if (entry === undefined) return false;
    if (typeof how === 'object') {
      const source = this.#entries.get(identity(kind, how.copyFrom));
      if (source === undefined) return false;
      entry.valueText = source.valueText;
      entry.valueHash = source.valueHash;
      entry.checksum = source.checksum;
      return true;
    }
    switch (how) {
      case 'undecodable':
        entry.valueText = '{"truncated';
        break;
      case 'tampered':
        entry.valueText = JSON.stringify({ tampered: true });
        break;
      case 'legacy':
        entry.checksum = hashJson(JSON.parse(entry.valueText) as Json);
        break;
      case 'value-hash':
        entry.valueHash = 'forged';
        break;
    }
    return true;
  }

  async lookup(kind: CacheEntryKind, keys: readonly string[]): Promise<CacheLookupResult> {
    await Promise.resolve();
    this.#failures.check('lookup');
    const result: CacheLookupResult = { hits: new Map(), corrupt: new Map() };
    for (const key of keys) {
      const stored = this.#entries.get(identity(kind, key));
      if (stored === undefined || result.hits.has(key) || result.corrupt.has(key)) continue;
      const decoded = decode(stored);
      if (typeof decoded === 'string') result.corrupt.set(key, decoded);
      else result.hits.set(key, decoded);
    }
    return result;
  }

  async put(entries: readonly NewCacheEntry[]): Promise<void> {
    await Promise.resolve();
    this.#failures.check('put');
    const createdAt = this.#clock.now();
    checkEntryDurations(entries);
    // Encode everything first so a bad value rejects the whole batch, like the one statement does.
    const encoded = entries.map((entry): StoredEntry => {
      const value = copyJson(entry.value);
      return {
        key: entry.key,
        kind: entry.kind,
        project: entry.project,
        domain: entry.domain,
        task: entry.task,
        parts: copyJson(entry.parts),
        valueText: JSON.stringify(value),
        valueHash: entry.valueHash,
        checksum: entryChecksum({ key: entry.key, kind: entry.kind, value, valueHash: entry.valueHash }),
        runId: entry.runId,
        nodeId: entry.nodeId,
        durationMs: entry.durationMs ?? null,
        createdAt: copyDate(createdAt),
      };
    });
    for (const entry of encoded) this.#entries.set(identity(entry.kind, entry.key), entry);
  }

  async list(filter: CacheListFilter = {}): Promise<CacheEntrySummary[]> {
    await Promise.resolve();
    this.#failures.check('list');
    const matching = [...this.#entries.values()]
      .filter(matcher(filter))
      .sort(newestFirst)
      .map(summarize);
    return filter.limit === undefined ? matching : matching.slice(0, Math.max(0, filter.limit));
  }

  async evict(filter: CacheEvictFilter): Promise<number> {
    await Promise.resolve();
    this.#failures.check('evict');
    const matches = matcher(filter);
    let removed = 0;
    for (const [id, entry] of this.#entries) {
      if (!matches(entry)) continue;
      this.#entries.delete(id);
      removed += 1;
    }
    return removed;
  }

  acquireReservations(requests: readonly ReservationRequest[]): Promise<ReservationOutcome[]> {
    return this.#reservations.acquireReservations(requests);
  }

  extendReservations(owners: readonly string[], ttlMs: number): Promise<string[]> {
    return this.#reservations.extendReservations(owners, ttlMs);
  }

  releaseReservations(releases: readonly ReservationRelease[]): Promise<void> {
    return this.#reservations.releaseReservations(releases);
  }

  watchReleases(listener: (released: ReleasedReservation) => void): Promise<ReleaseSubscription> {
    return this.#reservations.watchReleases(listener);
  }
}

function identity(kind: CacheEntryKind, key: string): string {
  return `${kind}\u0000${key}`;
}

/** The entry, or why it cannot be served. */
function decode(stored: StoredEntry): CacheEntry | string {
  let value: Json;
  try {
    value = JSON.parse(stored.valueText) as Json;
  } catch (error) {
    return `undecodable value: ${error instanceof Error ? error.message : String(error)}`;
  }
  const problem = checksumProblem({ key: stored.key, kind: stored.kind, value, valueHash: stored.valueHash }, stored.checksum);
  if (problem !== undefined) return problem;
  return { ...summarize(stored), value };
}

function summarize(stored: StoredEntry): CacheEntrySummary {
  return {
    key: stored.key,
    kind: stored.kind,
    project: stored.project,
    domain: stored.domain,
    task: stored.task,
    parts: copyJson(stored.parts),
    valueHash: stored.valueHash,
    runId: stored.runId,
    nodeId: stored.nodeId,
    durationMs: stored.durationMs,
    createdAt: copyDate(stored.createdAt),
  };
}

/** One test for listings and evictions: every field the filter gives must match. */
function matcher(filter: CacheEntryFilter): (entry: StoredEntry) => boolean {
  const keys = filter.keys === undefined ? undefined : new Set(filter.keys);
  return (entry) =>
    (filter.project === undefined || entry.project === filter.project) &&
    (filter.domain === undefined || entry.domain === filter.domain) &&
    (filter.task === undefined || entry.task === filter.task) &&
    (filter.runId === undefined || entry.runId === filter.runId) &&
    (filter.kind === undefined || entry.kind === filter.kind) &&
    (keys === undefined || keys.has(entry.key));
}

/** created_at DESC, key ASC, kind ASC: the real catalog's ORDER BY (byte order, collation "C"). */
function newestFirst(a: StoredEntry, b: StoredEntry): number {
  return b.createdAt.getTime() - a.createdAt.getTime() || compareText(a.key, b.key) || compareText(a.kind, b.kind);
}
