import { outputSchemaProblem } from '../../../cache/output-validator.js';
import type { ErrorInfo } from '../../../errors.js';
import type { Json, NodeValue } from '../../../json.js';
import type { CacheEntryKind } from '../../../ports/cache-catalog.js';
import type { Binding, NodeSpec, WorkflowSpec } from '../../../spec/workflow-spec.js';
import type { NodePhase } from '../../../state/node-phase.js';
import type { NodeExecution, RunRecord, RunState } from '../../../state/run-state.js';
import { runNodes } from '../../core/expand.js';
import { resolveBinding } from '../../core/resolve-binding.js';
import type { EngineEvent, EngineEventType } from '../../vocabulary/commands.js';
import type { NodeContext } from '../node-handler.js';

/** One call a handler made on its context, in the order it made them. */
export type ContextCall =
  | { call: 'update'; nodeId: string; patch: Partial<NodeExecution> }
  | { call: 'emit'; type: EngineEventType; nodeId: string; extra: Partial<EngineEvent>; level: EngineEvent['level'] }
  | { call: 'lookup'; nodeId: string; kind: CacheEntryKind }
  | { call: 'dispatch'; nodeId: string; message: string | undefined }
  | { call: 'write'; nodeId: string; kind: CacheEntryKind }
  | { call: 'expand'; nodeId: string; sub: WorkflowSpec; message: string | undefined }
  | { call: 'fail'; nodeId: string; error: ErrorInfo }
  | { call: 'storable'; nodeId: string; value: Json };

/**
 * A NodeContext that records what a handler asks for (Flyte's handler tests use a mocked
 * NodeExecutionContext the same way), so a handler's unit tests see exactly the calls of one
 * method, without the core that surrounds it in `decide`.
 *
 * Only `update` changes the nodes it holds (a handler that reads a node back sees its own change);
 * every effect (dispatch, expand, write, fail, emit, lookup) is recorded and not performed: what
 * the Draft does with them is tested through `decide`. `storable` answers from the real output
 * schema check and records the question.
 */
export class RecordingContext implements NodeContext {
  readonly calls: ContextCall[] = [];
  private readonly specs: Map<string, NodeSpec>;

  constructor(
    readonly state: RunState,
    readonly now: Date,
  ) {
    this.specs = runNodes(state).byId;
  }

  get run(): RunRecord {
    return this.state.run;
  }

  node(nodeId: string): NodeExecution {
    const node = this.state.nodes[nodeId];
    if (node === undefined) throw new Error(`no node '${nodeId}'`);
    return node;
  }

  spec(nodeId: string): NodeSpec {
    const spec = this.specs.get(nodeId);
    if (spec === undefined) throw new Error(`no spec of node '${nodeId}'`);
    return spec;
  }

  update(nodeId: string, patch: Partial<NodeExecution> & { phase?: NodePhase }): void {
    this.calls.push({ call: 'update', nodeId, patch });
    this.state.nodes[nodeId] = { ...this.node(nodeId), ...patch };
  }

  emit(type: EngineEventType, nodeId: string, extra: Partial<EngineEvent> = {}, level: EngineEvent['level'] = 'info'): void {
    this.calls.push({ call: 'emit', type, nodeId, extra, level });
  }

  lookup(nodeId: string, kind: CacheEntryKind): void {
    this.calls.push({ call: 'lookup', nodeId, kind });
  }

  dispatch(nodeId: string, message?: string): void {
    this.calls.push({ call: 'dispatch', nodeId, message });
  }

  write(nodeId: string, kind: CacheEntryKind): void {
    this.calls.push({ call: 'write', nodeId, kind });
  }

  expand(spec: NodeSpec, sub: WorkflowSpec, message?: string): void {
    this.calls.push({ call: 'expand', nodeId: spec.id, sub, message });
  }

  fail(nodeId: string, error: ErrorInfo): void {
    this.calls.push({ call: 'fail', nodeId, error });
  }

  storable(spec: NodeSpec, value: Json): boolean {
    this.calls.push({ call: 'storable', nodeId: spec.id, value });
    return outputSchemaProblem(spec.outputSchema, value) === undefined;
  }

  resolve(binding: Binding): NodeValue {
    return resolveBinding(binding, this.state);
  }

  /** The calls' names in order (`dispatch`, `update`, ...), for the shape of what a method did. */
  names(): ContextCall['call'][] {
    return this.calls.map((c) => c.call);
  }
}
