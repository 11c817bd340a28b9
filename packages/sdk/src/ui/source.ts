import type { CacheEntrySummary, CacheListFilter, NodeExplanation, RunListFilter, RunState, RunSummary } from '@memoflow/engine';

/**
 * What the web page reads, and all it can reach: reads of the run store and the catalog, and
 * explain. Nothing here writes, starts or cancels, so no route can (the server is read-only by
 * construction, not only by the methods its router accepts).
 */
export interface UiSource {
  listRuns(filter: RunListFilter): Promise<RunSummary[]>;
  loadRun(runId: string): Promise<RunState | undefined>;
  listCache(filter: CacheListFilter): Promise<CacheEntrySummary[]>;
  /** `mf.explain(runId, nodeId)`: why the node has its cache status. */
  explain(runId: string, nodeId: string): Promise<NodeExplanation>;
}
