import { computeCacheKey } from '../../../cache/cache-key.js';
import type { ErrorInfo } from '../../../errors.js';
import type { Json, NodeValue } from '../../../json.js';
import type { CacheEntry, CacheEntryKind, NewCacheEntry } from '../../../ports/cache-catalog.js';
import type { AttemptResult, TaskAttempt } from '../../../ports/task-dispatcher.js';
import { validateSpec } from '../../../spec/validate-spec.js';
import type { WorkflowSpec } from '../../../spec/workflow-spec.js';
import { newRunState, pendingExecution } from '../../../state/new-run.js';
import type { NodeExecution, RunState } from '../../../state/run-state.js';
import { decide, type Decision } from '../../core/decide.js';
import { runNodes } from '../../core/expand.js';
import type { CacheLookup, Command, EngineEvent } from '../../vocabulary/commands.js';
import type { LookupOutcome, RunEvent } from '../../vocabulary/events.js';

/*
 * States, catalog answers and attempt results for the handlers' unit tests: a run of one or two
 * nodes, put in the phase a handler method expects, and a small harness that drives such a run
 * through `decide` the way the shell does.
 */

export const T0 = new Date('2025-03-01T12:00:00.000Z');
export const RUN = 'r1';

/** A new run of `spec` (validated), every node pending. */
export function runState(spec: WorkflowSpec, inputs: { [name: string]: NodeValue } = {}): RunState {
  return newRunState({ id: RUN, spec: validateSpec(spec), inputs, project: 'demo', domain: 'dev', options: { overwriteCache: false }, now: T0 });
}

/** `state` with node `id` changed (a new record, as decide makes them). */
export function withNode(state: RunState, id: string, patch: Partial<NodeExecution>): RunState {
  const node = state.nodes[id];
  if (node === undefined) throw new Error(`no node ${id}`);
  state.nodes[id] = { ...node, ...patch };
  return state;
}

/** Adds a container's child `id` (a record as expansion creates it, then `patch`). */
export function withChild(state: RunState, id: string, task: string, patch: Partial<NodeExecution>): RunState {
  state.nodes[id] = { ...pendingExecution(RUN, id, task), ...patch };
  return state;
}

/**
 * Node `id` started with `inputs` as decide starts a cached node: its key and parts computed from
 * them, looking up (override the phase with `patch`).
 */
export function started(state: RunState, id: string, inputs: { [name: string]: NodeValue }, patch: Partial<NodeExecution> = {}): RunState {
  const spec = runNodes(state).byId.get(id);
  if (spec === undefined) throw new Error(`no spec of ${id}`);
  let keyed: Partial<NodeExecution> = { cacheKey: null, cacheKeyParts: null };
  if (spec.cache !== null && spec.cache.enabled) {
    const { key, parts } = computeCacheKey({ project: 'demo', domain: 'dev', task: spec.task, signature: spec.signature, cache: spec.cache, inputs });
    keyed = { cacheKey: key, cacheKeyParts: parts };
  }
  return withNode(state, id, { phase: 'looking-up', inputs, startedAt: T0, ...keyed, ...patch });
}

/** The catalog's entry of `kind` for node `id` under its key (another run's, a minute old unless told). */
export function entryOf(state: RunState, id: string, kind: CacheEntryKind, value: Json, options: { createdAt?: Date; runId?: string; durationMs?: number | null } = {}): CacheEntry {
  const node = state.nodes[id];
  if (node?.cacheKey == null || node.cacheKeyParts === null) throw new Error(`node ${id} has no key`);
  const entry: NewCacheEntry = { key: node.cacheKey, kind, project: 'demo', domain: 'dev', task: node.task, parts: node.cacheKeyParts, value, valueHash: null, runId: options.runId ?? 'r0', nodeId: id };
  return { ...entry, durationMs: options.durationMs ?? null, createdAt: options.createdAt ?? new Date(T0.getTime() - 60_000) };
}

export function hitOf(state: RunState, id: string, kind: CacheEntryKind, value: Json, options: { createdAt?: Date; runId?: string; durationMs?: number | null } = {}): LookupOutcome {
  const entry = entryOf(state, id, kind, value, options);
  return { nodeId: id, key: entry.key, kind, outcome: 'hit', entry };
}

export function missOf(state: RunState, id: string, kind: CacheEntryKind): LookupOutcome {
  return { nodeId: id, key: state.nodes[id]?.cacheKey ?? '', kind, outcome: 'miss' };
}

/** A result of node `id`'s current attempt. */
export function okResult(state: RunState, id: string, output: Json, outputHash: string | null = null): AttemptResult {
  const attempt = state.nodes[id]?.attempts ?? 0;
  return { attemptId: `${RUN}-${id}-${attempt}`, runId: RUN, nodeId: id, attempt, startedAt: T0, finishedAt: T0, ok: true, output, outputHash };
}

export function failedResult(state: RunState, id: string, options: { retryable?: boolean; message?: string } = {}): AttemptResult & { ok: false } {
  const attempt = state.nodes[id]?.attempts ?? 0;
  const error: ErrorInfo = { name: 'Error', message: options.message ?? `boom in ${id}`, retryable: options.retryable ?? true };
  return { attemptId: `${RUN}-${id}-${attempt}`, runId: RUN, nodeId: id, attempt, startedAt: T0, finishedAt: T0, ok: false, error };
}

/** Drives a run through `decide` as the shell does: each decision's state is the next one's. */
export class DecideRun {
  state: RunState;
  last!: Decision;

  constructor(spec: WorkflowSpec, inputs: { [name: string]: NodeValue } = {}) {
    this.state = runState(spec, inputs);
  }

  feed(...events: RunEvent[]): Decision {
    this.last = decide(this.state, events, T0);
    if (this.last.changed) this.state = { run: { ...this.last.state.run, version: this.state.run.version + 1 }, nodes: this.last.state.nodes };
    return this.last;
  }

  tick(): Decision {
    return this.feed({ type: 'run:tick' });
  }

  looked(...results: LookupOutcome[]): Decision {
    return this.feed({ type: 'cache:looked-up', results });
  }

  finished(result: AttemptResult): Decision {
    return this.feed({ type: 'attempt:finished', result });
  }

  node(id: string): NodeExecution {
    const node = this.state.nodes[id];
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }
}

type CommandOf<T extends Command['type']> = Extract<Command, { type: T }>;
const commandOf = <T extends Command['type']>(decision: Decision, type: T): CommandOf<T> | undefined => decision.commands.find((c): c is CommandOf<T> => c.type === type);

export const lookupsOf = (decision: Decision): CacheLookup[] => commandOf(decision, 'LookupCache')?.lookups ?? [];
export const attemptsOf = (decision: Decision): TaskAttempt[] => commandOf(decision, 'DispatchTask')?.attempts ?? [];
export const writesOf = (decision: Decision): NewCacheEntry[] => commandOf(decision, 'WriteCache')?.entries ?? [];
export const eventsOf = (decision: Decision): EngineEvent[] => decision.commands.flatMap((c) => (c.type === 'EmitEvent' ? [c.event] : []));
