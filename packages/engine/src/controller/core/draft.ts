import { outputSchemaProblem } from '../../cache/output-validator.js';
import type { ErrorInfo } from '../../errors.js';
import type { Json, NodeValue } from '../../json.js';
import type { CacheEntryKind } from '../../ports/cache-catalog.js';
import type { AttemptResult, AttemptToCancel, TaskAttempt } from '../../ports/task-dispatcher.js';
import type { Binding, NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import { pendingExecution } from '../../state/new-run.js';
import { transition, type NodePhase } from '../../state/node-phase.js';
import type { NodeExecution, RunRecord, RunState } from '../../state/run-state.js';
import type { NodeContext } from '../handlers/node-handler.js';
import type { ReservationRelease } from '../../ports/cache-reservations.js';
import type { CacheLookup, Command, EngineEvent, EngineEventType, ReservationAsk } from '../vocabulary/commands.js';
import type { CacheWrite } from '../vocabulary/events.js';
import { childNodes } from './expand.js';
import { attemptFor, cacheEntryFor } from './effects-from-state.js';
import { resolveBinding } from './resolve-binding.js';
import { RunIndex } from './run-index.js';
import { endsReservation, reservationAsk } from './serialize.js';

/**
 * A run as a controller keeps it across rounds: its state and the index derived from it. A
 * workspace has one owner (a RunDriver); `decideInPlace` changes it in place, which is what makes a
 * round cost O(what changed). Whoever holds a workspace after a failed decision or a failed save
 * must drop it and load the run again (see RunDriver.round).
 */
export interface RunWorkspace {
  state: RunState;
  index: RunIndex;
}

/** A workspace over `state`'s own objects (the caller gives up `state`), its index derived from scratch. */
export function workspaceOf(state: RunState): RunWorkspace {
  return { state, index: RunIndex.build(state) };
}

/**
 * One decision's working state: the workspace it changes and the effects it asks for. Implements
 * the NodeContext the node handlers get: every node change goes through `update`, which keeps the
 * run index current, and every effect is collected for the shell, never performed here.
 */
export class Draft implements NodeContext {
  readonly changed = new Set<string>();
  /** Each changed node's record before its first change here (undefined: created here). */
  readonly previous = new Map<string, NodeExecution | undefined>();
  runChanged = false;
  readonly lookups: CacheLookup[] = [];
  readonly attempts: TaskAttempt[] = [];
  readonly writes: CacheWrite[] = [];
  readonly emitted: Command[] = [];
  /** Attempts of a cancelled run to stop (see core/cancel.ts). */
  readonly cancelledAttempts: AttemptToCancel[] = [];
  readonly reservations: ReservationAsk[] = [];
  readonly releases: ReservationRelease[] = [];
  /**
   * Results of attempts this state has not dispatched yet, but is about to (see `earlyResult` in
   * decide.ts): not applied, and not to be acknowledged, so they come again once it has.
   */
  readonly early: AttemptResult[] = [];

  constructor(
    readonly workspace: RunWorkspace,
    readonly now: Date,
  ) {}

  get run(): RunRecord {
    return this.workspace.state.run;
  }

  set run(run: RunRecord) {
    this.workspace.state.run = run;
  }

  get state(): RunState {
    return this.workspace.state;
  }

  get index(): RunIndex {
    return this.workspace.index;
  }

  node(nodeId: string): NodeExecution {
    const node = this.state.nodes[nodeId];
    if (node === undefined) throw new Error(`run ${this.run.id} has no node '${nodeId}'`);
    return node;
  }

  spec(nodeId: string): NodeSpec {
    const spec = this.index.byId.get(nodeId);
    if (spec === undefined) throw new Error(`workflow ${this.run.workflow} has no node '${nodeId}'`);
    return spec;
  }

  /** The one place a node changes: a new record (records are never mutated), and the index told. */
  update(nodeId: string, patch: Partial<NodeExecution> & { phase?: NodePhase }): void {
    const before = this.node(nodeId);
    if (!this.previous.has(nodeId)) this.previous.set(nodeId, before);
    const after = { ...before, ...patch };
    this.state.nodes[nodeId] = after;
    this.index.observe(before, after);
    this.changed.add(nodeId);
    // Whatever ends a node that may hold its key's reservation (success, failure, cancel) frees it.
    if (endsReservation(this.index.byId.get(nodeId), before, after)) this.release(nodeId);
    if (this.run.updatedAt !== this.now) {
      this.run = { ...this.run, updatedAt: this.now };
      this.runChanged = true;
    }
  }

  lookup(nodeId: string, kind: CacheEntryKind, afterReservation = false): void {
    const key = this.node(nodeId).cacheKey;
    if (key === null) throw new Error(`node '${nodeId}' has no cache key to look up`);
    this.lookups.push(afterReservation ? { nodeId, key, kind, afterReservation } : { nodeId, key, kind });
  }

  /** A shadow lookup of the node's own key, for the early-cutoff report only (core/cutoff.ts). */
  shadowLookup(nodeId: string, upstream: string): void {
    const key = this.node(nodeId).cacheKey;
    if (key === null) throw new Error(`node '${nodeId}' has no cache key to look up`);
    this.lookups.push({ nodeId, key, kind: 'output', shadow: { upstream } });
  }

  /** Asks for the node's key's reservation (`cache.serialize`; core/serialize.ts). */
  reserve(nodeId: string): void {
    this.reservations.push(reservationAsk(this.state, nodeId));
  }

  /** Frees the node's reservation, if it holds one. */
  release(nodeId: string): void {
    const { key, kind, owner } = reservationAsk(this.state, nodeId);
    this.releases.push({ key, kind, owner });
  }

  dispatch(nodeId: string, message?: string): void {
    const node = this.node(nodeId);
    const attempt = node.attempts + 1;
    this.update(nodeId, { phase: transition(nodeId, node.phase, 'dispatched'), attempts: attempt });
    this.attempts.push(attemptFor(this.state, this.spec(nodeId)));
    this.emit(attempt === 1 ? 'node:started' : 'node:retrying', nodeId, message === undefined ? {} : { message });
  }

  cancelAttempt(attempt: AttemptToCancel): void {
    this.cancelledAttempts.push(attempt);
  }

  write(nodeId: string, kind: CacheEntryKind): void {
    this.writes.push({ nodeId, kind });
  }

  expand(spec: NodeSpec, sub: WorkflowSpec, message?: string): void {
    const node = this.node(spec.id);
    this.update(spec.id, { phase: transition(spec.id, node.phase, 'expanded'), subWorkflow: sub });
    const children = childNodes(spec.id, sub, node.inputs ?? {});
    for (const child of children) {
      if (this.state.nodes[child.id] === undefined) {
        this.state.nodes[child.id] = pendingExecution(this.run.id, child.id, child.task);
        this.previous.set(child.id, undefined);
        this.changed.add(child.id);
      }
    }
    this.index.addChildren(spec.id, children, this.state.nodes);
    const note = `into ${sub.nodes.length} node(s)`;
    this.emit('node:expanded', spec.id, { message: message === undefined ? note : `${note}; ${message}` });
  }

  fail(nodeId: string, error: ErrorInfo): void {
    this.update(nodeId, { phase: transition(nodeId, this.node(nodeId).phase, 'failed'), error, finishedAt: this.now });
    this.emit('node:failed', nodeId, { error }, 'error');
  }

  /**
   * Whether a node's output may be written: a value that fails the output schema cannot come from
   * a task (the SDK validates outputs), so only corruption produces one; it is never cached, and
   * the node ends PUT_FAILURE saying why.
   */
  storable(spec: NodeSpec, value: Json): boolean {
    const problem = outputSchemaProblem(spec.outputSchema, value);
    if (problem === undefined) return true;
    this.update(spec.id, { cacheStatus: 'PUT_FAILURE', cacheReason: `not cached: the output does not match the task's output schema: ${problem}` });
    this.emit('node:cache-corrupt', spec.id, { message: `output not cached, it does not match the task's output schema: ${problem}` }, 'warn');
    return false;
  }

  resolve(binding: Binding): NodeValue {
    return resolveBinding(binding, this.state);
  }

  emit(type: EngineEventType, nodeId: string, extra: Partial<EngineEvent> = {}, level: EngineEvent['level'] = 'info'): void {
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
      phase: node.phase,
      ...extra,
    };
    if (node.finishedAt !== null && node.startedAt !== null) event.durationMs = node.finishedAt.getTime() - node.startedAt.getTime();
    this.emitted.push({ type: 'EmitEvent', event });
  }

  emitRun(type: EngineEventType, level: EngineEvent['level'], error?: ErrorInfo, message?: string): void {
    const event: EngineEvent = { type, level, runId: this.run.id, workflow: this.run.workflow, durationMs: this.now.getTime() - this.run.createdAt.getTime() };
    if (error !== undefined) event.error = error;
    if (message !== undefined) event.message = message;
    this.emitted.push({ type: 'EmitEvent', event });
  }

  /** The commands collected, at most one of each kind but EmitEvent. */
  commands(): Command[] {
    const commands: Command[] = [];
    if (this.lookups.length > 0) commands.push({ type: 'LookupCache', lookups: this.lookups });
    if (this.attempts.length > 0) commands.push({ type: 'DispatchTask', attempts: this.attempts });
    if (this.writes.length > 0) {
      commands.push({ type: 'WriteCache', writes: this.writes, entries: this.writes.map((w) => cacheEntryFor(this.state, w.nodeId, w.kind)) });
    }
    if (this.cancelledAttempts.length > 0) commands.push({ type: 'CancelAttempts', attempts: this.cancelledAttempts });
    if (this.reservations.length > 0) commands.push({ type: 'AcquireReservations', requests: this.reservations });
    if (this.releases.length > 0) commands.push({ type: 'ReleaseReservations', releases: this.releases });
    // One by one: a spread passes every item as an argument, and a round may emit 100,000s of events.
    for (const emitted of this.emitted) commands.push(emitted);
    return commands;
  }
}
