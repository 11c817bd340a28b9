import type { CacheEntrySummary } from '../ports/cache-catalog.js';
import type { NodeSpec } from '../spec/workflow-spec.js';
import type { NodeExecution, RunState } from '../state/run-state.js';
import type { KeyDifference } from './key-differences.js';
import type { NodeExplanation } from './explain-node.js';

export interface ReasonInput {
  state: RunState;
  node: NodeExecution;
  spec: NodeSpec | undefined;
  explanation: NodeExplanation;
  upstreamNode: string | null;
  ownEntries: readonly CacheEntrySummary[];
}

/**
 * A node that found its entry expired (EVICTED) and then wrote a fresh one is POPULATED, its reason
 * still saying it expired: it is explained by its key's own entry, not by a nearest one.
 */
export function expiredThenWritten(node: NodeExecution): boolean {
  return node.cacheStatus === 'POPULATED' && node.cacheReason !== null && node.cacheReason.startsWith('entry expired');
}

/** The sentence `explain` puts in `reason`: why the node has its status, in a person's words. */
export function explainReason(input: ReasonInput): string {
  const { node, explanation } = input;
  const status = node.cacheStatus;
  switch (status) {
    case null:
      return notStarted(node);
    case 'HIT':
      return hitReason(input);
    case 'MISS':
    case 'POPULATED':
      return expiredThenWritten(node) ? evictedReason(input) : missReason(input);
    case 'SKIPPED':
      return skippedReason(input);
    case 'DISABLED':
      return disabledReason(input.spec);
    case 'RECOVERED': {
      const from = explanation.recoveredFrom?.runId ?? 'an earlier run';
      const how = input.state.run.options.reuse?.reason === 'retry' ? `this run retries run ${from}` : input.state.run.options.reuse?.reason === 'resume' ? `this run resumes run ${from}` : `reused from run ${from}`;
      return `${how}: node '${node.nodeId}' was reused from run ${from} (its task definition and inputs were unchanged), not executed and not looked up.`;
    }
    case 'EVICTED':
      return evictedReason(input);
    case 'FUTURE_HIT': {
      const by = explanation.writtenBy;
      const from = by === undefined ? `run ${/^sub-workflow from run (\S+)/.exec(node.cacheReason ?? '')?.[1] ?? '?'}` : `run ${by.runId} (node '${by.nodeId}', ${iso(by.createdAt)})`;
      return `its output was not in the catalog, but its compiled sub-workflow (future) was, written by ${from}: the dynamic body did not run again; its children were looked up one by one.`;
    }
    case 'WAITING': {
      const owner = node.waitedFor;
      return `waiting for a serialized reservation on its key held by ${owner == null ? 'another execution' : `run ${owner.runId}, node '${owner.nodeId}'`}; it ends HIT once that entry is written, or takes over if the owner fails.`;
    }
    case 'LOOKUP_FAILURE':
      return `the catalog lookup failed (${node.cacheReason ?? 'no detail recorded'}), so the node executed without knowing whether an entry existed.`;
    case 'PUT_FAILURE':
      return `the node executed but its result was not cached: ${node.cacheReason ?? 'the cache write failed'}.`;
  }
}

function notStarted(node: NodeExecution): string {
  switch (node.phase) {
    case 'aborted':
      return 'never started: an upstream node failed, so no key was computed and no lookup happened.';
    case 'cancelled':
      return 'never started: the run was cancelled before this node was ready.';
    case 'pending':
    case 'looking-up':
    case 'dispatched':
    case 'expanded':
    case 'writing':
    case 'succeeded':
    case 'failed':
      return `no cache status yet: the node is ${node.phase} (its key is computed when its inputs are ready).`;
  }
}

function hitReason(input: ReasonInput): string {
  const { node, explanation } = input;
  const servedFrom = /^from run (\S+)/.exec(node.cacheReason ?? '')?.[1];
  const by = explanation.writtenBy;
  const waited = node.waitedFor == null ? '' : ` It had waited for the reservation of run ${node.waitedFor.runId}, node '${node.waitedFor.nodeId}', which wrote it.`;
  if (by !== undefined && (servedFrom === undefined || servedFrom === by.runId)) {
    return `served from the catalog: the entry under this key was written by run ${by.runId}, node '${by.nodeId}', at ${iso(by.createdAt)}; the task did not execute.${waited}`;
  }
  const gone = by === undefined ? 'that entry is no longer in the catalog' : `that entry has since been replaced by run ${by.runId}'s`;
  return `served from the catalog: the entry under this key was written by run ${servedFrom ?? '?'} (${gone}); the task did not execute.${waited}`;
}

function missReason(input: ReasonInput): string {
  const { node, explanation, state } = input;
  const task = `'${node.task}'`;
  const scope = `${state.run.project}/${state.run.domain}`;
  const opening = node.cacheStatus === 'POPULATED' ? 'missed, executed, and wrote its entry' : 'missed';
  const unusable = node.cacheReason === null ? '' : ` (${node.cacheReason})`;
  const since = entryWrittenSince(input);
  const nearest = explanation.nearest;
  if (nearest === null) {
    return `${opening}${unusable}: the catalog has no entry of task ${task} to compare with, in any project or domain (other than this node's own), written before it looked up.${since}`;
  }
  const where = nearest.sameScope
    ? `the nearest entry of task ${task}`
    : `the catalog has no other entry of task ${task} in ${scope}; the nearest, in ${nearest.project}/${nearest.domain},`;
  const what = explanation.differences.length === 0 ? 'has a key differing in no part this release can name' : `differs in ${describeDifferences(explanation.differences)}`;
  return `${opening}${unusable}: ${where} (written by run ${nearest.runId}, node '${nearest.nodeId}', at ${iso(nearest.createdAt)}) ${what}.${since}`;
}

/** For a MISS: an entry under its key that appeared after its lookup (another node wrote it since). */
function entryWrittenSince(input: ReasonInput): string {
  const { node } = input;
  if (node.cacheStatus !== 'MISS') return '';
  const entry = input.ownEntries.find((e) => e.key === node.cacheKey && e.kind === 'output');
  if (entry === undefined || (entry.runId === node.runId && entry.nodeId === node.nodeId)) return '';
  return ` An entry under this key exists now: run ${entry.runId}, node '${entry.nodeId}' wrote it at ${iso(entry.createdAt)}.`;
}

function skippedReason(input: ReasonInput): string {
  const { node, explanation, state } = input;
  switch (node.cacheReason) {
    case 'overwrite':
      return 'executed without a lookup: the run was started with overwrite-cache (--overwrite-cache), so every cacheable node executes and overwrites its entry.';
    case 'resume': {
      const reuse = state.run.options.reuse;
      const point = reuse?.resumePoint;
      return point === node.nodeId
        ? `executed without a lookup: this node is the resume point (--resume-from ${reuse?.fromRun ?? '?'}:${point}), which reruns with everything downstream of it.`
        : `executed without a lookup: it is inside the resume point '${point ?? '?'}' (--resume-from ${reuse?.fromRun ?? '?'}:${point ?? '?'}).`;
    }
    case 'upstream-reran': {
      const upstream = input.upstreamNode;
      if (upstream === null) return 'executed without a lookup because an upstream node reran (the cascade rule); which one cannot be told from the run as stored.';
      const status = explanation.upstream?.status ?? state.nodes[upstream]?.cacheStatus ?? null;
      const shown = status === 'SKIPPED' ? `SKIPPED(${explanation.upstream?.cacheReason ?? state.nodes[upstream]?.cacheReason ?? ''})` : (status ?? 'no status');
      if (explanation.upstreamVia === 'container') {
        return `executed without a lookup: its container '${upstream}' (${shown}) was fed by a rerun node, so its children run without a lookup (the cascade rule).`;
      }
      return `executed without a lookup: upstream node '${upstream}' executed (${shown}) and its output is not content-hashed, so this node reran (the cascade rule: an upstream rerun may change data keys cannot see).`;
    }
    case null:
    default:
      return `executed without a lookup (${node.cacheReason ?? 'no reason recorded'}).`;
  }
}

function disabledReason(spec: NodeSpec | undefined): string {
  if (spec === undefined) return 'caching is off for this node.';
  if (spec.cache === null) return `caching is off for this node: task '${spec.task}' declares no cache (give it cache: { version }).`;
  return 'caching is off for this node: its cache is disabled (cache: { enabled: false }).';
}

function evictedReason(input: ReasonInput): string {
  const { node, spec, explanation } = input;
  const ttlMs = spec?.cache?.ttlMs;
  const ttl = ttlMs === undefined ? 'its ttl' : `its ttl (${formatMs(ttlMs)})`;
  const by = explanation.writtenBy;
  if (by !== undefined && by.runId === node.runId && by.nodeId === node.nodeId) {
    return `the entry under this key was older than ${ttl}, so it was a miss; this node executed and its fresh result replaced the entry at ${iso(by.createdAt)}.`;
  }
  if (by !== undefined && node.startedAt !== null && by.createdAt.getTime() <= node.startedAt.getTime()) {
    const age = node.startedAt.getTime() - by.createdAt.getTime();
    return `the entry under this key, written by run ${by.runId}, node '${by.nodeId}', at ${iso(by.createdAt)}, was ${formatMs(age)} old when looked up, older than ${ttl}, so it was a miss and the node executed.`;
  }
  return `the entry under this key was older than ${ttl}, so it was a miss and the node executed (${node.cacheReason ?? 'expired'}).`;
}

/** "input 'rows' ([1,2] → [1,3]), version ('1' → '2'), signature (output schema)". */
export function describeDifferences(differences: readonly KeyDifference[]): string {
  return differences.map(describeDifference).join(', ');
}

export function describeDifference(difference: KeyDifference): string {
  const change = valueChange(difference);
  switch (difference.part) {
    case 'input': {
      const what = difference.change === 'added' ? ' (added)' : difference.change === 'removed' ? ' (removed)' : '';
      return `input '${difference.name ?? '?'}'${what}${change}`;
    }
    case 'signature': {
      if (difference.name === undefined) return 'signature';
      const name = difference.name;
      const what = name === 'output' ? 'output schema' : name.startsWith('inputs.') ? `schema of input '${name.slice('inputs.'.length)}'${difference.change === 'added' ? ' (added)' : difference.change === 'removed' ? ' (removed)' : ''}` : name;
      return `signature (${what})`;
    }
    case 'project':
    case 'domain':
    case 'task':
    case 'version':
    case 'format':
      return `${difference.part}${change}`;
  }
}

function valueChange(difference: KeyDifference): string {
  if (difference.was === undefined && difference.now === undefined) return '';
  const text = (value: unknown) => (value === undefined ? '?' : JSON.stringify(value));
  if (difference.change === 'added') return difference.now === undefined ? '' : ` (now ${text(difference.now)})`;
  if (difference.change === 'removed') return difference.was === undefined ? '' : ` (was ${text(difference.was)})`;
  return ` (${text(difference.was)} → ${text(difference.now)})`;
}

/** A duration as people write it: `28d`, `12h`, `90s`, `1.5s`, `250 ms`. */
export function formatMs(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) {
    if (ms >= size) return `${Number((ms / size).toFixed(1))}${unit}`;
  }
  return `${Math.round(ms)} ms`;
}

function iso(date: Date): string {
  return Number.isNaN(date.getTime()) ? String(date) : date.toISOString();
}
