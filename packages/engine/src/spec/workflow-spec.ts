import type { Json, MemberHashes } from '../json.js';

/**
 * The serialisable form of a workflow: plain JSON, produced by the SDK tracing a workflow
 * function once, consumed by the engine. Nothing in here refers to user code except task names,
 * which workers resolve in their own registries.
 */
export const WORKFLOW_SPEC_VERSION = 1;

/** A JSON Schema document (draft 2020-12), as produced from the zod types. */
export type JsonSchema = { [key: string]: Json } | boolean;

/** Per-node cache settings, resolved (defaults filled in) by the SDK. */
export interface CacheSettings {
  enabled: boolean;
  /** Letters, digits, `-`, `_`, `.`. Bumping it invalidates every entry of the task. */
  version: string;
  /** Concurrent executions with the same key run once; others wait on a reservation. */
  serialize: boolean;
  /** Inputs left out of the key. */
  ignoreInputs: string[];
  /** Entries older than this are misses. */
  ttlMs: number;
}

export const DEFAULT_CACHE_TTL_MS = 28 * 24 * 60 * 60 * 1000;

/** A task's interface: what the cache key calls the signature. */
export interface TaskSignature {
  inputs: { [name: string]: JsonSchema };
  output: JsonSchema;
  /** True when the output type declares `hashWith`: downstream keys use its content hash. */
  outputHashed: boolean;
  /** Inputs that may be left unbound (their schema accepts `undefined`); absent when there are none. */
  optionalInputs?: string[];
  /**
   * Dynamic and sub-workflow nodes: a digest of the definitions of the nodes they may create (the
   * tasks a dynamic declares, a sub-workflow's spec). Part of the signature, so a changed child
   * definition changes the key and a stale future or sub-workflow entry is never replayed.
   */
  children?: string;
}

/**
 * How an input is fed. A reference to a node's output may carry a `path` into an object output
 * (`split(...).train`); a path into a hashed output loses the hash (the field is not what was hashed).
 */
export type Binding =
  | { kind: 'literal'; value: Json; hash?: string; members?: MemberHashes }
  | { kind: 'input'; name: string; path?: string[] }
  | { kind: 'output'; node: string; path?: string[] }
  | { kind: 'array'; items: Binding[] }
  | { kind: 'object'; fields: { [name: string]: Binding } };

export interface TaskNodeSpec {
  kind: 'task';
  /** Unique within the workflow; what logs, the run store and `--resume-from` name. */
  id: string;
  /** Stable, user-visible task name (`etl.clean`); workers resolve it in their registry. */
  task: string;
  signature: TaskSignature;
  /**
   * The JSON Schema of the output as the task returns it (zod `io: 'output'`; `signature.output`
   * is the `io: 'input'` form, which is wrong for types with transforms or defaults). A cache hit
   * whose value fails it is a miss with a warning, and a value that fails it is never written.
   * Absent in specs from before it existed (no check) and on sub-workflow calls.
   */
  outputSchema?: JsonSchema;
  /** `null`: caching off for this node (status DISABLED). */
  cache: CacheSettings | null;
  /** Extra attempts after a failed one. */
  retries: number;
  timeoutMs: number | null;
  inputs: { [name: string]: Binding };
  /**
   * The version of the task *definition* this node was traced from (its `cache.version`, or the
   * version derived from its source when none is given or caching is off), not a per-call override:
   * attempts carry it so a worker running another definition refuses them. Absent in specs saved
   * before it existed (and on sub-workflow nodes, which are not dispatched).
   */
  taskVersion?: string;
}

/**
 * A dynamic node: its body runs on a worker like a task but returns a sub-workflow (its "future"),
 * which the controller stores in the catalog under the node's key and then runs. `task` names the
 * body in worker registries.
 */
export interface DynamicNodeSpec extends Omit<TaskNodeSpec, 'kind'> {
  kind: 'dynamic';
}

/**
 * A call of another workflow. Its inner nodes run (and are cached) individually; with `cache` set
 * the call is also cached as a whole (Flyte's node-level caching of sub-workflows). `task` is the
 * called workflow's name.
 */
export interface SubworkflowNodeSpec extends Omit<TaskNodeSpec, 'kind'> {
  kind: 'subworkflow';
  workflow: WorkflowSpec;
}

export type NodeSpec = TaskNodeSpec | DynamicNodeSpec | SubworkflowNodeSpec;
export type NodeKind = NodeSpec['kind'];

export interface WorkflowSpec {
  specVersion: typeof WORKFLOW_SPEC_VERSION;
  name: string;
  inputs: { [name: string]: JsonSchema };
  /** Inputs whose type declares `hashWith`; the client hashes their values at submission. */
  hashedInputs: string[];
  /** Inputs a run may leave out (their schema accepts `undefined`); absent when there are none. */
  optionalInputs?: string[];
  /**
   * A dynamic node's future only: the inputs whose values the body may have copied into literals
   * (a primitive cannot be bound by reference), each with the digest (`hashJson`) of the value it
   * was compiled with, or `null` if it was left out. A run whose inputs differ there (possible for
   * an ignored or `hashWith` input, which the key does not see) does not replay the future: the
   * body runs again. Absent in futures written before it existed and in workflows.
   */
  pinnedInputs?: { [name: string]: string | null };
  /** In a topological order (the order the SDK traced them). */
  nodes: NodeSpec[];
  outputs: { [name: string]: Binding };
}

/** Every node id a binding reads from. */
export function bindingDependencies(binding: Binding, into: Set<string> = new Set()): Set<string> {
  switch (binding.kind) {
    case 'literal':
    case 'input':
      return into;
    case 'output':
      into.add(binding.node);
      return into;
    case 'array':
      for (const item of binding.items) bindingDependencies(item, into);
      return into;
    case 'object':
      for (const field of Object.values(binding.fields)) bindingDependencies(field, into);
      return into;
  }
}

export function nodeDependencies(node: NodeSpec): Set<string> {
  const deps = new Set<string>();
  for (const binding of Object.values(node.inputs)) bindingDependencies(binding, deps);
  return deps;
}
