import type { ErrorInfo } from '../../errors.js';
import type { Json, NodeValue } from '../../json.js';
import type { CacheEntryKind } from '../../ports/cache-catalog.js';
import type { AttemptResult } from '../../ports/task-dispatcher.js';
import type { Binding, NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import type { CacheStatus } from '../../state/cache-status.js';
import type { NodePhase } from '../../state/node-phase.js';
import type { NodeExecution, RunRecord } from '../../state/run-state.js';
import type { EngineEvent, EngineEventType } from '../vocabulary/commands.js';
import type { LookupOutcome } from '../vocabulary/events.js';

/**
 * What a node handler may touch while a decision runs (Flyte propeller's NodeExecutionContext):
 * read nodes, change them through `update` (the one place a phase changes, so the run's index
 * stays current), and ask for effects. The effects are collected and performed by the shell after
 * the decision is saved; a handler never performs I/O.
 */
export interface NodeContext {
  readonly now: Date;
  readonly run: RunRecord;
  node(nodeId: string): NodeExecution;
  spec(nodeId: string): NodeSpec;
  update(nodeId: string, patch: Partial<NodeExecution> & { phase?: NodePhase }): void;
  emit(type: EngineEventType, nodeId: string, extra?: Partial<EngineEvent>, level?: EngineEvent['level']): void;
  /** Asks the catalog for the node's entry of `kind` under its key. */
  lookup(nodeId: string, kind: CacheEntryKind): void;
  /** Starts the node's next attempt on a worker. */
  dispatch(nodeId: string, message?: string): void;
  /** Writes the node's output (or a dynamic node's future) to the catalog. */
  write(nodeId: string, kind: CacheEntryKind): void;
  /** Makes a container's children nodes of the run. */
  expand(spec: NodeSpec, sub: WorkflowSpec, message?: string): void;
  fail(nodeId: string, error: ErrorInfo): void;
  /** Whether `value` may be written as the node's entry (it fits the output schema); records why not. */
  storable(spec: NodeSpec, value: Json): boolean;
  /** A binding's value in the run as it stands (with what is hashed in it). */
  resolve(binding: Binding): NodeValue;
}

/** A lookup of the node's output came back without a usable entry: why, for the node's status. */
export interface LookupMiss {
  status: CacheStatus;
  reason: string | null;
}

/**
 * One node kind's behaviour (Flyte propeller's NodeHandler). The core starts a node (inputs,
 * key, cascade), applies the output lookup and drives the phases common to every kind; a handler
 * decides what its kind does at each step. Each method receives a node in the phase named.
 */
export interface NodeHandler<S extends NodeSpec = NodeSpec> {
  /** Entry kinds looked up when the node starts with caching on (the output, and a dynamic node's future). */
  readonly lookups: readonly CacheEntryKind[];
  /** Runs the node because the catalog did not serve it (a miss, a skip, caching off). Node: pending or looking-up. */
  execute(ctx: NodeContext, spec: S, message?: string): void;
  /** The output lookup found nothing usable; `outcomes` holds every kind looked up. Node: looking-up. */
  missed(ctx: NodeContext, spec: S, outcomes: readonly LookupOutcome[], miss: LookupMiss): void;
  /** The node's current attempt finished (already screened: an unstorable output is a failure). Node: dispatched. */
  attemptFinished(ctx: NodeContext, spec: S, result: AttemptResult): void;
  /** Every child of the expanded container is terminal. Node: expanded. Returns whether it moved. */
  childrenSettled(ctx: NodeContext, spec: S, children: readonly NodeExecution[]): boolean;
}
