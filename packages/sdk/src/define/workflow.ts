import { z } from 'zod';
import {
  MemoflowError,
  describeGiven,
  toErrorInfo,
  WORKFLOW_SPEC_VERSION,
  bindingSchema,
  hashJson,
  validateSpec,
  type Binding,
  type Json,
  type JsonSchema,
  type NodeValue,
  type TaskSignature,
  type WorkflowSpec,
} from '@memoflow/engine';
import { computeHash, hashFunctionOf } from './hash-with.js';
import { assertSchemas } from './check-schemas.js';
import { toJsonSchema } from './json-schema.js';
import { checkRawValue, toJsonValue } from './json-value.js';
import { createReference, referenceBinding, type Bindable, type Ref, type Unref } from './reference.js';
import { assertNodeName, assertOptionsObject, assertStorableName, optionalNames, type AnyTask, type InputBindings, type InputShape, type OptionalWhenUndefined, type TaskCall } from './task.js';
import { WorkflowTrace, currentTrace, withTrace, type SubworkflowSource } from './trace.js';

export type InputRefs<I extends InputShape> = { [K in keyof I]: Ref<z.output<I[K]>> };
export type WorkflowOutputs = { readonly [name: string]: Bindable<unknown> };

export interface WorkflowOptions<I extends InputShape> {
  /** Stable, user-visible name (`etl.main`): what the CLI runs and the run store records. */
  name: string;
  description?: string;
  inputs: I;
}

export interface WorkflowDefinition<I extends InputShape, R> {
  /**
   * Called inside another workflow's (or a dynamic's) body: a sub-workflow node whose inner nodes
   * are cached individually; `.withOverrides({ cache: { version: '1' } })` caches the call as a whole.
   */
  (inputs: InputBindings<I>): TaskCall<R>;
  readonly kind: 'workflow';
  readonly workflowName: string;
  readonly description: string | undefined;
  readonly inputs: I;
  /** The traced, validated spec (traced once, on first use). */
  readonly spec: WorkflowSpec;
  /** Every task the workflow calls, by name, transitively: what a worker pool must register. */
  readonly tasks: ReadonlyMap<string, AnyTask>;
  /** The interface as a node: input schemas, an object of outputs, and a digest of the whole spec. */
  readonly signature: TaskSignature;
  /** The version `cache: true` gives a sub-workflow call: derived from the spec. */
  readonly sourceVersion: string;
  /** Validates run inputs against their schemas and hashes `hashWith` ones. */
  prepareInputs(inputs: unknown): { [name: string]: NodeValue };
  /** Phantom: the run's result type. */
  readonly __result?: R;
}

/**
 * Any workflow, as a value to run or inspect. Without the call signature: its parameter would make a
 * specific workflow unassignable to one over the general InputShape (parameters are contravariant).
 */
export type AnyWorkflow = Omit<WorkflowDefinition<InputShape, unknown>, never>;
/** A run's result type. Inferred from the phantom `__result`: the call signature's parameter would defeat inference. */
export type WorkflowResult<W> = W extends { readonly __result?: infer R } ? R : never;
/** A run's inputs: an input whose schema accepts `undefined` (`.optional()`, `.default(...)`) may be left out. */
export type WorkflowInputs<W> = W extends { readonly inputs: infer I extends InputShape } ? OptionalWhenUndefined<{ [K in keyof I]: z.input<I[K]> }> : never;

/**
 * Defines a workflow. The body runs once (at first use), with references for its inputs, and
 * returns an object of references or literals: the run's outputs.
 */
export function workflow<I extends InputShape, R extends WorkflowOutputs>(
  options: WorkflowOptions<I>,
  body: (inputs: InputRefs<I>) => R,
): WorkflowDefinition<I, Unref<R>> {
  assertOptionsObject('workflow', options);
  const name = options.name;
  assertNodeName('workflow', name);
  assertSchemas({ inputs: options.inputs }, { workflow: name }, `workflow '${name}'`);
  if (typeof body !== 'function') {
    throw new MemoflowError('INVALID_SPEC', `the workflow body must be a function (({ rows }) => ({ total: total({ rows }) })), got ${describeGiven(body)}`, { workflow: name, field: 'body' });
  }
  let traced: Traced | undefined;
  const compile = () => (traced ??= traceOnce(options, body as (inputs: unknown) => unknown));
  const inputSchema = z.object(options.inputs);

  const call = (inputs: InputBindings<I>) => currentTrace(name).addWorkflowCall(definition as unknown as SubworkflowSource, inputs);
  // defineProperties, not Object.assign: assign would read the getters and trace at definition time.
  const lazy = <T>(get: () => T): PropertyDescriptor => ({ get, enumerable: true });
  const definition = Object.defineProperties(call, {
    spec: lazy(() => compile().spec),
    tasks: lazy(() => compile().tasks),
    signature: lazy(() => compile().signature),
    sourceVersion: lazy(() => `spec-${(compile().signature.children ?? '').slice(0, 12)}`),
  });
  Object.assign(definition, {
    kind: 'workflow' as const,
    workflowName: name,
    description: options.description,
    inputs: options.inputs,
    prepareInputs(inputs: unknown) {
      if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
        throw new MemoflowError('INPUT_SCHEMA_MISMATCH', 'run inputs must be an object', { workflow: name });
      }
      for (const key of Object.keys(inputs)) {
        // Own names only: `toString` or `constructor` is in every object, and is no input.
        if (!Object.hasOwn(options.inputs, key)) {
          throw new MemoflowError('UNKNOWN_INPUT', `workflow has no input '${key}' (inputs: ${Object.keys(options.inputs).join(', ') || 'none'})`, { workflow: name, field: key });
        }
      }
      for (const key of Object.keys(options.inputs)) {
        if ((inputs as { [key: string]: unknown })[key] === undefined && !(options.inputs[key] as z.ZodType).safeParse(undefined).success) {
          throw new MemoflowError('MISSING_INPUT', `input '${key}' is required`, { workflow: name, field: key });
        }
      }
      // Before the schema: it would drop `__proto__` keys silently, or recurse into a cycle.
      for (const [key, value] of Object.entries(inputs)) checkRawValue(value, { workflow: name, field: key });
      const parsed = inputSchema.safeParse(inputs);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = issue?.path.map(String).join('.') ?? '';
        throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `input does not match its schema: ${issue?.message ?? parsed.error.message}`, { workflow: name, field });
      }
      const prepared: { [name: string]: NodeValue } = {};
      for (const [key, schema] of Object.entries(options.inputs)) {
        const value = (parsed.data as { [key: string]: unknown })[key];
        if (value === undefined) continue; // an optional input left out stays out (not null)
        const json = toJsonValue(value, { workflow: name, field: key });
        const hash = computeHash(schema, value, `workflow input '${key}'`, { workflow: name, field: key });
        prepared[key] = hash === undefined ? { value: json } : { value: json, hash };
      }
      return prepared;
    },
  });
  return definition as unknown as WorkflowDefinition<I, Unref<R>>;
}

interface Traced {
  spec: WorkflowSpec;
  tasks: ReadonlyMap<string, AnyTask>;
  signature: TaskSignature;
}

/**
 * The workflows being traced right now, outermost first (by definition, not by name: two
 * workflows may share a name). One met again while it is being traced calls itself.
 */
const tracing: { options: object; name: string }[] = [];

/**
 * Traces a workflow, refusing one that calls itself (directly or through sub-workflows), whose
 * trace would otherwise recurse until the stack overflows.
 */
function traceOnce<I extends InputShape>(options: WorkflowOptions<I>, body: (inputs: unknown) => unknown): Traced {
  const at = tracing.findIndex((entry) => entry.options === options);
  if (at !== -1) {
    const cycle = [...tracing.slice(at).map((entry) => entry.name), options.name].map((name) => `'${name}'`).join(' -> ');
    throw new MemoflowError('CYCLE_IN_WORKFLOW', `workflow '${options.name}' calls itself through sub-workflows (${cycle}); a workflow cannot contain itself`, {
      workflow: tracing[tracing.length - 1]?.name ?? options.name,
    });
  }
  tracing.push({ options, name: options.name });
  try {
    return trace(options, body);
  } finally {
    tracing.pop();
  }
}

/** What a body threw, in a line: `TypeError: x is undefined`, `5n`. Never throws (toErrorInfo is total). */
function thrownText(error: unknown): string {
  const info = toErrorInfo(error);
  const text = info.name === 'Error' ? info.message : `${info.name}: ${info.message}`;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function trace<I extends InputShape>(options: WorkflowOptions<I>, body: (inputs: unknown) => unknown): Traced {
  const recorder = new WorkflowTrace(options.name);
  const inputs = Object.fromEntries(
    Object.keys(options.inputs).map((input) => [input, createReference({ kind: 'input', name: input }, `workflow input '${input}'`, { where: { workflow: options.name, field: input } })]),
  );
  const returned = withTrace(recorder, () => {
    try {
      return body(inputs);
    } catch (error) {
      // The user's code threw (a MemoflowError from a call in it passes through as it is).
      if (error instanceof MemoflowError) throw error;
      throw new MemoflowError('INVALID_SPEC', `the workflow body threw while it was traced: ${thrownText(error)}`, { workflow: options.name, field: 'body', cause: error });
    }
  });
  if (returned instanceof Promise) {
    throw new MemoflowError('INVALID_SPEC', 'a workflow body must be synchronous: it wires references, it does not await them (use a task for async work)', { workflow: options.name });
  }
  if (returned === null || typeof returned !== 'object' || Array.isArray(returned)) {
    throw new MemoflowError('INVALID_SPEC', 'a workflow body must return an object of outputs, e.g. ({ total: total({ rows }) })', { workflow: options.name });
  }
  const outputs: { [name: string]: Binding } = {};
  for (const [name, value] of Object.entries(returned)) {
    // `outputs[name] = ...` would set the prototype instead, and the output would vanish.
    if (name === '__proto__') throw new MemoflowError('INVALID_SPEC', "an output named '__proto__' cannot be kept (JavaScript reads it as the prototype); rename it", { workflow: options.name, field: 'outputs.__proto__' });
    assertStorableName(name, 'output', { workflow: options.name, field: 'outputs' });
    checkRawValue(value, { workflow: options.name, field: `outputs.${name}` }, '', (item) => referenceBinding(item) !== undefined);
    outputs[name] = recorder.bind(value, undefined, { workflow: options.name, field: `outputs.${name}` });
  }
  const spec: WorkflowSpec = {
    specVersion: WORKFLOW_SPEC_VERSION,
    name: options.name,
    inputs: Object.fromEntries(Object.entries(options.inputs).map(([input, schema]) => [input, toJsonSchema(schema)])),
    hashedInputs: Object.entries(options.inputs).filter(([, schema]) => hashFunctionOf(schema) !== undefined).map(([input]) => input),
    ...(optionalNames(options.inputs).length > 0 ? { optionalInputs: optionalNames(options.inputs) } : {}),
    nodes: recorder.nodes,
    outputs,
  };
  const validated = validateSpec(JSON.parse(JSON.stringify(spec)) as WorkflowSpec);
  const signature: TaskSignature = {
    inputs: validated.inputs,
    output: outputsSchema(validated),
    outputHashed: false,
    children: hashJson(validated as unknown as Json),
  };
  return { spec: validated, tasks: recorder.tasks, signature };
}

/** The schema of a workflow's outputs object, as far as the bindings tell (a literal or a composite is `{}`). */
function outputsSchema(spec: WorkflowSpec): JsonSchema {
  const properties: { [name: string]: Json } = {};
  for (const [name, binding] of Object.entries(spec.outputs)) properties[name] = (bindingSchema(spec, binding) ?? {});
  return { type: 'object', properties, required: Object.keys(properties) };
}

export function isWorkflowDefinition(value: unknown): value is AnyWorkflow {
  return typeof value === 'function' && (value as { kind?: unknown }).kind === 'workflow';
}
