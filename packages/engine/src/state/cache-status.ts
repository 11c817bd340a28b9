/**
 * Cache status of one node execution, in Flyte's vocabulary (DESIGN.md "Node cache statuses").
 * - HIT: served from the catalog, not executed.
 * - MISS: looked up, absent (or undecodable); the node executes (POPULATED once its entry is written).
 * - POPULATED: executed and its result written.
 * - DISABLED: caching off for this node.
 * - SKIPPED: executed without a lookup; `cacheReason` says why (see SkipReason).
 * - LOOKUP_FAILURE / PUT_FAILURE: the catalog erred; the node still runs, the run still succeeds.
 * - WAITING: a serialized reservation is held by another run.
 * - EVICTED: the entry was found but had expired (older than the node's TTL); the node executes and
 *   its fresh result replaces the entry (then POPULATED). An undecodable entry is a MISS with a warning.
 * - FUTURE_HIT: a dynamic node's compiled sub-DAG came from the catalog.
 * - RECOVERED: resume or retry reused this node's result from an earlier run (Flyte's recover),
 *   cached or not; `cacheReason` names the run. A recovered container replays that run's expansion
 *   and its children are recovered (or run) one by one. Never written to the catalog.
 */
export type CacheStatus =
  | 'HIT'
  | 'MISS'
  | 'POPULATED'
  | 'DISABLED'
  | 'SKIPPED'
  | 'LOOKUP_FAILURE'
  | 'PUT_FAILURE'
  | 'WAITING'
  | 'EVICTED'
  | 'FUTURE_HIT'
  | 'RECOVERED';

/** Why a node ran without a lookup. */
export type SkipReason = 'upstream-reran' | 'overwrite' | 'resume';

/** Statuses under which the node executed instead of being served from the catalog. */
export function executedInsteadOfHit(status: CacheStatus | null): boolean {
  return status !== 'HIT' && status !== 'RECOVERED';
}
