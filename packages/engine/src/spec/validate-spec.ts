import { MemoflowError } from '../errors.js';
import { assertIgnoredInputsExist, assertValidCacheVersion } from './cache-settings.js';
import { incompatibility, schemaAtPath } from './schema-compat.js';
import { topologicalOrder } from './topological-order.js';
import { WORKFLOW_SPEC_VERSION, nodeDependencies, type Binding, type JsonSchema, type NodeSpec, type WorkflowSpec } from './workflow-spec.js';

const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]+$/;

/**
 * Checks a spec before anything is dispatched and returns it with its nodes in topological order
 * (the order `decide` relies on). The SDK produces valid specs; this guards specs from anywhere else
 * (a standalone controller, a hand-written file) and catches what tracing cannot: cycles, references
 * to unknown nodes or inputs, unbound inputs, type mismatches. Every error names workflow, node, field.
 */
export function validateSpec(spec: WorkflowSpec): WorkflowSpec {
  const workflow = spec.name;
  if (spec.specVersion !== WORKFLOW_SPEC_VERSION) {
    throw new MemoflowError('INVALID_SPEC', `unsupported specVersion ${String(spec.specVersion)} (this engine reads ${String(WORKFLOW_SPEC_VERSION)})`, { workflow });
  }
  const byId = new Map<string, NodeSpec>();
  for (const node of spec.nodes) {
    if (!NODE_ID_PATTERN.test(node.id) || node.id === '__proto__') {
      throw new MemoflowError('INVALID_SPEC', node.id === '__proto__' ? "a node cannot be named '__proto__' (JavaScript reads it as the prototype, so the node's record would be lost): rename its task or pass it another id" : `node id '${node.id}' may only contain letters, digits, '_', '-' and '.'`, { workflow, node: node.id });
    }
    if (byId.has(node.id)) throw new MemoflowError('INVALID_SPEC', `node id '${node.id}' is used twice`, { workflow, node: node.id });
    byId.set(node.id, node);
  }
  for (const name of Object.keys(spec.inputs)) assertInputName(name, { workflow, field: `inputs.${name}` });
  for (const [name, digest] of Object.entries(spec.pinnedInputs ?? {})) {
    if (!Object.hasOwn(spec.inputs, name)) throw new MemoflowError('UNKNOWN_INPUT', `pins input '${name}', which the workflow does not have`, { workflow, field: `pinnedInputs.${name}` });
    if (digest !== null && typeof digest !== 'string') throw new MemoflowError('INVALID_SPEC', 'a pinned input is a digest or null', { workflow, field: `pinnedInputs.${name}` });
  }
  for (const node of spec.nodes) validateNode(spec, node, byId);
  for (const [name, binding] of Object.entries(spec.outputs)) {
    if (name === '__proto__') throw new MemoflowError('INVALID_SPEC', "an output cannot be named '__proto__' (JavaScript reads it as the prototype, so it would drop out of the run's outputs): rename it", { workflow, field: `outputs.${name}` });
    checkReferences(spec, binding, byId, { node: undefined, field: `outputs.${name}` });
  }
  // A sub-workflow node carries a whole workflow: it is validated (and ordered) the same way.
  const nodes = dependencyOrder(spec, byId).map((node) => (node.kind === 'subworkflow' ? { ...node, workflow: validateSpec(node.workflow) } : node));
  return { ...spec, nodes };
}

/**
 * `__proto__` cannot name an input: every object of inputs built by assignment (a node's resolved
 * inputs, its cache key's input digests, a task's arguments) would set its prototype instead, so
 * the input would silently drop out of the key: two runs with different values under that name
 * would share one cache entry.
 */
function assertInputName(name: string, where: { workflow: string; node?: string; field: string }): void {
  if (name === '__proto__') throw new MemoflowError('INVALID_SPEC', "an input cannot be named '__proto__' (JavaScript reads it as the prototype, so it would drop out of the cache key): rename it", where);
}

function validateNode(spec: WorkflowSpec, node: NodeSpec, byId: Map<string, NodeSpec>): void {
  const where = { workflow: spec.name, node: node.id };
  if (node.cache !== null) {
    assertValidCacheVersion(node.cache.version, where);
    assertIgnoredInputsExist(node.cache.ignoreInputs, Object.keys(node.signature.inputs), where);
  }
  // A sub-workflow's optional inputs are its workflow's (a workflow's signature, which is part of
  // the call's cache key, does not list them): `inner({ name })` may leave out `inner`'s `title`.
  const optional = new Set([...(node.signature.optionalInputs ?? []), ...(node.kind === 'subworkflow' ? (node.workflow.optionalInputs ?? []) : [])]);
  for (const name of [...Object.keys(node.signature.inputs), ...Object.keys(node.inputs)]) assertInputName(name, { ...where, field: name });
  for (const name of Object.keys(node.signature.inputs)) {
    if (!Object.hasOwn(node.inputs, name) && !optional.has(name)) {
      throw new MemoflowError('UNBOUND_INPUT', `input '${name}' of task '${node.task}' is not bound`, { ...where, field: name });
    }
  }
  for (const [name, binding] of Object.entries(node.inputs)) {
    const expected = Object.hasOwn(node.signature.inputs, name) ? node.signature.inputs[name] : undefined;
    if (expected === undefined) {
      throw new MemoflowError('UNKNOWN_INPUT', `task '${node.task}' has no input '${name}' (inputs: ${Object.keys(node.signature.inputs).join(', ') || 'none'})`, { ...where, field: name });
    }
    checkReferences(spec, binding, byId, { node: node.id, field: name });
    const given = bindingSchema(spec, binding, byId);
    const reason = given === undefined ? null : incompatibility(expected, given);
    if (reason !== null) {
      throw new MemoflowError('TYPE_MISMATCH', `${describeBinding(binding)} does not fit the input: ${reason}`, { ...where, field: name });
    }
  }
}

function checkReferences(spec: WorkflowSpec, binding: Binding, byId: Map<string, NodeSpec>, where: { node: string | undefined; field: string }): void {
  const location = { workflow: spec.name, field: where.field, ...(where.node === undefined ? {} : { node: where.node }) };
  switch (binding.kind) {
    case 'literal':
      return;
    case 'input':
      if (!Object.hasOwn(spec.inputs, binding.name)) {
        throw new MemoflowError('UNKNOWN_INPUT', `workflow has no input '${binding.name}'`, location);
      }
      return;
    case 'output':
      if (!byId.has(binding.node)) {
        throw new MemoflowError('UNKNOWN_NODE_REFERENCE', `refers to node '${binding.node}', which is not in the workflow`, location);
      }
      if (binding.node === where.node) throw new MemoflowError('CYCLE_IN_WORKFLOW', 'node reads its own output', location);
      return;
    case 'array':
      for (const item of binding.items) checkReferences(spec, item, byId, where);
      return;
    case 'object':
      for (const field of Object.values(binding.fields)) checkReferences(spec, field, byId, where);
      return;
  }
}

/** The schema a binding produces, when it can be known without values (references only). */
export function bindingSchema(spec: WorkflowSpec, binding: Binding, byId: ReadonlyMap<string, NodeSpec> = new Map(spec.nodes.map((node) => [node.id, node]))): JsonSchema | undefined {
  switch (binding.kind) {
    case 'input': {
      const schema = spec.inputs[binding.name];
      return schema === undefined ? undefined : schemaAtPath(schema, binding.path ?? []);
    }
    case 'output': {
      const producer = byId.get(binding.node);
      return producer === undefined ? undefined : schemaAtPath(producer.signature.output, binding.path ?? []);
    }
    case 'literal':
    case 'array':
    case 'object':
      return undefined;
  }
}

function describeBinding(binding: Binding): string {
  const path = (p: string[] | undefined) => (p === undefined || p.length === 0 ? '' : `.${p.join('.')}`);
  switch (binding.kind) {
    case 'input':
      return `workflow input '${binding.name}${path(binding.path)}'`;
    case 'output':
      return `output of node '${binding.node}${path(binding.path)}'`;
    case 'literal':
    case 'array':
    case 'object':
      return 'the bound value';
  }
}

function dependencyOrder(spec: WorkflowSpec, byId: Map<string, NodeSpec>): NodeSpec[] {
  const sorted = topologicalOrder(
    spec.nodes.map((node) => node.id),
    (id) => nodeDependencies(byId.get(id) as NodeSpec),
  );
  if (!sorted.ok) {
    const { cycle } = sorted;
    const named = [...cycle].reverse();
    const path = named.length > 20 ? `${named.slice(0, 20).join(' -> ')} -> ... (${named.length} nodes)` : named.join(' -> ');
    throw new MemoflowError('CYCLE_IN_WORKFLOW', `nodes form a cycle: ${path}`, { workflow: spec.name, ...(cycle[0] === undefined ? {} : { node: cycle[0] }) });
  }
  return sorted.order.map((id) => byId.get(id) as NodeSpec);
}
