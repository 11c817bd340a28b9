import { computeCacheKey, signatureDigest } from '../../cache/cache-key.js';
import { decodeValueHash, encodeValueHash } from '../../cache/value-hash.js';
import { outputSchemaProblem } from '../../cache/output-validator.js';
import type { EngineErrorCode, ErrorInfo } from '../../errors.js';
import type { Json, NodeValue } from '../../json.js';
import type { CacheEntryKind, NewCacheEntry } from '../../ports/cache-catalog.js';
import { attemptId, type AttemptResult, type TaskAttempt } from '../../ports/task-dispatcher.js';
import type { NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import type { CacheStatus, SkipReason } from '../../state/cache-status.js';
import { pendingExecution } from '../../state/new-run.js';
import { hasOutput, isTerminal, transition, type NodePhase } from '../../state/node-phase.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { isExpired } from './cache-expiry.js';
import { entryProblem, lostWritesMessage, scheduleWriteRetry, writeRetryDelayMs } from './cache-write-checks.js';
import { taintingUpstream } from './cascade.js';
import type { CacheLookup, Command, EngineEvent, EngineEventType } from '../vocabulary/commands.js';
import { memoizedDependencies } from './dependencies.js';
import type { CacheWrite, LookupOutcome, RunEvent } from '../vocabulary/events.js';
import { childNodes, containerOutputBinding, directChildren, runNodes, type RunNodes } from './expand.js';
import { compactFuture, parseFuture, staleFutureReason } from './future.js';
import { resolveBinding } from './resolve-binding.js';
import { storableError, storageProblem, stringProblem } from '../../storable.js';

export interface Decision {
  /** The next state; `state.run.version` is still the loaded one (the store bumps it on save). */
  state: RunState;
  commands: Command[];
  /** Node ids whose execution record changed (or was created): what the save writes. */
  changedNodes: string[];
  /** Whether anything (run or nodes) changed and must be saved before the commands run. */
  changed: boolean;
}

/**
 * The controller's decision function: applies events to a run's state, advances every node that
 * became ready, and returns the effects to perform. Pure: no I/O, time comes from `now`. The shell
 * saves the returned state before it acts, so a crash between the two repeats work safely (see
 * `recoverCommands`).
 *
 * Node kinds: a task executes on a worker. A dynamic node executes its body on a worker, which
 * returns a sub-workflow (its future); a sub-workflow node carries its sub-workflow in the spec.
 * Both are containers: once expanded, their children are nodes of the run (`<container>.<child>`)
 * under the same cache rules, and the container's output is resolved when they are all done.
 */
export function decide(state: RunState, events: readonly RunEvent[], now: Date): Decision {
  const draft = new Draft(state, now);
  draft.apply(events);
  draft.advance();
  return draft.finish();
}

/** Mutable working copy for one decision; node records are copied on first write. */
class Draft {
  private readonly nodes: { [nodeId: string]: NodeExecution };
  private graph: RunNodes;
  private readonly changed = new Set<string>();
  private runChanged = false;
  private readonly lookups: CacheLookup[] = [];
  private readonly attempts: TaskAttempt[] = [];
  private readonly writes: CacheWrite[] = [];
  private readonly emitted: Command[] = [];
  private run: RunState['run'];

  constructor(
    original: RunState,
    private readonly now: Date,
  ) {
    this.nodes = { ...original.nodes };
    this.run = original.run;
    this.graph = runNodes(original);
  }

  apply(events: readonly RunEvent[]): void {
    if (this.run.status !== 'running') return;
    for (const event of events) {
      switch (event.type) {
        case 'run:tick':
          break;
        case 'cache:looked-up':
          this.applyLookups(event.results);
          break;
        case 'attempt:finished':
          this.applyAttempt(event.result);
          break;
        case 'cache:written':
          for (const write of event.writes) this.applyWritten(write, event.ok ? null : event.reason);
          break;
      }
    }
  }

  /**
   * Starts every pending node whose upstream is settled and settles every container whose children
   * are, until nothing moves. Nodes are visited in run order (upstream first), so one pass usually
   * suffices; expanding a container adds nodes, which takes another.
   */
  advance(): void {
    for (let moved = true; moved && this.run.status === 'running'; ) {
      moved = false;
      for (const spec of this.graph.order) {
        const node = this.node(spec.id);
        if (node.phase === 'pending') moved = this.startIfReady(spec) || moved;
      }
      // Innermost containers first, so a nested container's output is there for its parent.
      for (const spec of [...this.graph.order].reverse()) {
        if (this.node(spec.id).phase === 'expanded') moved = this.settleContainer(spec) || moved;
      }
    }
    if (this.run.status === 'running') this.retryDueWrites();
    this.finishRunIfDone();
  }

  finish(): Decision {
    const commands: Command[] = [];
    if (this.lookups.length > 0) commands.push({ type: 'LookupCache', lookups: this.lookups });
    if (this.attempts.length > 0) commands.push({ type: 'DispatchTask', attempts: this.attempts });
    if (this.writes.length > 0) {
      const state = this.state();
      commands.push({ type: 'WriteCache', writes: this.writes, entries: this.writes.map((w) => cacheEntryFor(state, w.nodeId, w.kind)) });
    }
    commands.push(...this.emitted);
    const changedNodes = [...this.changed];
    return { state: this.state(), commands, changedNodes, changed: this.runChanged || changedNodes.length > 0 };
  }

  private state(): RunState {
    return { run: this.run, nodes: this.nodes };
  }

  // --- starting a node -------------------------------------------------------------------------

  private startIfReady(spec: NodeSpec): boolean {
    const upstream = memoizedDependencies(spec).map((id) => this.node(id));
    if (upstream.some((u) => u.phase === 'failed' || u.phase === 'aborted')) {
      this.update(spec.id, { phase: 'aborted', finishedAt: this.now });
      this.emit('node:aborted', spec.id, { message: 'an upstream node failed' }, 'warn');
      return true;
    }
    if (!upstream.every((u) => hasOutput(u.phase))) return false;
    this.start(spec);
    return true;
  }

  private start(spec: NodeSpec): void {
    const state = this.state();
    const inputs: { [name: string]: NodeValue } = {};
    for (const [name, binding] of Object.entries(spec.inputs)) {
      // An optional workflow input the run left out leaves the task's input out too (not null):
      // the task sees it unset and the key does not contain it.
      if (binding.kind === 'input' && binding.path === undefined && !(binding.name in state.run.inputs)) continue;
      inputs[name] = resolveBinding(binding, state);
    }
    const base = { inputs, startedAt: this.now };
    const skip = this.skipReason(spec);
    if (spec.cache === null || !spec.cache.enabled) {
      // A container fed by a rerun still says so: its children inherit the reason.
      const status: Pick<NodeExecution, 'cacheStatus' | 'cacheReason'> =
        spec.kind !== 'task' && skip?.reason === 'upstream-reran' ? { cacheStatus: 'SKIPPED', cacheReason: skip.reason } : { cacheStatus: 'DISABLED', cacheReason: null };
      this.update(spec.id, { ...base, ...status, cacheKey: null, cacheKeyParts: null });
      this.execute(spec, skip?.detail);
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
    if (skip !== null) {
      this.update(spec.id, { ...keyed, cacheStatus: 'SKIPPED', cacheReason: skip.reason });
      this.execute(spec, skip.detail);
      return;
    }
    this.update(spec.id, { ...keyed, phase: transition(spec.id, 'pending', 'looking-up') });
    this.lookups.push({ nodeId: spec.id, key, kind: 'output' });
    // A dynamic node's future is looked up in the same round: if the output misses, the compiled
    // sub-workflow may still be there (a retry after a failed child).
    if (spec.kind === 'dynamic') this.lookups.push({ nodeId: spec.id, key, kind: 'future' });
  }

  private skipReason(spec: NodeSpec): { reason: SkipReason; detail: string } | null {
    if (this.run.options.overwriteCache) return { reason: 'overwrite', detail: 'overwrite-cache requested' };
    const culprit = taintingUpstream(spec, this.state());
    if (culprit !== null) return { reason: 'upstream-reran', detail: `upstream node '${culprit}' executed` };
    const parent = this.graph.parentOf.get(spec.id);
    const container = parent === undefined ? undefined : this.node(parent);
    if (container?.cacheStatus === 'SKIPPED' && container.cacheReason === 'upstream-reran') {
      return { reason: 'upstream-reran', detail: `its container '${container.nodeId}' was fed by a rerun` };
    }
    return null;
  }

  /** Executes a node that was not served from the catalog: a task or dynamic body runs; a sub-workflow expands. */
  private execute(spec: NodeSpec, message?: string): void {
    if (spec.kind === 'subworkflow') this.expand(spec, spec.workflow, message);
    else this.dispatch(spec.id, message);
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

  /** Makes a container's children nodes of the run. */
  private expand(spec: NodeSpec, sub: WorkflowSpec, message?: string): void {
    const node = this.node(spec.id);
    this.update(spec.id, { phase: transition(spec.id, node.phase, 'expanded'), subWorkflow: sub });
    for (const child of childNodes(spec.id, sub, node.inputs ?? {})) {
      if (this.nodes[child.id] === undefined) {
        this.nodes[child.id] = pendingExecution(this.run.id, child.id, child.task);
        this.changed.add(child.id);
      }
    }
    this.graph = runNodes(this.state());
    const note = `into ${sub.nodes.length} node(s)`;
    this.emit('node:expanded', spec.id, { message: message === undefined ? note : `${note}; ${message}` });
  }

  /** A container whose children are all done resolves its output, or fails with the first failed child. */
  private settleContainer(spec: NodeSpec): boolean {
    const node = this.node(spec.id);
    const children = directChildren(spec.id, this.state()).map((id) => this.node(id));
    if (!children.every((child) => isTerminal(child.phase))) return false;
    const failed = children.find((child) => child.phase === 'failed' || child.phase === 'aborted');
    if (failed !== undefined) {
      const culprit = children.find((child) => child.phase === 'failed') ?? failed;
      const error: ErrorInfo = {
        name: 'ChildFailed',
        code: 'CHILD_FAILED',
        message: `child node '${culprit.nodeId}' (${culprit.task}) failed${culprit.error === null ? '' : `: ${culprit.error.message}`}`,
        retryable: false,
      };
      this.update(spec.id, { phase: transition(spec.id, node.phase, 'failed'), error, finishedAt: this.now });
      this.emit('node:failed', spec.id, { error }, 'error');
      return true;
    }
    const sub = node.subWorkflow;
    if (sub === null) return false;
    const output = resolveBinding(containerOutputBinding(spec, sub, node.inputs ?? {}), this.state());
    const writes = node.cacheKey !== null && this.storable(spec, output.value);
    this.update(spec.id, { phase: transition(spec.id, node.phase, writes ? 'writing' : 'succeeded'), output, finishedAt: this.now });
    if (writes) this.writes.push({ nodeId: spec.id, kind: 'output' });
    this.emit('node:succeeded', spec.id);
    return true;
  }

  // --- applying results ------------------------------------------------------------------------

  /** Lookup results, node by node: a dynamic node's output and future arrive together. */
  private applyLookups(results: readonly LookupOutcome[]): void {
    const byNode = new Map<string, LookupOutcome[]>();
    for (const result of results) byNode.set(result.nodeId, [...(byNode.get(result.nodeId) ?? []), result]);
    for (const [nodeId, outcomes] of byNode) {
      const node = this.nodes[nodeId];
      const current = outcomes.filter((o) => o.key === node?.cacheKey);
      if (node?.phase !== 'looking-up' || current.length === 0) continue; // stale
      this.applyLookup(nodeId, current);
    }
  }

  private applyLookup(nodeId: string, outcomes: LookupOutcome[]): void {
    const spec = this.spec(nodeId);
    const output = outcomes.find((o) => o.kind === 'output');
    const future = outcomes.find((o) => o.kind === 'future');
    const ttlMs = spec.cache?.ttlMs ?? 0;
    let status: CacheStatus = 'MISS';
    let reason: string | null = null;
    switch (output?.outcome) {
      case 'hit': {
        // An entry the catalog vouches for (its checksum binds it to key and kind) must also belong
        // to this node: its parts hash to its key, its value has the task's output type, and its
        // hashes decode and fit the value.
        const value = decodeValueHash(output.entry.value, output.entry.valueHash, spec.kind === 'task' ? 'task' : 'container');
        const problem = entryProblem(output, spec) ?? ('corrupt' in value ? value.corrupt : undefined);
        if (problem !== undefined || 'corrupt' in value) {
          this.emit('node:cache-corrupt', nodeId, { message: `catalog entry unusable, treated as a miss: ${String(problem)}`, cacheStatus: 'MISS' }, 'warn');
          reason = `corrupt entry: ${String(problem)}`;
          break;
        }
        if (!isExpired(output.entry.createdAt, ttlMs, this.now)) {
          this.update(nodeId, { phase: transition(nodeId, 'looking-up', 'succeeded'), cacheStatus: 'HIT', cacheReason: `from run ${output.entry.runId}`, output: value, finishedAt: this.now });
          this.emit('node:cache-hit', nodeId);
          return;
        }
        status = 'EVICTED';
        reason = `entry expired (older than ${ttlMs} ms)`;
        break;
      }
      case 'corrupt':
        this.emit('node:cache-corrupt', nodeId, { message: `catalog entry undecodable, treated as a miss: ${output.reason}`, cacheStatus: 'MISS' }, 'warn');
        reason = `corrupt entry: ${output.reason}`;
        break;
      case 'failure':
        status = 'LOOKUP_FAILURE';
        reason = output.reason;
        break;
      case 'miss':
      case undefined:
        break;
    }
    if (spec.kind === 'dynamic' && future?.outcome === 'hit' && !isExpired(future.entry.createdAt, ttlMs, this.now)) {
      const problem = entryProblem(future, undefined);
      const sub = problem === undefined ? parseFuture(future.entry.value) : null;
      const stale = sub === null || sub instanceof Error ? null : staleFutureReason(sub, this.node(nodeId).inputs ?? {});
      if (sub !== null && !(sub instanceof Error) && stale === null) {
        this.update(nodeId, { cacheStatus: 'FUTURE_HIT', cacheReason: `sub-workflow from run ${future.entry.runId}` });
        this.expand(spec, sub, 'compiled sub-workflow read from the catalog; the body does not run');
        return;
      }
      if (stale !== null) reason = reason === null ? stale : `${reason}; ${stale}`;
      else this.emit('node:cache-corrupt', nodeId, { message: 'future entry is not a sub-workflow, treated as a miss' }, 'warn');
    }
    this.update(nodeId, { cacheStatus: status, cacheReason: reason });
    this.execute(spec, reason ?? undefined);
  }

  private applyAttempt(delivered: AttemptResult): void {
    const node = this.nodes[delivered.nodeId];
    if (node?.phase !== 'dispatched' || node.attempts !== delivered.attempt) return; // stale or duplicate delivery
    const spec = this.spec(delivered.nodeId);
    const result = storableResult(delivered, spec);
    if (result.ok && spec.kind === 'dynamic') {
      this.applyCompiled(spec, result.output);
      return;
    }
    if (result.ok) {
      // The node is done when its task is: downstream nodes start now, and the log says so now, so
      // lines stay in causal order; the cache write is reported on its own line when it lands.
      const output: NodeValue = result.outputHash === null ? { value: result.output } : { value: result.output, hash: result.outputHash };
      const writes = node.cacheKey !== null && this.storable(spec, result.output);
      this.update(result.nodeId, { phase: transition(result.nodeId, node.phase, writes ? 'writing' : 'succeeded'), output, error: null, finishedAt: this.now });
      if (writes) this.writes.push({ nodeId: result.nodeId, kind: 'output' });
      this.emit('node:succeeded', result.nodeId);
      return;
    }
    if (result.error.retryable && node.attempts < spec.retries + 1) {
      this.update(result.nodeId, { error: result.error });
      this.dispatch(result.nodeId, `attempt ${node.attempts} failed: ${result.error.message}`);
      return;
    }
    this.fail(result.nodeId, result.error);
  }

  /** A dynamic body returned its sub-workflow: store it as the node's future and run it. */
  private applyCompiled(spec: NodeSpec, compiled: Json): void {
    const parsed = parseFuture(compiled, { workflow: this.run.workflow, node: spec.id });
    if (parsed === null || parsed instanceof Error) {
      const message = parsed instanceof Error ? parsed.message : 'the dynamic body did not return a sub-workflow';
      this.fail(spec.id, { name: 'InvalidDynamicWorkflow', code: 'INVALID_SPEC', message, retryable: false });
      return;
    }
    this.expand(spec, parsed);
    if (this.node(spec.id).cacheKey !== null) this.writes.push({ nodeId: spec.id, kind: 'future' });
  }

  private fail(nodeId: string, error: ErrorInfo): void {
    this.update(nodeId, { phase: transition(nodeId, this.node(nodeId).phase, 'failed'), error, finishedAt: this.now });
    this.emit('node:failed', nodeId, { error }, 'error');
  }

  private applyWritten(write: CacheWrite, failure: string | null): void {
    const node = this.nodes[write.nodeId];
    if (node === undefined) return;
    if (write.kind === 'future') {
      // The future only saves a later retry the body; losing it costs nothing now.
      this.emit('node:cache-written', write.nodeId, { message: failure === null ? 'future stored' : `storing the future failed: ${failure}` }, failure === null ? 'info' : 'warn');
      return;
    }
    if (node.phase !== 'writing') return;
    const retry = node.cacheWriteRetry ?? null;
    if (failure !== null) {
      // A retry is already scheduled: this is a repeated report of a put already counted.
      if (retry !== null && retry.retryAtMs !== null) return;
      const failures = (retry?.failures ?? 0) + 1;
      if (retry === null || !retry.final) {
        // Not lost yet: the node keeps its status and stays `writing` (its output is known, so
        // downstream nodes are not held up); `retryDueWrites` puts it again when it is due.
        const delay = writeRetryDelayMs(failures);
        this.update(write.nodeId, { cacheWriteRetry: scheduleWriteRetry(failures, failure, this.now.getTime() + delay) });
        this.emit('node:cache-written', write.nodeId, { message: `cache write failed (attempt ${failures}), retrying in ${delay} ms: ${failure}` }, 'warn');
        return;
      }
      const cacheReason = `cache write lost after ${failures} attempt(s): ${failure}`;
      this.update(write.nodeId, { phase: transition(write.nodeId, node.phase, 'succeeded'), cacheStatus: 'PUT_FAILURE', cacheReason, cacheWriteRetry: null });
      this.emit('node:cache-written', write.nodeId, { message: cacheReason }, 'warn');
      return;
    }
    const cacheStatus = node.cacheStatus === 'MISS' || node.cacheStatus === 'EVICTED' ? 'POPULATED' : node.cacheStatus;
    this.update(write.nodeId, { phase: transition(write.nodeId, node.phase, 'succeeded'), cacheStatus, cacheWriteRetry: null });
    this.emit('node:cache-written', write.nodeId, retry === null ? {} : { message: `cache write landed after ${retry.failures} failed attempt(s)` });
  }

  /**
   * Puts again every failed write that is due. Once nothing but such writes is left in the run,
   * each gets one last put (at its scheduled time, but no later than FINAL_WRITE_WAIT_MS from now)
   * so the run does not wait out a long backoff before it finishes.
   */
  private retryDueWrites(): void {
    const scheduled = (node: NodeExecution) => node.phase === 'writing' && node.cacheWriteRetry != null && node.cacheWriteRetry.retryAtMs !== null;
    const otherwiseDone = this.graph.order.every((spec) => {
      const node = this.node(spec.id);
      return isTerminal(node.phase) || scheduled(node);
    });
    const now = this.now.getTime();
    for (const spec of this.graph.order) {
      const node = this.node(spec.id);
      const retry = node.cacheWriteRetry;
      if (!scheduled(node) || retry == null || retry.retryAtMs === null) continue;
      let next = retry;
      if (otherwiseDone && !retry.final) next = { ...retry, final: true, retryAtMs: Math.min(retry.retryAtMs, now + FINAL_WRITE_WAIT_MS) };
      if (next.retryAtMs !== null && next.retryAtMs <= now) {
        next = { ...next, retryAtMs: null };
        this.writes.push({ nodeId: spec.id, kind: 'output' });
      }
      if (next !== retry) this.update(spec.id, { cacheWriteRetry: next });
    }
  }

  /**
   * Whether a node's output may be written: a value that fails the output schema cannot come from
   * a task (the SDK validates outputs), so only corruption produces one; it is never cached, and
   * the node ends PUT_FAILURE saying why.
   */
  private storable(spec: NodeSpec, value: Json): boolean {
    const problem = outputSchemaProblem(spec.outputSchema, value);
    if (problem === undefined) return true;
    this.update(spec.id, { cacheStatus: 'PUT_FAILURE', cacheReason: `not cached: the output does not match the task's output schema: ${problem}` });
    this.emit('node:cache-corrupt', spec.id, { message: `output not cached, it does not match the task's output schema: ${problem}` }, 'warn');
    return false;
  }

  // --- the run ---------------------------------------------------------------------------------

  private finishRunIfDone(): void {
    if (this.run.status !== 'running') return;
    if (!this.graph.order.every((spec) => isTerminal(this.node(spec.id).phase))) return;
    // Report the first failed top-level node (a failed child also fails its container).
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
    const lost = lostWritesMessage(Object.values(this.nodes));
    this.emitRun('run:succeeded', lost === undefined ? 'info' : 'warn', undefined, lost);
  }

  // --- helpers ---------------------------------------------------------------------------------

  private node(nodeId: string): NodeExecution {
    const node = this.nodes[nodeId];
    if (node === undefined) throw new Error(`run ${this.run.id} has no node '${nodeId}'`);
    return node;
  }

  private spec(nodeId: string): NodeSpec {
    const spec = this.graph.byId.get(nodeId);
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

  private emitRun(type: EngineEventType, level: EngineEvent['level'], error?: ErrorInfo, message?: string): void {
    const event: EngineEvent = { type, level, runId: this.run.id, workflow: this.run.workflow, durationMs: this.now.getTime() - this.run.createdAt.getTime() };
    if (error !== undefined) event.error = error;
    if (message !== undefined) event.message = message;
    this.emitted.push({ type: 'EmitEvent', event });
  }
}

/**
 * A result as the run store can keep it: an output that no store could save (U+0000, a lone
 * surrogate, NaN, over the size limit) turns into a non-retryable failure naming where the bad value
 * is, and a failure's texts are repaired. Without this, every save of the run failed and its rounds
 * were retried forever (robustness issue, item 1).
 */
function storableResult(result: AttemptResult, spec: NodeSpec): AttemptResult {
  if (!result.ok) return { ...result, error: storableError(result.error) };
  const problem = storageProblem(result.output, 'output') ?? (result.outputHash === null ? null : stringProblem(result.outputHash) === null ? null : 'its hashWith hash is not a storable string');
  if (problem === null) return result;
  const { output: _output, outputHash: _hash, ...base } = result;
  const what = spec.kind === 'dynamic' ? `the dynamic '${spec.task}' compiled a sub-workflow` : `task '${spec.task}' returned an output`;
  return { ...base, ok: false, error: { name: 'OutputNotStorable', code: 'OUTPUT_NOT_STORABLE' satisfies EngineErrorCode, message: `${what} that cannot be stored: ${problem}`, retryable: false } };
}

/** The entry a node's result (or a dynamic node's future) is written as; derived from saved state so a recovering controller can repeat it. */
export function cacheEntryFor(state: RunState, nodeId: string, kind: CacheEntryKind = 'output'): NewCacheEntry {
  const node = state.nodes[nodeId];
  const value: Json | undefined = kind === 'future' ? (node?.subWorkflow == null ? undefined : compactFuture(node.subWorkflow)) : node?.output?.value;
  if (node?.cacheKey == null || node.cacheKeyParts === null || value === undefined) {
    throw new Error(`node '${nodeId}' has no cache key or ${kind} to write`);
  }
  return {
    key: node.cacheKey,
    kind,
    project: state.run.project,
    domain: state.run.domain,
    task: node.task,
    parts: node.cacheKeyParts,
    value,
    valueHash: kind === 'output' && node.output != null ? encodeValueHash(node.output, node.subWorkflow == null ? 'task' : 'container') : null,
    runId: state.run.id,
    nodeId,
  };
}

/** Signature digests by signature object: a fan-out's nodes share one, and attempts are built often. */
const signatureDigests = new WeakMap<NodeSpec['signature'], string>();
function attemptSignature(signature: NodeSpec['signature']): string {
  let digest = signatureDigests.get(signature);
  if (digest === undefined) {
    digest = signatureDigest(signature);
    signatureDigests.set(signature, digest);
  }
  return digest;
}

/** The task attempt a dispatched node's saved state describes (its current attempt number). */
export function attemptFor(state: RunState, spec: NodeSpec): TaskAttempt {
  const node = state.nodes[spec.id];
  if (node === undefined) throw new Error(`run ${state.run.id} has no node '${spec.id}'`);
  const inputs: { [name: string]: Json } = {};
  for (const [name, value] of Object.entries(node.inputs ?? {})) inputs[name] = value.value;
  const attempt: TaskAttempt = {
    id: attemptId(state.run.id, spec.id, node.attempts),
    runId: state.run.id,
    nodeId: spec.id,
    task: spec.task,
    attempt: node.attempts,
    inputs,
    timeoutMs: spec.timeoutMs,
    cacheKey: node.cacheKey,
    // What the node promises about the code: a worker whose task has another interface refuses it.
    signature: attemptSignature(spec.signature),
  };
  // The version only where a result is written under a key that contains it. An uncached node
  // writes nothing, and its derived version (the body's text) differs between loaders (tsx, tsc, a
  // bundler), so checking it would refuse the same code loaded two ways for no cache's sake.
  if (spec.taskVersion !== undefined && node.cacheKey !== null) attempt.taskVersion = spec.taskVersion;
  return attempt;
}

/**
 * The effects a controller taking over a run must repeat: lookups, attempts and writes that were
 * saved as started but may not have happened. Each is idempotent (attempt ids are deterministic,
 * writes are upserts), so repeating one that did happen is harmless. (A dynamic node's future
 * write is not repeated: losing it only costs a later retry the body.)
 */
export function recoverCommands(state: RunState): Command[] {
  if (state.run.status !== 'running') return [];
  const lookups: CacheLookup[] = [];
  const attempts: TaskAttempt[] = [];
  const writes: CacheWrite[] = [];
  const { byId } = runNodes(state);
  for (const node of Object.values(state.nodes)) {
    const spec = byId.get(node.nodeId);
    if (spec === undefined) continue;
    switch (node.phase) {
      case 'looking-up':
        if (node.cacheKey !== null) {
          lookups.push({ nodeId: node.nodeId, key: node.cacheKey, kind: 'output' });
          if (spec.kind === 'dynamic') lookups.push({ nodeId: node.nodeId, key: node.cacheKey, kind: 'future' });
        }
        break;
      case 'dispatched':
        attempts.push(attemptFor(state, spec));
        break;
      case 'writing':
        // A write whose retry is scheduled is put when it is due (`nextWakeAt`, `retryDueWrites`).
        if (node.cacheWriteRetry?.retryAtMs == null) writes.push({ nodeId: node.nodeId, kind: 'output' });
        break;
      case 'pending':
      case 'expanded':
      case 'succeeded':
      case 'failed':
      case 'aborted':
        break;
    }
  }
  const commands: Command[] = [];
  if (lookups.length > 0) commands.push({ type: 'LookupCache', lookups });
  if (attempts.length > 0) commands.push({ type: 'DispatchTask', attempts });
  if (writes.length > 0) commands.push({ type: 'WriteCache', writes, entries: writes.map((w) => cacheEntryFor(state, w.nodeId, w.kind)) });
  return commands;
}

/** The last put of a failed write waits at most this long once nothing else is left in the run. */
const FINAL_WRITE_WAIT_MS = 2000;

/**
 * When the run next needs a decision without any event arriving: the earliest scheduled retry of a
 * failed cache write (ms since the epoch), or null. The shell sets a timer for it and delivers
 * `run:tick`; `decide` itself only compares against `now`.
 */
export function nextWakeAt(state: RunState): number | null {
  if (state.run.status !== 'running') return null;
  let earliest: number | null = null;
  for (const node of Object.values(state.nodes)) {
    const due = node.phase === 'writing' ? node.cacheWriteRetry?.retryAtMs : null;
    if (due != null && (earliest === null || due < earliest)) earliest = due;
  }
  return earliest;
}
