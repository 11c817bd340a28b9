import { runNodes, type CacheKeyParts, type CacheSettings, type ErrorInfo, type NodeKind, type NodeValue, type RunState } from '@memoflow/engine';
import { nodeState, type NodeState } from './graph.js';
import { previewJson, type Preview } from './preview.js';

export interface ValuePreview {
  preview: Preview;
  /** The `hashWith` hash the value is keyed by, when its type declares one. */
  hash: string | null;
}

/** What a node's panel shows (explain comes from its own route). */
export interface NodeDetail extends NodeState {
  runId: string;
  task: string;
  kind: NodeKind;
  parent: string | null;
  children: string[];
  cacheKey: string | null;
  keyParts: CacheKeyParts | null;
  /** The node's cache settings as the spec resolved them (null: caching off). */
  cache: CacheSettings | null;
  retries: number;
  timeoutMs: number | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  waitedFor: { runId: string; nodeId: string } | null;
  error: ErrorInfo | null;
  /** A cache write being retried, or null. */
  cacheWriteRetry: { failures: number; lastError: string } | null;
  /** Null until the node started (its inputs are resolved then). */
  inputs: { [name: string]: ValuePreview } | null;
  output: ValuePreview | null;
}

function preview(value: NodeValue): ValuePreview {
  return { preview: previewJson(value.value), hash: value.hash ?? null };
}

/** The panel of `nodeId`, or undefined when the run has no such node. Values are previews only. */
export function nodeDetail(state: RunState, nodeId: string): NodeDetail | undefined {
  const execution = Object.hasOwn(state.nodes, nodeId) ? state.nodes[nodeId] : undefined;
  if (execution === undefined) return undefined;
  const { byId, parentOf } = runNodes(state);
  const spec = byId.get(nodeId);
  if (spec === undefined) return undefined;
  const children = [...parentOf].filter(([, parent]) => parent === nodeId).map(([child]) => child);
  return {
    ...nodeState(execution),
    runId: state.run.id,
    task: execution.task,
    kind: spec.kind,
    parent: parentOf.get(nodeId) ?? null,
    children,
    cacheKey: execution.cacheKey,
    keyParts: execution.cacheKeyParts,
    cache: spec.cache,
    retries: spec.retries,
    timeoutMs: spec.timeoutMs,
    startedAt: execution.startedAt,
    finishedAt: execution.finishedAt,
    waitedFor: execution.waitedFor ?? null,
    error: execution.error,
    cacheWriteRetry: execution.cacheWriteRetry == null ? null : { failures: execution.cacheWriteRetry.failures, lastError: execution.cacheWriteRetry.lastError },
    inputs: execution.inputs === null ? null : Object.fromEntries(Object.entries(execution.inputs).map(([name, value]) => [name, preview(value)])),
    output: execution.output === null ? null : preview(execution.output),
  };
}
