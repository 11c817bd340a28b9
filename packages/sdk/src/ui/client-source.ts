import type { Memoflow } from '../client/connect.js';
import { storageOf } from '../client/storage-of.js';
import type { UiSource } from './source.js';

/** The web UI's reads over a connection: its run store and catalog, read-only. */
export function uiSourceOf(mf: Memoflow): UiSource {
  const { runStore, catalog } = storageOf(mf);
  return {
    listRuns: (filter) => runStore.list(filter),
    loadRun: (runId) => runStore.load(runId),
    listCache: (filter) => catalog.list(filter),
    explain: (runId, nodeId) => mf.explain(runId, nodeId),
  };
}
