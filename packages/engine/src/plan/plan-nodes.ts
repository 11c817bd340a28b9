import { taintingUpstream } from '../controller/core/cascade.js';
import { memoizedDependencies } from '../controller/core/dependencies.js';
import { runNodes } from '../controller/core/expand.js';
import type { RunIndex } from '../controller/core/run-index.js';
import type { CacheEntry, CacheEntryKind } from '../ports/cache-catalog.js';
import { bindingDependencies, type NodeSpec } from '../spec/workflow-spec.js';
import type { SkipReason } from '../state/cache-status.js';
import { hasOutput } from '../state/node-phase.js';
import type { RunState } from '../state/run-state.js';
import type { Knowledge } from './knowledge.js';
import type { PendingPrediction } from './pending-predictions.js';
import type { SeenStatus } from './planner.js';
import type { PlannedEntry, PlannedNode, PlanPrediction } from './workflow-plan.js';

export interface PlanNodesInput {
  /** The scratch run as the planner left it. */
  state: RunState;
  index: RunIndex;
  seen: ReadonlyMap<string, SeenStatus>;
  /** Statuses known for nodes the scratch run could not start (pending-predictions.ts). */
  pending: ReadonlyMap<string, PendingPrediction>;
  unknownKeys: ReadonlySet<string>;
  levelOf: ReadonlyMap<string, number>;
  entry(nodeId: string, kind: CacheEntryKind): CacheEntry | undefined;
  knowledge: Knowledge;
}

/** Each node of the planned run with its prediction and reason, in run order. */
export function planNodes(input: PlanNodesInput): PlannedNode[] {
  const { order, parentOf } = runNodes(input.state);
  const planned = new Map<string, PlannedNode>();
  for (const spec of order) {
    const node = planNode(input, spec, parentOf.get(spec.id) ?? null, planned);
    // A container whose status is known though it could not start: its children come later.
    const unexpanded = input.pending.has(spec.id) && spec.kind !== 'task' && node.prediction !== 'UNKNOWN';
    planned.set(spec.id, unexpanded ? { ...node, reason: `${node.reason}; its children are not planned: it waits on '${node.upstream ?? waitingOn(spec, input.state) ?? '?'}', whose outcome is not known` } : node);
  }
  return [...planned.values()];
}

function planNode(input: PlanNodesInput, spec: NodeSpec, parent: string | null, planned: ReadonlyMap<string, PlannedNode>): PlannedNode {
  const { state, knowledge } = input;
  const node = state.nodes[spec.id];
  const key = node !== undefined && knowledge.keyKnown(spec.id) ? node.cacheKey : null;
  const level = input.levelOf.get(spec.id) ?? null;
  const needs = [...memoizedDependencies(spec)];
  // Fields in the order a reader of `--json` wants them: what, then why, then the details.
  const predict = (prediction: PlanPrediction, reason: string, extra: Partial<Pick<PlannedNode, 'skipReason' | 'key' | 'upstream' | 'entry'>> = {}): PlannedNode => ({
    node: spec.id,
    task: spec.task,
    kind: spec.kind,
    prediction,
    skipReason: extra.skipReason ?? null,
    reason,
    key: extra.key === undefined ? key : extra.key,
    upstream: extra.upstream ?? null,
    entry: extra.entry ?? null,
    parent,
    needs,
    level,
  });
  if (input.unknownKeys.has(spec.id)) {
    const upstream = knowledge.unknownUpstream(spec.id, 'key');
    return predict('UNKNOWN', `its key is computed from the output of '${upstream ?? '?'}', which runs first and is content-hashed (hashWith): not known until it runs, so this may hit or miss`, { upstream, key: null });
  }
  const pending = input.pending.get(spec.id);
  const seen = input.seen.get(spec.id) ?? pending;
  if (seen === undefined) return waiting(spec, state, planned, predict);
  switch (seen.status) {
    case 'HIT': {
      const entry = entryOf(input.entry(spec.id, 'output'));
      return predict('HIT', entry === null ? 'served from the catalog' : `entry written by ${written(entry, spec.id)}`, { entry });
    }
    case 'FUTURE_HIT': {
      const entry = entryOf(input.entry(spec.id, 'future'));
      const children = node?.subWorkflow?.nodes.length ?? 0;
      const from = entry === null ? 'from the catalog' : `written by ${written(entry, spec.id)}`;
      return predict('FUTURE_HIT', `no output entry; its compiled sub-workflow ${from} replays without running the body: ${children} child node(s) planned as ${spec.id}.*`, { entry });
    }
    case 'EVICTED': {
      const entry = entryOf(input.entry(spec.id, 'output'));
      const ttl = `${spec.cache?.ttlMs ?? 0} ms`;
      return predict('EVICTED', entry === null ? `entry past its ttl (${ttl})` : `entry written by ${written(entry, spec.id)} is past its ttl (${ttl}): it runs and replaces it`, { entry });
    }
    case 'MISS': {
      const why = seen.reason ?? 'no entry under this key';
      return predict('MISS', spec.kind === 'dynamic' ? `${why}; its body runs, and its children are not known until then` : why);
    }
    case 'SKIPPED':
      return skipped(spec, parent, seen.reason as SkipReason, pending === undefined ? taintingUpstream(spec, state) : pending.culprit, planned, predict);
    case 'DISABLED':
      return predict('DISABLED', spec.kind === 'dynamic' ? 'caching is off for this node; its body runs, and its children are not known until then' : 'caching is off for this node');
    case 'POPULATED':
    case 'PUT_FAILURE':
    case 'LOOKUP_FAILURE':
    case 'WAITING':
    case 'RECOVERED':
      // Not a first status a plan can see (no reuse plan, no contention, no failing catalog).
      return predict('UNKNOWN', `the planner saw status ${seen.status}`);
  }
}

type Predict = (prediction: PlanPrediction, reason: string, extra?: Partial<Pick<PlannedNode, 'skipReason' | 'key' | 'upstream' | 'entry'>>) => PlannedNode;

function skipped(spec: NodeSpec, parent: string | null, skipReason: SkipReason, culprit: string | null, planned: ReadonlyMap<string, PlannedNode>, predict: Predict): PlannedNode {
  if (skipReason === 'overwrite') return predict('SKIPPED', 'overwrite-cache: it runs without a lookup and overwrites its entry', { skipReason });
  if (culprit !== null) {
    const status = planned.get(culprit)?.prediction;
    return predict('SKIPPED', `upstream '${culprit}' runs${status === undefined ? '' : ` (${status})`}: the cascade runs this without a lookup`, { skipReason, upstream: culprit });
  }
  return predict('SKIPPED', `its container '${parent ?? '?'}' is fed by a node that runs: the cascade runs this without a lookup`, { skipReason, upstream: parent });
}

/** A node the planned run never started: it waits on a node whose outcome or output is not known. */
function waiting(spec: NodeSpec, state: RunState, planned: ReadonlyMap<string, PlannedNode>, predict: Predict): PlannedNode {
  const blocker = waitingOn(spec, state);
  if (blocker === undefined) return predict('UNKNOWN', 'not decided before the run');
  const upstream = planned.get(blocker);
  const what =
    upstream?.kind === 'dynamic' && upstream.prediction !== 'UNKNOWN' && upstream.prediction !== 'FUTURE_HIT'
      ? `the dynamic node '${blocker}', whose body runs first: what it returns is not known before`
      : `'${blocker}', which is UNKNOWN`;
  return predict('UNKNOWN', `waits on ${what}`, { upstream: blocker });
}

/** The first upstream node without an output yet. */
function waitingOn(spec: NodeSpec, state: RunState): string | undefined {
  const deps = Object.values(spec.inputs).flatMap((binding) => [...bindingDependencies(binding)]);
  return deps.find((id) => !hasOutput(state.nodes[id]?.phase ?? 'pending'));
}

function entryOf(entry: CacheEntry | undefined): PlannedEntry | null {
  return entry === undefined ? null : { runId: entry.runId, nodeId: entry.nodeId, createdAt: entry.createdAt };
}

/** Who wrote an entry and when; the writing node is named only when it is not this one (another workflow's node of the same task). */
function written(entry: PlannedEntry, nodeId: string): string {
  return `run ${entry.runId}${entry.nodeId === nodeId ? '' : ` (node ${entry.nodeId})`} at ${entry.createdAt.toISOString()}`;
}
