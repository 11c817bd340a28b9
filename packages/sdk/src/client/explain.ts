import {
  MemoflowError,
  describeGiven,
  isUnstorableText,
  explainNeeds,
  explainNode,
  pickNearest,
  printableId,
  type CacheCatalog,
  type CacheEntrySummary,
  type CacheKeyParts,
  type NodeExplanation,
  type RunState,
  type RunStore,
} from '@memoflow/engine';

/**
 * How many of a task's newest entries the nearest one is chosen from (per scope). A task with more
 * entries than this (a wide fan-out) is compared with its newest ones only: the entry a changed
 * node missed is almost always among the last few runs' (a listing holds no values, only parts).
 */
export const NEAREST_CANDIDATES = 1000;

/** A cascade chain longer than this is cut (a DAG cannot loop, but a corrupt store could). */
const MAX_CHAIN = 1000;

/**
 * `mf.explain(runId, nodeId)`: why node `nodeId` of run `runId` has its cache status. Reads the run
 * once; per node explained, at most one listing by key, two listings of the task's entries (its own
 * project and domain, then any, only if the first has nothing to compare with) and one load of the
 * run that wrote the nearest entry. A SKIPPED(upstream-reran) node explains its upstream first (no
 * catalog reads of its own), up the chain to the node that ran for a reason of its own.
 */
export async function explainRunNode(ports: { catalog: CacheCatalog; runStore: RunStore }, runId: string, nodeId: string): Promise<NodeExplanation> {
  const givenRun: unknown = runId;
  const givenNode: unknown = nodeId;
  if (typeof givenRun !== 'string' || givenRun === '') throw new MemoflowError('RUN_NOT_FOUND', `explain needs a run id (a non-empty string), got ${describeGiven(givenRun)}`, { field: 'runId' });
  if (typeof givenNode !== 'string' || givenNode === '') throw new MemoflowError('NODE_NOT_FOUND', `explain needs a node id (a non-empty string), got ${describeGiven(givenNode)}`, { field: 'nodeId' });
  // An id no store can hold (U+0000, a lone surrogate: Postgres refuses the query itself) names no run.
  const state = isUnstorableText(runId) ? undefined : await ports.runStore.load(runId);
  if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${printableId(runId)}' does not exist`, { field: 'runId' });
  const runs = new Map<string, Promise<RunState | undefined>>([[runId, Promise.resolve(state)]]);
  const loadRun = (id: string) => {
    let loaded = runs.get(id);
    if (loaded === undefined) {
      loaded = ports.runStore.load(id);
      runs.set(id, loaded);
    }
    return loaded;
  };
  return explainInRun(ports.catalog, state, nodeId, loadRun, new Set());
}

async function explainInRun(
  catalog: CacheCatalog,
  state: RunState,
  nodeId: string,
  loadRun: (id: string) => Promise<RunState | undefined>,
  visited: Set<string>,
): Promise<NodeExplanation> {
  const needs = explainNeeds(state, nodeId); // NODE_NOT_FOUND for an unknown node
  visited.add(nodeId);
  const upstream = needs.upstream !== null && !visited.has(needs.upstream.node) && visited.size < MAX_CHAIN ? await explainInRun(catalog, state, needs.upstream.node, loadRun, visited) : undefined;
  const node = state.nodes[nodeId];
  const ownEntries = needs.ownKey === null ? [] : await catalog.list({ keys: [needs.ownKey] });
  let nearest: CacheEntrySummary | null = null;
  let nearestWriter: RunState | undefined;
  const parts = node?.cacheKeyParts ?? null;
  if (needs.nearestOf !== null && parts !== null && node?.cacheKey != null) {
    nearest = await findNearest(catalog, parts, node.cacheKey, needs.nearestOf, node.startedAt);
    if (nearest !== null) nearestWriter = await loadRun(nearest.runId);
  }
  return explainNode(state, nodeId, {
    ownEntries,
    nearest,
    ...(nearestWriter === undefined ? {} : { nearestWriter }),
    ...(upstream === undefined ? {} : { upstream }),
  });
}

/** The nearest entry of the task written before the node looked up: among its project and domain's newest entries, else among all projects'. */
async function findNearest(catalog: CacheCatalog, parts: CacheKeyParts, key: string, scope: { task: string; project: string; domain: string }, lookedUpAt: Date | null): Promise<CacheEntrySummary | null> {
  const local = await catalog.list({ task: scope.task, project: scope.project, domain: scope.domain, kind: 'output', limit: NEAREST_CANDIDATES });
  const inScope = pickNearest(parts, key, local, lookedUpAt);
  if (inScope !== null) return inScope.entry;
  const anywhere = await catalog.list({ task: scope.task, kind: 'output', limit: NEAREST_CANDIDATES });
  return pickNearest(parts, key, anywhere, lookedUpAt)?.entry ?? null;
}
