import type { Binding, NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import type { RunState } from '../../state/run-state.js';
import { childId, DYNAMIC_RESULT } from './expand.js';
import { atPath } from './resolve-binding.js';

/**
 * The cascade rule (DESIGN.md): a node executes without a lookup when a node it reads from executed
 * instead of hitting, because an upstream rerun may have changed data the keys cannot see. The one
 * exception is content-addressed data: a value whose type declares `hashWith` is keyed by its hash,
 * so reading it from a rerun node does not taint the reader.
 *
 * The exception holds per value. An object or array binding taints if any member does. A container
 * (sub-workflow, dynamic) passes on its children's data, so reading its output is reading what its
 * output binding reads, field by field: `inner().hashed` reads only the child behind that field,
 * `inner()` as a whole reads every field (a plain field from a rerun child taints, a hashed one
 * does not), and a field that passes a container input through reads what that input is bound to.
 *
 * Bindings are walked as written (in the workflow or sub-workflow that holds them), not as
 * expanded: expansion replaces a container's inputs by their values, which would hide that they
 * came from a rerun node.
 *
 * Returns the id of the first upstream node that taints `node`, or null.
 */
export function taintingUpstream(node: NodeSpec, state: RunState): string | null {
  const located = locate(node.id, state);
  const [bindings, scope] = located === undefined ? [node.inputs, null] : [located.written.inputs, located.scope];
  for (const binding of Object.values(bindings)) {
    const culprit = taintAt(binding, [], scope, state);
    if (culprit !== null) return culprit;
  }
  return null;
}

/**
 * Where bindings are written: the run's workflow (`null`: ids as in the run), or an expanded
 * container's sub-workflow (ids unprefixed, `input` naming the container's inputs).
 */
interface Scope {
  /** The container's id in the run. */
  id: string;
  /** The container as written in the enclosing scope (its kind, and its inputs' bindings there). */
  written: NodeSpec;
  sub: WorkflowSpec;
  outer: Scope | null;
  /**
   * Entered by reading the container's output (not by locating one of its children, whose own
   * cascade the container's status already decides: see `skipReason` in decide.ts).
   */
  throughOutput: boolean;
}

interface Located {
  written: NodeSpec;
  scope: Scope | null;
}

/** The first rerun node whose data reaches what `binding` gives at `path`, unless content-addressed. */
function taintAt(binding: Binding, path: readonly string[], scope: Scope | null, state: RunState): string | null {
  switch (binding.kind) {
    case 'literal':
      return scope !== null && binding.hash === undefined && bodyRanOnRerunData(scope, state) ? scope.id : null;
    case 'input': {
      if (scope === null) return null; // the run's inputs: no node produced them
      const outer = scope.written.inputs[binding.name];
      return outer === undefined ? null : taintAt(outer, [...(binding.path ?? []), ...path], scope.outer, state);
    }
    case 'output': {
      const fullPath = [...(binding.path ?? []), ...path];
      if (scope === null) return taintOfOutput(binding.node, locate(binding.node, state), fullPath, state);
      const written = nodesById(scope.sub).get(binding.node);
      return taintOfOutput(childId(scope.id, binding.node), written === undefined ? undefined : { written, scope }, fullPath, state);
    }
    case 'array':
      // A path reads object fields; into an array it reads null, which no node produced.
      if (path.length > 0) return null;
      return first(binding.items, (item) => taintAt(item, [], scope, state));
    case 'object': {
      const [name, ...rest] = path;
      if (name !== undefined) return Object.hasOwn(binding.fields, name) ? taintAt(binding.fields[name] as Binding, rest, scope, state) : null;
      return first(Object.values(binding.fields), (field) => taintAt(field, [], scope, state));
    }
  }
}

/**
 * What a node's output taints at `path`. A node that hit did not rerun (a container served whole
 * from the catalog included), nor did one recovered from an earlier run (resume, retry). An expanded container passes on whatever its output binding reads
 * there. Any other node executed: what it gives is content-addressed only where its output is
 * hashed as a whole at that path.
 */
function taintOfOutput(nodeId: string, located: Located | undefined, path: readonly string[], state: RunState): string | null {
  const node = state.nodes[nodeId];
  if (node === undefined || node.cacheStatus === 'HIT') return null;
  // Reused from an earlier run: not rerun either. A recovered container replayed its expansion,
  // and some of its children may have run: it is seen through below.
  if (node.cacheStatus === 'RECOVERED' && node.subWorkflow == null) return null;
  const sub = node.subWorkflow;
  if (sub != null) {
    // A container that cannot be found as written cannot be seen through: count it as rerun.
    if (located === undefined) return nodeId;
    const scope: Scope = { id: nodeId, written: located.written, sub, outer: located.scope, throughOutput: true };
    return taintAt(outputOf(located.written, sub), path, scope, state);
  }
  return node.output != null && atPath(node.output, path).hash !== undefined ? null : nodeId;
}

/** A container's output binding as its sub-workflow writes it (`containerOutputBinding` gives it in run terms). */
function outputOf(container: NodeSpec, sub: WorkflowSpec): Binding {
  if (container.kind === 'dynamic') return sub.outputs[DYNAMIC_RESULT] ?? { kind: 'literal', value: null };
  return { kind: 'object', fields: sub.outputs };
}

/**
 * A dynamic body that ran on data from a rerun node (the node is SKIPPED upstream-reran) may have
 * computed the literals it returned from that data, so they taint like its inputs would. A
 * sub-workflow's literals are its definition's, and a replayed future's were computed from inputs
 * with the same key.
 */
function bodyRanOnRerunData(scope: Scope, state: RunState): boolean {
  const node = state.nodes[scope.id];
  return scope.throughOutput && scope.written.kind === 'dynamic' && node?.cacheStatus === 'SKIPPED' && node.cacheReason === 'upstream-reran';
}

/** A node of the run by its id: as written, and in which scope. */
function locate(runId: string, state: RunState): Located | undefined {
  return locateIn(state.run.spec, null, runId, state);
}

function locateIn(workflow: WorkflowSpec, scope: Scope | null, localId: string, state: RunState): Located | undefined {
  const nodes = nodesById(workflow);
  const direct = nodes.get(localId);
  if (direct !== undefined) return { written: direct, scope };
  // `<container>.<rest>`: ids may contain dots themselves, so try each split.
  for (let dot = localId.indexOf('.'); dot !== -1; dot = localId.indexOf('.', dot + 1)) {
    const container = nodes.get(localId.slice(0, dot));
    if (container === undefined) continue;
    const id = scope === null ? container.id : childId(scope.id, container.id);
    const sub = state.nodes[id]?.subWorkflow;
    if (sub == null) continue;
    const found = locateIn(sub, { id, written: container, sub, outer: scope, throughOutput: false }, localId.slice(dot + 1), state);
    if (found !== undefined) return found;
  }
  return undefined;
}

const indexes = new WeakMap<WorkflowSpec, Map<string, NodeSpec>>();

/** A workflow's nodes by id, computed once per spec object (the cascade runs for every node start). */
function nodesById(workflow: WorkflowSpec): Map<string, NodeSpec> {
  let index = indexes.get(workflow);
  if (index === undefined) {
    index = new Map(workflow.nodes.map((node) => [node.id, node]));
    indexes.set(workflow, index);
  }
  return index;
}

function first<T>(items: readonly T[], culprit: (item: T) => string | null): string | null {
  for (const item of items) {
    const found = culprit(item);
    if (found !== null) return found;
  }
  return null;
}
