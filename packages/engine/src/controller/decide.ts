import { computeCacheKey } from '../cache/cache-key.js';
import type { ErrorInfo } from '../errors.js';
import type { Json, NodeValue } from '../json.js';
import type { NewCacheEntry } from '../ports/cache-catalog.js';
import { attemptId, type AttemptResult, type TaskAttempt } from '../ports/task-dispatcher.js';
import type { NodeSpec, TaskNodeSpec } from '../spec/workflow-spec.js';
import { memoizedDependencies } from './dependencies.js';
import type { CacheStatus, SkipReason } from '../state/cache-status.js';
import { hasOutput, isTerminal, transition, type NodePhase } from '../state/node-phase.js';
import type { NodeExecution, RunState } from '../state/run-state.js';
import { isExpired } from './cache-expiry.js';
import { taintingUpstream } from './cascade.js';
import type { Command, EngineEvent, EngineEventType } from './commands.js';
import type { LookupOutcome, RunEvent } from './events.js';
import { resolveBinding } from './resolve-binding.js';

export interface Decision {
  /** The next state; `state.run.version` is still the loaded one (the store bumps it on save). */
  state: RunState;
  commands: Command[];
  /** Node ids whose execution record changed: what the save writes. */
  changedNodes: string[];
  /** Whether anything (run or nodes) changed and must be saved before the commands run. */
  changed: boolean;
}

/**
 * The controller's decision function: applies events to a run's state, advances every node that
 * became ready, and returns the effects to perform. Pure: no I/O, time comes from `now`. The shell
 * saves the returned state before it acts, so a crash between the two repeats work safely (see
 * `recoverCommands`).
 */
export function decide(state: RunState, events: readonly RunEvent[], now: Date): Decision {
  const draft = new Draft(state, now);
  for (const event of events) draft.apply(event);
  draft.advance();
  return draft.finish();
}

/** Mutable working copy for one decision; node records are copied on first write. */
class Draft {
  private readonly nodes: { [nodeId: string]: NodeExecution };
  private readonly specs: Map<string, NodeSpec>;
  private readonly changed = new Set<string>();
  private runChanged = false;
  private readonly lookups: { nodeId: string; key: string }[] = [];
  private readonly attempts: TaskAttempt[] = [];
  private readonly writes: string[] = [];
  private readonly emitted: Command[] = [];
  private run: RunState['run'];

  constructor(
    private readonly original: RunState,
    private readonly now: Date,
  ) {
    this.nodes = { ...original.nodes };
    this.run = original.run;
    this.specs = new Map(original.run.spec.nodes.map((node) => [node.id, node]));
  }

  apply(event: RunEvent): void {
    if (this.run.status !== 'running') return;
    switch (event.type) {
      case 'run:tick':
        return;
      case 'cache:looked-up':
        for (const result of event.results) this.applyLookup(result);
        return;
      case 'attempt:finished':
        this.applyAttempt(event.result);
        return;
      case 'cache:written':
        for (const nodeId of event.nodeIds) this.applyWritten(nodeId, event.ok ? null : event.reason);
        return;
    }
  }

  /** Moves every pending node whose upstream is settled; in spec (topological) order, so one pass suffices. */
  advance(): void {
    if (this.run.status !== 'running') return;
    for (const spec of this.run.spec.nodes) {
      const node = this.node(spec.id);
      if (node.phase !== 'pending') continue;
      const upstream = memoizedDependencies(spec).map((id) => this.node(id));
      if (upstream.some((u) => u.phase === 'failed' || u.phase === 'aborted')) {
        this.update(spec.id, { phase: 'aborted', finishedAt: this.now });
        this.emit('node:aborted', spec.id, { message: 'an upstream node failed' }, 'warn');
        continue;
      }
      if (upstream.every((u) => hasOutput(u.phase))) this.start(spec);
    }
    this.finishRunIfDone();
  }

  finish(): Decision {
    const commands: Command[] = [];
    if (this.lookups.length > 0) commands.push({ type: 'LookupCache', lookups: this.lookups });
    if (this.attempts.length > 0) commands.push({ type: 'DispatchTask', attempts: this.attempts });
    if (this.writes.length > 0) {
      const state = this.state();
      commands.push({ type: 'WriteCache', nodeIds: this.writes, entries: this.writes.map((id) => cacheEntryFor(state, id)) });
    }
    commands.push(...this.emitted);
    const changedNodes = [...this.changed];
    return { state: this.state(), commands, changedNodes, changed: this.runChanged || changedNodes.length > 0 };
  }

  private state(): RunState {
    return { run: this.run, nodes: this.nodes };
  }

  // --- starting a node -------------------------------------------------------------------------

  private start(spec: TaskNodeSpec): void {
    const state = this.state();
    const inputs: { [name: string]: NodeValue } = {};
    for (const [name, binding] of Object.entries(spec.inputs)) inputs[name] = resolveBinding(binding, state);
    const base = { inputs, startedAt: this.now };
    if (spec.cache === null || !spec.cache.enabled) {
      this.update(spec.id, { ...base, cacheStatus: 'DISABLED', cacheReason: null, cacheKey: null, cacheKeyParts: null });
      this.dispatch(spec.id);
      return;
    }
    const { key, parts } = computeCacheKey({
      project: this.run.project,
      domain: this.run.domain,
      task: spec.task,
      signature: spec.signature,
      cache: spec.cache,
      inputs,
    });
    const keyed = { ...base, cacheKey: key, cacheKeyParts: parts };
    const skip = this.skipReason(spec);
    if (skip !== null) {
      this.update(spec.id, { ...keyed, cacheStatus: 'SKIPPED', cacheReason: skip.reason });
      this.dispatch(spec.id, skip.detail);
      return;
    }
    this.update(spec.id, { ...keyed, phase: transition(spec.id, 'pending', 'looking-up') });
    this.lookups.push({ nodeId: spec.id, key });
  }

  private skipReason(spec: TaskNodeSpec): { reason: SkipReason; detail: string } | null {
    if (this.run.options.overwriteCache) return { reason: 'overwrite', detail: 'overwrite-cache requested' };
    const culprit = taintingUpstream(spec, this.state());
    if (culprit !== null) return { reason: 'upstream-reran', detail: `upstream node '${culprit}' executed` };
    return null;
  }

  /** Starts the node's next attempt. */
  private dispatch(nodeId: string, message?: string): void {
    const node = this.node(nodeId);
    const spec = this.spec(nodeId);
    const attempt = node.attempts + 1;
    this.update(nodeId, { phase: transition(nodeId, node.phase, 'dispatched'), attempts: attempt });
    this.attempts.push(attemptFor(this.state(), spec));
    this.emit(attempt === 1 ? 'node:started' : 'node:retrying', nodeId, message === undefined ? {} : { message });
  }

  // --- applying results ------------------------------------------------------------------------

  private applyLookup(result: LookupOutcome): void {
    const node = this.nodes[result.nodeId];
    if (node?.phase !== 'looking-up' || node.cacheKey !== result.key) return; // stale
    const spec = this.spec(result.nodeId);
    switch (result.outcome) {
      case 'hit': {
        const ttlMs = spec.cache?.ttlMs ?? 0;
        if (isExpired(result.entry.createdAt, ttlMs, this.now)) {
          this.missThenDispatch(result.nodeId, 'EVICTED', `entry expired (older than ${ttlMs} ms)`);
          return;
        }
        const output: NodeValue = result.entry.valueHash === null ? { value: result.entry.value } : { value: result.entry.value, hash: result.entry.valueHash };
        this.update(result.nodeId, {
          phase: transition(result.nodeId, node.phase, 'succeeded'),
          cacheStatus: 'HIT',
          cacheReason: `from run ${result.entry.runId}`,
          output,
          finishedAt: this.now,
        });
        this.emit('node:cache-hit', result.nodeId);
        return;
      }
      case 'miss':
        this.missThenDispatch(result.nodeId, 'MISS', null);
        return;
      case 'corrupt':
        this.emit('node:cache-corrupt', result.nodeId, { message: `catalog entry undecodable, treated as a miss: ${result.reason}` }, 'warn');
        this.missThenDispatch(result.nodeId, 'MISS', `corrupt entry: ${result.reason}`);
        return;
      case 'failure':
        this.missThenDispatch(result.nodeId, 'LOOKUP_FAILURE', result.reason);
        return;
    }
  }

  private missThenDispatch(nodeId: string, status: CacheStatus, reason: string | null): void {
    this.update(nodeId, { cacheStatus: status, cacheReason: reason });
    this.dispatch(nodeId, reason ?? undefined);
  }

  private applyAttempt(result: AttemptResult): void {
    const node = this.nodes[result.nodeId];
    if (node?.phase !== 'dispatched' || node.attempts !== result.attempt) return; // stale or duplicate delivery
    if (result.ok) {
      const output: NodeValue = result.outputHash === null ? { value: result.output } : { value: result.output, hash: result.outputHash };
      // The node is done when its task is: downstream nodes start now, and the log says so now, so
      // lines stay in causal order; the cache write is reported on its own line when it lands.
      const writes = node.cacheKey !== null;
      this.update(result.nodeId, {
        phase: transition(result.nodeId, node.phase, writes ? 'writing' : 'succeeded'),
        output,
        error: null,
        finishedAt: this.now,
      });
      if (writes) this.writes.push(result.nodeId);
      this.emit('node:succeeded', result.nodeId);
      return;
    }
    const spec = this.spec(result.nodeId);
    if (result.error.retryable && node.attempts < spec.retries + 1) {
      this.update(result.nodeId, { error: result.error });
      this.dispatch(result.nodeId, `attempt ${node.attempts} failed: ${result.error.message}`);
      return;
    }
    this.update(result.nodeId, { phase: transition(result.nodeId, node.phase, 'failed'), error: result.error, finishedAt: this.now });
    this.emit('node:failed', result.nodeId, { error: result.error }, 'error');
  }

  private applyWritten(nodeId: string, failure: string | null): void {
    const node = this.nodes[nodeId];
    if (node?.phase !== 'writing') return;
    let cacheStatus = node.cacheStatus;
    let cacheReason = node.cacheReason;
    if (failure !== null) {
      cacheStatus = 'PUT_FAILURE';
      cacheReason = failure;
    } else if (cacheStatus === 'MISS' || cacheStatus === 'EVICTED') {
      cacheStatus = 'POPULATED';
    }
    this.update(nodeId, { phase: transition(nodeId, node.phase, 'succeeded'), cacheStatus, cacheReason });
    this.emit('node:cache-written', nodeId, failure === null ? {} : { message: `cache write failed: ${failure}` }, failure === null ? 'info' : 'warn');
  }

  // --- the run ---------------------------------------------------------------------------------

  private finishRunIfDone(): void {
    const all = Object.values(this.nodes);
    if (!all.every((node) => isTerminal(node.phase))) return;
    const failed = this.run.spec.nodes.map((spec) => this.node(spec.id)).find((node) => node.phase === 'failed');
    if (failed !== undefined) {
      const cause = failed.error;
      const error: ErrorInfo = {
        name: 'RunFailed',
        code: 'RUN_FAILED',
        message: `node '${failed.nodeId}' (${failed.task}) failed${cause === null ? '' : `: ${cause.message}`}`,
        retryable: false,
      };
      this.run = { ...this.run, status: 'failed', error, finishedAt: this.now, updatedAt: this.now };
      this.runChanged = true;
      this.emitRun('run:failed', 'error', error);
      return;
    }
    const state = this.state();
    const outputs: { [name: string]: Json } = {};
    for (const [name, binding] of Object.entries(this.run.spec.outputs)) outputs[name] = resolveBinding(binding, state).value;
    this.run = { ...this.run, status: 'succeeded', outputs, finishedAt: this.now, updatedAt: this.now };
    this.runChanged = true;
    this.emitRun('run:succeeded', 'info');
  }

  // --- helpers ---------------------------------------------------------------------------------

  private node(nodeId: string): NodeExecution {
    const node = this.nodes[nodeId];
    if (node === undefined) throw new Error(`run ${this.run.id} has no node '${nodeId}'`);
    return node;
  }

  private spec(nodeId: string): TaskNodeSpec {
    const spec = this.specs.get(nodeId);
    if (spec === undefined) throw new Error(`workflow ${this.run.workflow} has no node '${nodeId}'`);
    return spec;
  }

  private update(nodeId: string, patch: Partial<NodeExecution> & { phase?: NodePhase }): void {
    this.nodes[nodeId] = { ...this.node(nodeId), ...patch };
    this.changed.add(nodeId);
    if (this.run.updatedAt !== this.now) {
      this.run = { ...this.run, updatedAt: this.now };
      this.runChanged = true;
    }
  }

  private emit(type: EngineEventType, nodeId: string, extra: Partial<EngineEvent> = {}, level: EngineEvent['level'] = 'info'): void {
    const node = this.node(nodeId);
    const event: EngineEvent = {
      type,
      level,
      runId: this.run.id,
      workflow: this.run.workflow,
      nodeId,
      task: node.task,
      attempt: node.attempts,
      cacheStatus: node.cacheStatus,
      cacheReason: node.cacheReason,
      cacheKey: node.cacheKey,
      ...extra,
    };
    if (node.finishedAt !== null && node.startedAt !== null) event.durationMs = node.finishedAt.getTime() - node.startedAt.getTime();
    this.emitted.push({ type: 'EmitEvent', event });
  }

  private emitRun(type: EngineEventType, level: EngineEvent['level'], error?: ErrorInfo): void {
    const event: EngineEvent = { type, level, runId: this.run.id, workflow: this.run.workflow, durationMs: this.now.getTime() - this.run.createdAt.getTime() };
    if (error !== undefined) event.error = error;
    this.emitted.push({ type: 'EmitEvent', event });
  }
}

/** The entry a node's result is written as; derived from saved state so a recovering controller can repeat it. */
export function cacheEntryFor(state: RunState, nodeId: string): NewCacheEntry {
  const node = state.nodes[nodeId];
  if (node?.cacheKey == null || node.cacheKeyParts === null || node.output === null) {
    throw new Error(`node '${nodeId}' has no cache key or output to write`);
  }
  return {
    key: node.cacheKey,
    kind: 'output',
    project: state.run.project,
    domain: state.run.domain,
    task: node.task,
    parts: node.cacheKeyParts,
    value: node.output.value,
    valueHash: node.output.hash ?? null,
    runId: state.run.id,
    nodeId,
  };
}

/** The task attempt a dispatched node's saved state describes (its current attempt number). */
export function attemptFor(state: RunState, spec: TaskNodeSpec): TaskAttempt {
  const node = state.nodes[spec.id];
  if (node === undefined) throw new Error(`run ${state.run.id} has no node '${spec.id}'`);
  const inputs: { [name: string]: Json } = {};
  for (const [name, value] of Object.entries(node.inputs ?? {})) inputs[name] = value.value;
  return {
    id: attemptId(state.run.id, spec.id, node.attempts),
    runId: state.run.id,
    nodeId: spec.id,
    task: spec.task,
    attempt: node.attempts,
    inputs,
    timeoutMs: spec.timeoutMs,
    cacheKey: node.cacheKey,
  };
}

/**
 * The effects a controller taking over a run must repeat: lookups, attempts and writes that were
 * saved as started but may not have happened. Each is idempotent (attempt ids are deterministic,
 * writes are upserts), so repeating one that did happen is harmless.
 */
export function recoverCommands(state: RunState): Command[] {
  if (state.run.status !== 'running') return [];
  const lookups: { nodeId: string; key: string }[] = [];
  const attempts: TaskAttempt[] = [];
  const writes: string[] = [];
  const specs = new Map(state.run.spec.nodes.map((node) => [node.id, node]));
  for (const node of Object.values(state.nodes)) {
    switch (node.phase) {
      case 'looking-up':
        if (node.cacheKey !== null) lookups.push({ nodeId: node.nodeId, key: node.cacheKey });
        break;
      case 'dispatched': {
        const spec = specs.get(node.nodeId);
        if (spec !== undefined) attempts.push(attemptFor(state, spec));
        break;
      }
      case 'writing':
        writes.push(node.nodeId);
        break;
      case 'pending':
      case 'succeeded':
      case 'failed':
      case 'aborted':
        break;
    }
  }
  const commands: Command[] = [];
  if (lookups.length > 0) commands.push({ type: 'LookupCache', lookups });
  if (attempts.length > 0) commands.push({ type: 'DispatchTask', attempts });
  if (writes.length > 0) commands.push({ type: 'WriteCache', nodeIds: writes, entries: writes.map((id) => cacheEntryFor(state, id)) });
  return commands;
}
