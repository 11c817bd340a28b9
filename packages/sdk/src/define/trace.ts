import type { z } from 'zod';
import { MemoflowError, parseDuration, schemaAtPath, type Binding, type Json, type TaskNodeSpec } from '@memoflow/engine';
import { computeHash } from './hash-with.js';
import { toJsonValue } from './json-value.js';
import { createReference, referenceBinding } from './reference.js';
import { isTaskDefinition, resolveCache, resolveRetries, type AnyTask, type NodeOverrides } from './task.js';

/**
 * Records the nodes a workflow body creates. A workflow function runs once, synchronously, with
 * references for its inputs; each task call appends a node and returns a reference to its output.
 */
export class WorkflowTrace {
  readonly nodes: TaskNodeSpec[] = [];
  /** Tasks by name: what a worker must register to run this workflow. */
  readonly tasks = new Map<string, AnyTask>();
  private readonly nodeIds = new Set<string>();

  constructor(readonly workflow: string) {}

  addTaskCall(task: AnyTask, inputs: { readonly [name: string]: unknown }): unknown {
    const known = this.tasks.get(task.taskName);
    if (known !== undefined && known !== task) {
      throw new MemoflowError(
        'DUPLICATE_TASK_NAME',
        `two different tasks are named '${task.taskName}'; task names must be unique (they identify tasks to workers and in cache keys)`,
        { workflow: this.workflow, node: task.taskName, field: 'name' },
      );
    }
    this.tasks.set(task.taskName, task);
    const id = this.uniqueId(task.taskName);
    const where = { workflow: this.workflow, node: id };
    if (inputs === null || typeof inputs !== 'object') {
      throw new MemoflowError('UNBOUND_INPUT', `task '${task.taskName}' must be called with an object of inputs`, where);
    }
    const bindings: { [name: string]: Binding } = {};
    for (const name of Object.keys(inputs)) {
      if (!(name in task.inputs)) {
        throw new MemoflowError('UNKNOWN_INPUT', `task '${task.taskName}' has no input '${name}' (inputs: ${Object.keys(task.inputs).join(', ') || 'none'})`, { ...where, field: name });
      }
    }
    for (const [name, schema] of Object.entries(task.inputs)) {
      const value = inputs[name];
      if (value === undefined) {
        throw new MemoflowError('UNBOUND_INPUT', `input '${name}' of task '${task.taskName}' is not bound`, { ...where, field: name });
      }
      bindings[name] = this.bind(value, schema, { ...where, field: name });
    }
    const node: TaskNodeSpec = {
      kind: 'task',
      id,
      task: task.taskName,
      signature: task.signature,
      cache: task.defaults.cache,
      retries: task.defaults.retries,
      timeoutMs: task.defaults.timeoutMs,
      inputs: bindings,
    };
    this.nodes.push(node);
    const reference = createReference({ kind: 'output', node: id }, `the output of node '${id}'`, {
      methods: {
        withOverrides: (overrides: NodeOverrides) => {
          this.override(node, task, overrides);
          return reference;
        },
      },
    });
    return reference;
  }

  /** Turns what a body passed for an input into a binding, checking literals against the input's schema. */
  bind(value: unknown, schema: z.ZodType | undefined, where: { workflow: string; node?: string; field: string }): Binding {
    const binding = this.toBinding(value, where, where.field);
    if (binding.kind === 'literal' && schema !== undefined) {
      const parsed = schema.safeParse(binding.value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const at = issue?.path.length ? ` at '${issue.path.join('.')}'` : '';
        throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `literal value does not match the input's schema${at}: ${issue?.message ?? 'invalid'}`, where);
      }
      const hash = computeHash(schema, parsed.data, `input '${where.field}'`);
      if (hash !== undefined) return { ...binding, hash };
    }
    return binding;
  }

  private toBinding(value: unknown, where: { workflow: string; node?: string; field: string }, path: string): Binding {
    const reference = referenceBinding(value);
    if (reference !== undefined) {
      this.checkPath(reference, { ...where, field: path });
      return reference.path === undefined ? { ...reference } : { ...reference, path: [...reference.path] };
    }
    if (isTaskDefinition(value)) {
      throw new MemoflowError('TYPE_MISMATCH', `got the task '${value.taskName}' itself; call it to use its output (${value.taskName}({...}))`, { ...where, field: path });
    }
    if (Array.isArray(value)) {
      const items = value.map((item, i) => this.toBinding(item, where, `${path}[${i}]`));
      if (items.every(isPlainLiteral)) return { kind: 'literal', value: items.map((item) => item.value) };
      return { kind: 'array', items };
    }
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      const fields: { [name: string]: Binding } = {};
      for (const [name, item] of Object.entries(value)) {
        if (item !== undefined) fields[name] = this.toBinding(item, where, `${path}.${name}`);
      }
      const entries = Object.entries(fields);
      if (entries.every(([, field]) => isPlainLiteral(field))) {
        return { kind: 'literal', value: Object.fromEntries(entries.map(([name, field]) => [name, (field as PlainLiteral).value])) };
      }
      return { kind: 'object', fields };
    }
    return { kind: 'literal', value: toJsonValue(value, { ...where, field: path }) };
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

  private override(node: TaskNodeSpec, task: AnyTask, overrides: NodeOverrides): void {
    const where = { workflow: this.workflow, node: node.id };
    if (overrides.cache !== undefined) {
      node.cache = resolveCache(overrides.cache, node.cache, Object.keys(task.inputs), task.sourceVersion, where);
    }
    if (overrides.retries !== undefined) node.retries = resolveRetries(overrides.retries, where);
    if (overrides.timeout !== undefined) node.timeoutMs = parseDuration(overrides.timeout, { ...where, field: 'timeout' });
  }

  /** Node ids are the task name's last segment (`etl.clean` -> `clean`), numbered when repeated. */
  private uniqueId(taskName: string): string {
    const base = (taskName.split('.').pop() ?? taskName).replace(/[^A-Za-z0-9_.-]/g, '_') || 'node';
    let id = base;
    for (let n = 2; this.nodeIds.has(id); n++) id = `${base}-${n}`;
    this.nodeIds.add(id);
    return id;
  }
}

type PlainLiteral = { kind: 'literal'; value: Json };

/** A literal without a declared hash: arrays and objects of these collapse into one literal. */
function isPlainLiteral(binding: Binding): binding is PlainLiteral {
  return binding.kind === 'literal' && binding.hash === undefined;
}

let active: WorkflowTrace | null = null;

/** The trace a task call belongs to; calling a task outside a workflow body is an error. */
export function currentTrace(taskName: string): WorkflowTrace {
  if (active === null) {
    throw new MemoflowError(
      'INVALID_SPEC',
      `task '${taskName}' was called outside a workflow body; call tasks inside workflow(...) (to run a task's body directly in a unit test, use ${taskName.split('.').pop() ?? 'task'}.fn(inputs, context))`,
      { node: taskName },
    );
  }
  return active;
}

/** Runs a workflow body with `trace` active. Bodies are synchronous: references are not promises. */
export function withTrace<T>(trace: WorkflowTrace, body: () => T): T {
  const previous = active;
  active = trace;
  try {
    return body();
  } finally {
    active = previous;
  }
}
