/**
 * Hand-built WorkflowSpecs for the engine's unit tests (excluded from the build by
 * tsconfig.build.json). The SDK produces specs in real use; these builders let a test state the
 * DAG it needs in a few lines without depending on the SDK.
 */
import type { Json } from '../json.js';
import {
  DEFAULT_CACHE_TTL_MS,
  WORKFLOW_SPEC_VERSION,
  type Binding,
  type CacheSettings,
  type DynamicNodeSpec,
  type JsonSchema,
  type NodeSpec,
  type SubworkflowNodeSpec,
  type TaskNodeSpec,
  type WorkflowSpec,
} from '../spec/workflow-spec.js';

export interface TaskNodeOptions {
  /** `null`: caching off (DISABLED). A partial object overrides the defaults (enabled, version '1', 28 days). */
  cache?: Partial<CacheSettings> | null;
  retries?: number;
  /** The output type declares `hashWith`. */
  outputHashed?: boolean;
  /** Input schemas by name; inputs not listed accept anything (`true`). */
  inputSchemas?: { [name: string]: JsonSchema };
  output?: JsonSchema;
  timeoutMs?: number | null;
}

export function cacheSettings(overrides: Partial<CacheSettings> = {}): CacheSettings {
  return { enabled: true, version: '1', serialize: false, ignoreInputs: [], ttlMs: DEFAULT_CACHE_TTL_MS, ...overrides };
}

/** A task node whose signature has exactly the bound inputs (schemas `true` unless given). */
export function taskNode(id: string, task: string, inputs: { [name: string]: Binding }, options: TaskNodeOptions = {}): TaskNodeSpec {
  const signatureInputs: { [name: string]: JsonSchema } = {};
  for (const name of Object.keys(inputs)) signatureInputs[name] = options.inputSchemas?.[name] ?? true;
  for (const [name, schema] of Object.entries(options.inputSchemas ?? {})) signatureInputs[name] = schema;
  return {
    kind: 'task',
    id,
    task,
    signature: { inputs: signatureInputs, output: options.output ?? true, outputHashed: options.outputHashed ?? false },
    cache: options.cache === null ? null : cacheSettings(options.cache ?? {}),
    retries: options.retries ?? 0,
    timeoutMs: options.timeoutMs ?? null,
    inputs,
  };
}

/** A dynamic node (a task whose body returns a sub-workflow); options as for `taskNode`. */
export function dynamicNode(id: string, task: string, inputs: { [name: string]: Binding }, options: TaskNodeOptions = {}): DynamicNodeSpec {
  return { ...taskNode(id, task, inputs, options), kind: 'dynamic' };
}

/** A call of `workflow` (its name is the node's task); options as for `taskNode`. */
export function subworkflowNode(id: string, workflow: WorkflowSpec, inputs: { [name: string]: Binding }, options: TaskNodeOptions = {}): SubworkflowNodeSpec {
  return { ...taskNode(id, workflow.name, inputs, options), kind: 'subworkflow', workflow };
}

export function workflowSpec(
  name: string,
  nodes: NodeSpec[],
  options: { inputs?: { [name: string]: JsonSchema }; outputs?: { [name: string]: Binding }; hashedInputs?: string[] } = {},
): WorkflowSpec {
  return {
    specVersion: WORKFLOW_SPEC_VERSION,
    name,
    inputs: options.inputs ?? {},
    hashedInputs: options.hashedInputs ?? [],
    nodes,
    outputs: options.outputs ?? {},
  };
}

export const lit = (value: Json, hash?: string): Binding => (hash === undefined ? { kind: 'literal', value } : { kind: 'literal', value, hash });
export const ref = (node: string, ...path: string[]): Binding => (path.length === 0 ? { kind: 'output', node } : { kind: 'output', node, path });
export const wfInput = (name: string, ...path: string[]): Binding => (path.length === 0 ? { kind: 'input', name } : { kind: 'input', name, path });
export const arr = (...items: Binding[]): Binding => ({ kind: 'array', items });
export const obj = (fields: { [name: string]: Binding }): Binding => ({ kind: 'object', fields });

/**
 * The ownership tests' run: `a` (x = 1) and `b` (x = 2), summed by `sum`, caching off; with
 * `times10OrSum`, the body a test transport runs for it, its output is `{ total: 30 }`.
 */
export function wideSum(name = 'own.wide'): WorkflowSpec {
  return workflowSpec(name, [taskNode('a', 'times', { x: lit(1) }, { cache: null }), taskNode('b', 'times', { x: lit(2) }, { cache: null }), taskNode('sum', 'sum', { xs: arr(ref('a'), ref('b')) }, { cache: null })], {
    outputs: { total: ref('sum') },
  });
}

/** The bodies of `wideSum`'s tasks: `times` is x × 10, `sum` adds its `xs`. */
export function times10OrSum(attempt: { task: string; inputs: { readonly [name: string]: Json } }): Json {
  return attempt.task === 'sum' ? (attempt.inputs['xs'] as number[]).reduce((a, b) => a + b, 0) : (attempt.inputs['x'] as number) * 10;
}
