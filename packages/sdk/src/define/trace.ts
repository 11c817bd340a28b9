import { AsyncLocalStorage } from 'node:async_hooks';
import type { z } from 'zod';
import { MemoflowError, describeGiven, incompatibility, parseDuration, schemaAtPath, storageProblem, stringProblem, type Binding, type Json, type JsonSchema, type NodeSpec, type WorkflowSpec } from '@memoflow/engine';
import { computeHash, hashFunctionOf } from './hash-with.js';
import type { InputProvenance, InputReference } from './input-provenance.js';
import { toJsonSchema } from './json-schema.js';
import { checkRawValue, toJsonValue } from './json-value.js';
import { createReference, referenceBinding } from './reference.js';
import { isPlainObject, isTaskDefinition, resolveCache, resolveRetries, type AnyTask, type Callable, type DerivedVersion, type NodeOverrides } from './task.js';

/**
 * Records the nodes a workflow body creates. A workflow function runs once, synchronously, with
 * references for its inputs; each task call appends a node and returns a reference to its output.
 */
export class WorkflowTrace {
  readonly nodes: NodeSpec[] = [];
  /** Tasks by name, transitively (a dynamic's declared tasks, a sub-workflow's): what a worker must register. */
  readonly tasks = new Map<string, AnyTask>();
  private readonly nodeIds = new Set<string>();
  private readonly nextNumber = new Map<string, number>();

  /**
   * @param workflow the workflow (or dynamic) being traced, for error messages
   * @param allowed a dynamic body may call only what its definition declares
   * @param inputs a dynamic body's inputs: values passed on from them are bound by reference
   */
  constructor(
    readonly workflow: string,
    private readonly allowed?: ReadonlyMap<string, Callable>,
    private readonly inputs?: InputProvenance,
  ) {}

  addTaskCall(task: AnyTask, inputs: { readonly [name: string]: unknown }): unknown {
    this.checkAllowed(task.taskName, task);
    this.register(task);
    const id = this.uniqueId(task.taskName);
    // Literals as handed over: a cycle, excess depth or a `__proto__` key is refused here, naming the field.
    if (inputs !== null && typeof inputs === 'object') {
      for (const [name, value] of Object.entries(inputs)) checkRawValue(value, { workflow: this.workflow, node: id, field: name }, '', isReference);
    }
    const bindings = this.bindInputs(task.taskName, task.inputs, inputs, id);
    const node: NodeSpec = {
      kind: task.kind,
      id,
      task: task.taskName,
      signature: task.signature,
      outputSchema: task.outputSchema,
      cache: task.defaults.cache,
      retries: task.defaults.retries,
      timeoutMs: task.defaults.timeoutMs,
      inputs: bindings,
      // The definition's version, not this node's (an override may pin another): what attempts carry.
      taskVersion: task.definitionVersion,
    };
    const derived = { version: task.sourceVersion, problem: task.sourceVersionProblem };
    return this.addNode(node, (overrides) => this.override(node, Object.keys(task.inputs), derived, overrides));
  }

  /**
   * A call of another workflow: a sub-workflow node. Its nodes run and are cached individually;
   * `.withOverrides({ cache })` also caches the call as a whole, keyed like a task whose signature
   * covers the called workflow's whole spec.
   */
  addWorkflowCall(workflow: SubworkflowSource, inputs: { readonly [name: string]: unknown }): unknown {
    this.checkAllowed(workflow.workflowName, workflow);
    for (const task of workflow.tasks.values()) this.register(task);
    const id = this.uniqueId(workflow.workflowName);
    const bindings = this.bindInputs(workflow.workflowName, workflow.inputs, inputs, id);
    const spec = workflow.spec;
    const node: NodeSpec = {
      kind: 'subworkflow',
      id,
      task: workflow.workflowName,
      signature: { ...workflow.signature },
      cache: null,
      retries: 0,
      timeoutMs: null,
      inputs: bindings,
      workflow: spec,
    };
    return this.addNode(node, (overrides) => {
      if (overrides.retries !== undefined || overrides.timeout !== undefined) {
        throw new MemoflowError('INVALID_SPEC', 'retries and timeout apply to tasks; a sub-workflow call takes only `cache`', { workflow: this.workflow, node: id, field: overrides.retries !== undefined ? 'retries' : 'timeout' });
      }
      this.override(node, Object.keys(workflow.inputs), { version: workflow.sourceVersion, problem: subworkflowVersionProblem(workflow) }, overrides);
    });
  }

  private addNode(node: NodeSpec, applyOverrides: (overrides: NodeOverrides) => void): unknown {
    this.nodes.push(node);
    const where = { workflow: this.workflow, node: node.id };
    const reference = createReference({ kind: 'output', node: node.id }, `the output of node '${node.id}'`, {
      methods: {
        withOverrides: (overrides: NodeOverrides) => {
          if (!isPlainObject(overrides)) {
            throw new MemoflowError('INVALID_SPEC', `withOverrides takes an object of overrides ({ cache, retries, timeout }), got ${describeGiven(overrides)}`, { ...where, field: 'overrides' });
          }
          applyOverrides(overrides);
          return reference;
        },
      },
      where,
    });
    return reference;
  }

  private checkAllowed(name: string, callee: Callable): void {
    if (this.allowed === undefined || this.allowed.get(name) === callee) return;
    throw new MemoflowError(
      'UNKNOWN_TASK',
      `the dynamic body called '${name}', which its definition does not declare; add it to \`tasks\` (declared: ${[...this.allowed.keys()].join(', ') || 'none'}) so its definition is part of the cache key and workers register it`,
      { workflow: this.workflow, node: name, field: 'tasks' },
    );
  }

  /** Records a task (and, for a dynamic, what it declares) under its name; one name, one definition. */
  private register(task: AnyTask): void {
    const known = this.tasks.get(task.taskName);
    if (known === task) return;
    if (known !== undefined) {
      throw new MemoflowError(
        'DUPLICATE_TASK_NAME',
        `two different tasks are named '${task.taskName}'; task names must be unique (they identify tasks to workers and in cache keys)`,
        { workflow: this.workflow, node: task.taskName, field: 'name' },
      );
    }
    this.tasks.set(task.taskName, task);
    for (const child of task.children) {
      if (child.kind === 'workflow') for (const inner of child.tasks.values()) this.register(inner);
      else this.register(child);
    }
  }

  private bindInputs(callee: string, schemas: { readonly [name: string]: z.ZodType }, inputs: { readonly [name: string]: unknown }, id: string): { [name: string]: Binding } {
    const where = { workflow: this.workflow, node: id };
    if (inputs === null || typeof inputs !== 'object') {
      throw new MemoflowError('UNBOUND_INPUT', `'${callee}' must be called with an object of inputs`, where);
    }
    for (const name of Object.keys(inputs)) {
      // Own names only: `toString` or `constructor` is in every object, and is no input.
      if (!Object.hasOwn(schemas, name)) {
        throw new MemoflowError('UNKNOWN_INPUT', `'${callee}' has no input '${name}' (inputs: ${Object.keys(schemas).join(', ') || 'none'})`, { ...where, field: name });
      }
    }
    const bindings: { [name: string]: Binding } = {};
    for (const [name, schema] of Object.entries(schemas)) {
      const value = inputs[name];
      if (value === undefined) {
        if (schema.safeParse(undefined).success) continue; // optional: left out, as in a plain call
        throw new MemoflowError('UNBOUND_INPUT', `input '${name}' of '${callee}' is not bound`, { ...where, field: name });
      }
      bindings[name] = this.bind(value, schema, { ...where, field: name });
    }
    return bindings;
  }

  /** Turns what a body passed for an input into a binding, checking literals against the input's schema. */
  bind(value: unknown, schema: z.ZodType | undefined, where: { workflow: string; node?: string; field: string }): Binding {
    let binding = this.toBinding(value, where, where.field);
    if (binding.kind === 'input' && schema !== undefined && this.inputs !== undefined && (this.staticMismatch(binding, schema) || this.losesHash(binding, schema))) {
      // The engine checks a whole reference's declared type against the input's; where they do
      // not fit statically (a union input whose value fits), pass the value on as before. Likewise
      // where the receiving schema declares hashWith and the dynamic's input does not: a literal
      // keeps the receiver's hash in the child's key (a reference would be keyed by raw value).
      binding = this.toBinding(value, where, where.field, false);
    }
    if (binding.kind === 'literal' && schema !== undefined) {
      const parsed = schema.safeParse(binding.value);
      if (!parsed.success) throw literalMismatch(parsed.error, where);
      const hash = computeHash(schema, parsed.data, `input '${where.field}'`, where);
      if (hash !== undefined) return { ...binding, hash };
    } else if (schema !== undefined && this.inputs !== undefined && isConcrete(binding)) {
      // Bound (partly) to a dynamic's inputs by reference: the value is known now, so it is checked
      // now, as a literal would be. (It is keyed as the input is: by its hash if it has one.)
      const parsed = schema.safeParse(value);
      if (!parsed.success) throw literalMismatch(parsed.error, where);
    }
    return binding;
  }

  private losesHash(binding: InputReference, schema: z.ZodType): boolean {
    const whole = binding.path === undefined || binding.path.length === 0;
    return hashFunctionOf(schema) !== undefined && !(whole && this.inputs?.declaresHash(binding.name) === true);
  }

  private staticMismatch(binding: InputReference, schema: z.ZodType): boolean {
    const given = this.inputs?.schemaOf(binding);
    return given !== undefined && incompatibility(jsonSchemaOf(schema), given) !== null;
  }

  private toBinding(value: unknown, where: { workflow: string; node?: string; field: string }, path: string, track = true): Binding {
    const reference = referenceBinding(value);
    if (reference !== undefined) {
      this.checkPath(reference, { ...where, field: path });
      return reference.path === undefined ? { ...reference } : { ...reference, path: [...reference.path] };
    }
    const fromInput = track ? this.inputs?.reference(value) : undefined;
    if (fromInput !== undefined) return fromInput;
    if (isTaskDefinition(value) || (typeof value === 'function' && (value as { kind?: unknown }).kind === 'workflow')) {
      const name = (value as { taskName?: string; workflowName?: string }).taskName ?? (value as { workflowName?: string }).workflowName ?? '?';
      throw new MemoflowError('TYPE_MISMATCH', `got '${name}' itself; call it to use its output (${name}({...}))`, { ...where, field: path });
    }
    if (Array.isArray(value)) {
      const items = value.map((item, i) => this.toBinding(item, where, `${path}[${i}]`));
      if (items.every(isPlainLiteral)) return { kind: 'literal', value: items.map((item) => item.value) };
      return { kind: 'array', items };
    }
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      const fields: { [name: string]: Binding } = {};
      for (const [name, item] of Object.entries(value)) {
        const keyProblem = stringProblem(name);
        if (keyProblem !== null) throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `cannot be stored: the key ${JSON.stringify(name).slice(0, 40)} ${keyProblem}`, { ...where, field: path });
        if (item !== undefined) fields[name] = this.toBinding(item, where, `${path}.${name}`);
      }
      const entries = Object.entries(fields);
      if (entries.every(([, field]) => isPlainLiteral(field))) {
        return { kind: 'literal', value: Object.fromEntries(entries.map(([name, field]) => [name, (field as PlainLiteral).value])) };
      }
      return { kind: 'object', fields };
    }
    const literal = toJsonValue(value, { ...where, field: path });
    // JSON, but no store keeps it (U+0000, a lone surrogate): refused here, naming the node and
    // field, rather than when the run is saved, naming only a path inside the spec.
    const problem = storageProblem(literal, 'the value');
    if (problem !== null) throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `cannot be stored: ${problem}`, { ...where, field: path });
    return { kind: 'literal', value: literal };
  }

  /** A field read on a reference (`split(...).train`) must exist in the producer's output schema. */
  private checkPath(reference: Extract<Binding, { kind: 'output' | 'input' }>, where: { workflow: string; field: string }): void {
    if (reference.kind !== 'output' || reference.path === undefined || reference.path.length === 0) return;
    const producer = this.nodes.find((node) => node.id === reference.node);
    if (producer === undefined) return;
    if (schemaAtPath(producer.signature.output, reference.path) === undefined) {
      throw new MemoflowError('TYPE_MISMATCH', `the output of node '${producer.id}' has no field '${reference.path.join('.')}'`, where);
    }
  }

  private override(node: NodeSpec, inputNames: string[], sourceVersion: DerivedVersion, overrides: NodeOverrides): void {
    const where = { workflow: this.workflow, node: node.id };
    if (overrides.cache !== undefined) node.cache = resolveCache(overrides.cache, node.cache, inputNames, sourceVersion, where);
    if (overrides.retries !== undefined) node.retries = resolveRetries(overrides.retries, where);
    if (overrides.timeout !== undefined) node.timeoutMs = parseDuration(overrides.timeout, { ...where, field: 'timeout' });
  }

  /**
   * Node ids are the task name's last segment (`etl.clean` -> `clean`), numbered when repeated
   * (`clean-2`). The next number per base is remembered: a fan-out of n calls costs O(n), not O(n²).
   */
  private uniqueId(taskName: string): string {
    const base = (taskName.split('.').pop() ?? taskName).replace(/[^A-Za-z0-9_.-]/g, '_') || 'node';
    let n = this.nextNumber.get(base) ?? 1;
    let id = n === 1 ? base : `${base}-${n}`;
    while (this.nodeIds.has(id)) id = `${base}-${++n}`;
    this.nextNumber.set(base, n + 1);
    this.nodeIds.add(id);
    return id;
  }
}

type PlainLiteral = { kind: 'literal'; value: Json };

function literalMismatch(error: z.ZodError, where: { workflow: string; node?: string; field: string }): MemoflowError {
  const issue = error.issues[0];
  const at = issue?.path.length ? ` at '${issue.path.join('.')}'` : '';
  return new MemoflowError('INPUT_SCHEMA_MISMATCH', `literal value does not match the input's schema${at}: ${issue?.message ?? 'invalid'}`, where);
}

/** Literals and references to a dynamic's inputs only: a value the body holds in full. */
function isConcrete(binding: Binding): boolean {
  switch (binding.kind) {
    case 'literal':
    case 'input':
      return true;
    case 'output':
      return false;
    case 'array':
      return binding.items.every(isConcrete);
    case 'object':
      return Object.values(binding.fields).every(isConcrete);
  }
}

const jsonSchemas = new WeakMap<z.ZodType, JsonSchema>();
function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  let json = jsonSchemas.get(schema);
  if (json === undefined) {
    json = toJsonSchema(schema);
    jsonSchemas.set(schema, json);
  }
  return json;
}
const isReference = (value: unknown): boolean => referenceBinding(value) !== undefined;

/** A literal without a declared hash: arrays and objects of these collapse into one literal. */
function isPlainLiteral(binding: Binding): binding is PlainLiteral {
  return binding.kind === 'literal' && binding.hash === undefined;
}

/** What the trace needs of a workflow called as a sub-workflow (see workflow.ts). */
export interface SubworkflowSource {
  readonly kind: 'workflow';
  readonly workflowName: string;
  readonly inputs: { readonly [name: string]: z.ZodType };
  readonly spec: WorkflowSpec;
  readonly tasks: ReadonlyMap<string, AnyTask>;
  readonly signature: NodeSpec['signature'];
  readonly sourceVersion: string;
}

/**
 * A sub-workflow's derived version digests its spec, which holds each inner task's version; a
 * task whose version is derived from a body that closes over outside values changes nothing in the
 * spec when those values do, so caching the call as a whole without a pinned version is refused.
 */
function subworkflowVersionProblem(workflow: SubworkflowSource): string | null {
  const unsound = [...workflow.tasks.values()].filter((task) => task.sourceVersionProblem !== null && task.defaults.cache === null).map((task) => `'${task.taskName}'`);
  if (unsound.length === 0) return null;
  return `the sub-workflow '${workflow.workflowName}' runs ${unsound.sort().join(', ')}, whose version is derived from a body that uses values from outside itself, so the spec it is keyed by cannot see them`;
}

const active = new AsyncLocalStorage<WorkflowTrace>();

/** The trace a task call belongs to; calling a task outside a workflow or dynamic body is an error. */
export function currentTrace(taskName: string): WorkflowTrace {
  const trace = active.getStore();
  if (trace === undefined) {
    throw new MemoflowError(
      'INVALID_SPEC',
      `task '${taskName}' was called outside a workflow body; call tasks inside workflow(...) (to run a task's body directly in a unit test, use ${taskName.split('.').pop() ?? 'task'}.fn(inputs, context))`,
      { node: taskName },
    );
  }
  return trace;
}

/**
 * Runs a body with `trace` active. AsyncLocalStorage rather than a global: a dynamic body may be
 * async, and several may run at once in one process (the in-process dispatcher), each with its own
 * trace. Workflow bodies are synchronous and get their result back synchronously.
 */
export function withTrace<T>(trace: WorkflowTrace, body: () => T): T {
  return active.run(trace, body);
}
