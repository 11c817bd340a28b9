import type { CacheKeyParts } from '../cache/cache-key.js';
import { signatureDigest } from '../cache/cache-key.js';
import type { CacheEntryKind, CacheEntrySummary } from '../ports/cache-catalog.js';
import type { NodeSpec } from '../spec/workflow-spec.js';
import type { CacheStatus } from '../state/cache-status.js';
import type { NodePhase } from '../state/node-phase.js';
import type { NodeExecution, RunState } from '../state/run-state.js';
import { taintingUpstream } from '../controller/core/cascade.js';
import { runNodes, type RunNodes } from '../controller/core/expand.js';
import { countKeyDifferences, keyDifferences, signatureDifferences, type KeyDifference } from './key-differences.js';
import { expiredThenWritten, explainReason } from './explain-reasons.js';
import { findNode } from './find-node.js';

/** A catalog entry as an explanation names it (no value). */
export interface EntryRef {
  key: string;
  kind: CacheEntryKind;
  project: string;
  domain: string;
  /** Provenance: the run and node that wrote it, and when. */
  runId: string;
  nodeId: string;
  createdAt: Date;
}

/** The entry a missed node is compared with: its parts, and how it ranked. */
export interface NearestEntry extends EntryRef {
  parts: CacheKeyParts;
  /** How many parts of its key differ from the node's. */
  differing: number;
  /** In the node's project and domain (entries there are preferred; others can never serve it). */
  sameScope: boolean;
}

/**
 * Why a node had the cache status it had (`mf.explain`, `memoflow cache explain`).
 * - `nearest` and `differences`: for a node that missed (MISS, and POPULATED: it missed first), the
 *   nearest entry of its task and the parts of the key that differ from it; null and [] otherwise.
 * - `writtenBy`: the entry a HIT (or FUTURE_HIT) was served from; an EVICTED node's expired entry
 *   (or the fresh one that replaced it); the entry a POPULATED node wrote.
 * - `upstream`: for SKIPPED(upstream-reran), the node whose rerun cascaded here, with its own
 *   explanation (and so on up the chain to the node that ran for a reason of its own).
 * - `recoveredFrom`: for RECOVERED, the run (and node) whose result was reused.
 */
export interface NodeExplanation {
  runId: string;
  node: string;
  task: string;
  phase: NodePhase;
  status: CacheStatus | null;
  /** The status's detail as recorded (SKIPPED: the skip reason; MISS: a corrupt entry...). */
  cacheReason: string | null;
  key: string | null;
  parts: CacheKeyParts | null;
  nearest: NearestEntry | null;
  differences: KeyDifference[];
  /** One or two sentences a person can read. */
  reason: string;
  writtenBy?: EntryRef;
  upstream?: NodeExplanation;
  /** SKIPPED(upstream-reran): how the rerun reached this node: by an input, or because its container was fed by a rerun. */
  upstreamVia?: 'input' | 'container';
  recoveredFrom?: { runId: string; nodeId: string };
}

/**
 * What explaining a node needs from the catalog and the run store (the shell fetches it, then calls
 * `explainNode`). Kept small on purpose: a node in a cascade chain needs nothing but its upstream.
 */
export interface ExplainNeeds {
  /** Entries under the node's own key are wanted (any kind): HIT, FUTURE_HIT, EVICTED, MISS, POPULATED. */
  ownKey: string | null;
  /** Entries of the task to choose the nearest from (outputs): MISS and POPULATED. */
  nearestOf: { task: string; project: string; domain: string } | null;
  /** SKIPPED(upstream-reran): the node to explain first. */
  upstream: { node: string; via: 'input' | 'container' } | null;
}

/** What the shell fetched for `explainNode`. */
export interface ExplainEvidence {
  /** Entries under the node's key (from `ExplainNeeds.ownKey`); [] when none or not asked. */
  ownEntries?: readonly CacheEntrySummary[];
  /** The nearest entry, as `pickNearest` chose it; null when the task has no other entry. */
  nearest?: CacheEntrySummary | null;
  /** The run that wrote `nearest`, if it still exists (its node's inputs and its spec say what the values and schemas were). */
  nearestWriter?: RunState;
  /** The upstream node's explanation (from `ExplainNeeds.upstream`). */
  upstream?: NodeExplanation;
}

/** Statuses that mean the node looked up and found no usable entry under its key. */
const MISSED: ReadonlySet<CacheStatus> = new Set(['MISS', 'POPULATED']);
const OWN_KEY: ReadonlySet<CacheStatus> = new Set(['HIT', 'FUTURE_HIT', 'EVICTED', 'MISS', 'POPULATED']);

/** What to fetch to explain node `nodeId` (throws NODE_NOT_FOUND for a node the run does not have). */
export function explainNeeds(state: RunState, nodeId: string): ExplainNeeds {
  return needsOf(state, nodeId, undefined);
}

/** `explainNeeds`, with the run's nodes when the caller has expanded them already (a walk of every node). */
function needsOf(state: RunState, nodeId: string, expanded: RunNodes | undefined): ExplainNeeds {
  const node = findNode(state, nodeId);
  const status = node.cacheStatus;
  const keyed = node.cacheKey !== null && node.cacheKeyParts !== null;
  return {
    ownKey: keyed && status !== null && OWN_KEY.has(status) ? node.cacheKey : null,
    nearestOf: keyed && status !== null && MISSED.has(status) && !expiredThenWritten(node) ? { task: node.task, project: state.run.project, domain: state.run.domain } : null,
    upstream: status === 'SKIPPED' && node.cacheReason === 'upstream-reran' ? rerunUpstream(state, nodeId, expanded ?? runNodes(state)) : null,
  };
}

/**
 * The nearest entry to a node's key among `candidates`: entries of the node's own project and
 * domain first (only they could ever serve it), then by fewest differing parts, then newest.
 * Entries under the node's own key are left out (its own entry, or one written since: nothing to
 * compare), and so are futures. So are entries written after `lookedUpAt` (the node's start, when
 * it looked up): they were not there to be missed (a sibling of a fan-out the same run wrote
 * afterwards, a later run's), and naming one would explain the miss by a value that came later.
 */
export function pickNearest(parts: CacheKeyParts, key: string, candidates: readonly CacheEntrySummary[], lookedUpAt: Date | null = null): { entry: CacheEntrySummary; differing: number } | null {
  let best: { entry: CacheEntrySummary; differing: number; sameScope: boolean } | null = null;
  for (const entry of candidates) {
    if (entry.key === key || entry.kind !== 'output' || entry.task !== parts.task || !isPartsObject(entry.parts)) continue;
    if (lookedUpAt !== null && entry.createdAt.getTime() > lookedUpAt.getTime()) continue;
    const sameScope = entry.project === parts.project && entry.domain === parts.domain;
    const differing = countKeyDifferences(parts, entry.parts);
    if (best === null || better({ entry, differing, sameScope }, best)) best = { entry, differing, sameScope };
  }
  return best === null ? null : { entry: best.entry, differing: best.differing };
}

/** Parts read back from a catalog row are not trusted to be an object (a corrupt or hand-edited row). */
function isPartsObject(parts: unknown): parts is CacheKeyParts {
  return typeof parts === 'object' && parts !== null && !Array.isArray(parts);
}

function better(a: { entry: CacheEntrySummary; differing: number; sameScope: boolean }, b: { entry: CacheEntrySummary; differing: number; sameScope: boolean }): boolean {
  if (a.sameScope !== b.sameScope) return a.sameScope;
  if (a.differing !== b.differing) return a.differing < b.differing;
  return a.entry.createdAt.getTime() > b.entry.createdAt.getTime();
}

/** Assembles the explanation of node `nodeId` from the run's state and what `explainNeeds` asked for. */
export function explainNode(state: RunState, nodeId: string, evidence: ExplainEvidence = {}): NodeExplanation {
  const node = findNode(state, nodeId);
  const expanded = runNodes(state);
  const spec = expanded.byId.get(nodeId);
  const needs = needsOf(state, nodeId, expanded);
  const base: NodeExplanation = {
    runId: state.run.id,
    node: nodeId,
    task: node.task,
    phase: node.phase,
    status: node.cacheStatus,
    cacheReason: node.cacheReason,
    key: node.cacheKey,
    parts: node.cacheKeyParts,
    nearest: null,
    differences: [],
    reason: '',
  };
  const own = ownEntry(node, evidence.ownEntries ?? []);
  if (own !== undefined) base.writtenBy = own;
  const nearest = needs.nearestOf !== null && node.cacheKeyParts !== null ? (evidence.nearest ?? null) : null;
  if (nearest !== null && node.cacheKeyParts !== null) {
    base.nearest = nearestRef(node.cacheKeyParts, nearest);
    base.differences = differencesFrom(node, spec, nearest, evidence.nearestWriter);
  }
  if (needs.upstream !== null) {
    base.upstreamVia = needs.upstream.via;
    if (evidence.upstream !== undefined) base.upstream = evidence.upstream;
  }
  const recovered = node.cacheStatus === 'RECOVERED' ? recoveredFrom(state, node) : undefined;
  if (recovered !== undefined) base.recoveredFrom = recovered;
  base.reason = explainReason({ state, node, spec, explanation: base, upstreamNode: needs.upstream?.node ?? null, ownEntries: evidence.ownEntries ?? [] });
  return base;
}

/**
 * The node a rerun reached this node from: the first input that reads a rerun node's data (the
 * cascade rule, as `decide` applied it), else its container, when the container was itself fed by a
 * rerun (its children then run without a lookup).
 */
function rerunUpstream(state: RunState, nodeId: string, nodes: RunNodes): { node: string; via: 'input' | 'container' } | null {
  const spec = nodes.byId.get(nodeId);
  if (spec !== undefined) {
    const culprit = taintingUpstream(spec, state);
    if (culprit !== null && culprit !== nodeId) return { node: culprit, via: 'input' };
  }
  const parent = nodes.parentOf.get(nodeId);
  const container = parent === undefined ? undefined : state.nodes[parent];
  if (parent !== undefined && container?.cacheStatus === 'SKIPPED' && container.cacheReason === 'upstream-reran') return { node: parent, via: 'container' };
  return null;
}

/** The entry under the node's key that matters for its status: the one served, expired, or written. */
function ownEntry(node: NodeExecution, entries: readonly CacheEntrySummary[]): EntryRef | undefined {
  const kind: CacheEntryKind = node.cacheStatus === 'FUTURE_HIT' ? 'future' : 'output';
  const entry = entries.find((e) => e.key === node.cacheKey && e.kind === kind);
  if (entry === undefined) return undefined;
  // A MISS names an entry written since elsewhere (explainReason says so), never as its writer.
  if (node.cacheStatus === 'MISS') return undefined;
  return entryRef(entry);
}

function entryRef(entry: CacheEntrySummary): EntryRef {
  return { key: entry.key, kind: entry.kind, project: entry.project, domain: entry.domain, runId: entry.runId, nodeId: entry.nodeId, createdAt: entry.createdAt };
}

function nearestRef(parts: CacheKeyParts, entry: CacheEntrySummary): NearestEntry {
  return {
    ...entryRef(entry),
    parts: entry.parts,
    differing: countKeyDifferences(parts, entry.parts),
    sameScope: entry.project === parts.project && entry.domain === parts.domain,
  };
}

/**
 * The parts in which the node's key differs from `entry`'s, with the values and schemas that
 * changed where the writer run still has them: its node's inputs (only if that node's key is the
 * entry's, so they are the values the entry was keyed by) and its spec's signature for the node
 * (only if it digests to the entry's signature part).
 */
function differencesFrom(node: NodeExecution, spec: NodeSpec | undefined, entry: CacheEntrySummary, writer: RunState | undefined): KeyDifference[] {
  const parts = node.cacheKeyParts;
  if (parts === null) return [];
  const writerNode = writer !== undefined && Object.hasOwn(writer.nodes, entry.nodeId) ? writer.nodes[entry.nodeId] : undefined;
  const writerValues = writerNode !== undefined && writerNode.cacheKey === entry.key ? writerNode.inputs : null;
  const differences = keyDifferences(parts, entry.parts, { now: node.inputs, was: writerValues });
  const at = differences.findIndex((d) => d.part === 'signature');
  if (at === -1) return differences;
  const nowSignature = spec !== undefined && signatureDigest(spec.signature) === parts.signature ? spec.signature : undefined;
  const writerSpec = writer === undefined ? undefined : runNodes(writer).byId.get(entry.nodeId);
  const wasSignature = writerSpec !== undefined && signatureDigest(writerSpec.signature) === entry.parts.signature ? writerSpec.signature : undefined;
  if (nowSignature === undefined || wasSignature === undefined) return differences;
  const detailed = signatureDifferences(nowSignature, wasSignature);
  if (detailed.length === 0) return differences;
  return [...differences.slice(0, at), ...detailed, ...differences.slice(at + 1)];
}

/** A RECOVERED node's source: the run its result was reused from (the reuse plan's run, or the one its reason names). */
function recoveredFrom(state: RunState, node: NodeExecution): { runId: string; nodeId: string } | undefined {
  const named = /^from run (\S+)/.exec(node.cacheReason ?? '')?.[1];
  const runId = named ?? state.run.options.reuse?.fromRun;
  return runId === undefined ? undefined : { runId, nodeId: node.nodeId };
}
