import type { z } from 'zod';
import {
  MemoflowError,
  NonRetryableError,
  describeGiven,
  WORKFLOW_SPEC_VERSION,
  bindingSchema,
  hashJson,
  incompatibility,
  signatureDigest,
  validateSpec,
  type Json,
  type TaskContext,
  type TaskImplementation,
  type WorkflowSpec,
} from '@memoflow/engine';
import { checkRawValue } from './json-value.js';
import { referenceBinding, type Bindable } from './reference.js';
import { assertNodeName, assertOptionsObject, callable, defineNode, isTaskDefinition, type AnyTask, type Callable, type InputShape, type InputValues, type TaskDefinition, type TaskOptions } from './task.js';
import { hashFunctionOf } from './hash-with.js';
import { InputProvenance } from './input-provenance.js';
import { WorkflowTrace, withTrace } from './trace.js';

/** The output name the compiled sub-workflow binds the dynamic's result to (the engine's DYNAMIC_RESULT). */
const RESULT = 'result';

export interface DynamicOptions<I extends InputShape, O extends z.ZodType> extends TaskOptions<I, O> {
  output: O;
  /**
   * Every task, dynamic or workflow the body may call. Their definitions are part of this node's
   * cache key, so a changed child never replays a stale compiled sub-workflow; workers running this
   * dynamic register them too. Calling anything else in the body is an error.
   */
  tasks: readonly Callable[];
}

export type DynamicBody<I extends InputShape, O extends z.ZodType> = (
  inputs: InputValues<I>,
  context: TaskContext,
) => Bindable<z.input<O>> | Promise<Bindable<z.input<O>>>;

/**
 * Defines a dynamic node: its body runs on a worker with the node's actual input values, calls
 * tasks, and returns references (or arrays and objects of them) matching `output`. The controller
 * runs the sub-workflow the body built, with the usual cache rules, and stores it in the catalog as
 * the node's "future": a retry with the same key (after a failed child, say) reads it back
 * (`FUTURE_HIT`) instead of running the body again. Objects and arrays the body passes on from its
 * inputs are bound to them by reference (see InputProvenance), so a replay feeds children the
 * replaying run's values and a future stays O(children) in size.
 */
export function dynamic<I extends InputShape, O extends z.ZodType>(options: DynamicOptions<I, O>, body: DynamicBody<I, O>): TaskDefinition<I, O> {
  assertOptionsObject('dynamic', options);
  assertNodeName('dynamic', options.name);
  const declared = new Map<string, Callable>();
  for (const child of declaredCallables(options.name, options.tasks)) {
    const name = child.kind === 'workflow' ? child.workflowName : child.taskName;
    if (declared.has(name) && declared.get(name) !== child) {
      throw new MemoflowError('DUPLICATE_TASK_NAME', `two different tasks named '${name}' are declared`, { node: options.name, field: 'tasks' });
    }
    declared.set(name, child);
  }
  const base = defineNode('dynamic', options, body, childrenDigest(declared));
  const name = options.name;
  const hashedInputs = new Set(Object.entries(options.inputs).filter(([, schema]) => hashFunctionOf(schema) !== undefined).map(([input]) => input));
  const implementation: TaskImplementation = {
    name,
    version: base.definitionVersion,
    signature: signatureDigest(base.signature),
    async execute(inputs, context) {
      const values = base.parseInputs(inputs, context);
      // Values the body passes on from its inputs are bound to them by reference, so the future
      // declares the dynamic's inputs and a replay resolves them to that run's values.
      const provenance = new InputProvenance(values, inputs, base.signature.inputs, hashedInputs);
      const trace = new WorkflowTrace(name, declared, provenance);
      const returned: unknown = await withTrace(trace, () => body(values, context));
      const where = { workflow: name, node: context.nodeId, field: 'output' };
      // A cycle or excess depth in what the body returned: a clear error, not a stack overflow in bind.
      checkRawValue(returned, where, '', (value) => referenceBinding(value) !== undefined);
      const result = trace.bind(returned, options.output, where);
      const pinnedInputs = provenance.pins(trace.nodes, [result]);
      const sub: WorkflowSpec = {
        specVersion: WORKFLOW_SPEC_VERSION,
        name,
        inputs: base.signature.inputs,
        hashedInputs: [],
        ...(base.signature.optionalInputs === undefined ? {} : { optionalInputs: base.signature.optionalInputs }),
        ...(Object.keys(pinnedInputs).length === 0 ? {} : { pinnedInputs }),
        nodes: trace.nodes,
        outputs: { [RESULT]: result },
      };
      try {
        checkResultType(sub, result, options.output === undefined ? undefined : base.signature.output, where);
        return { output: JSON.parse(JSON.stringify(validateSpec(sub))) as Json, outputHash: null };
      } catch (error) {
        // A body that builds a bad graph builds it again on retry: fail at once, saying why.
        if (error instanceof MemoflowError) throw new NonRetryableError(error.message, { cause: error });
        throw error;
      }
    },
  };
  return callable(base, implementation, [...declared.values()]) as TaskDefinition<I, O>;
}

/** `tasks` as declared: an array of tasks, dynamics and workflows (left out, none). */
function declaredCallables(name: string, tasks: unknown): readonly Callable[] {
  if (tasks === undefined) return [];
  const where = { node: name, field: 'tasks' };
  if (!Array.isArray(tasks)) {
    throw new MemoflowError('INVALID_SPEC', `tasks must be an array of the tasks, dynamics and workflows the body may call, got ${describeGiven(tasks)}`, where);
  }
  tasks.forEach((child: unknown, i) => {
    const isWorkflow = typeof child === 'function' && (child as { kind?: unknown }).kind === 'workflow' && typeof (child as { workflowName?: unknown }).workflowName === 'string';
    if (!isTaskDefinition(child) && !isWorkflow) {
      throw new MemoflowError('INVALID_SPEC', `tasks[${i}] must be a task, dynamic or workflow definition, got ${describeGiven(child)}`, where);
    }
  });
  return tasks as Callable[];
}

/** What the body returned, if its type can be known (references), must fit the dynamic's declared output. */
function checkResultType(sub: WorkflowSpec, result: WorkflowSpec['outputs'][string], output: WorkflowSpec['inputs'][string] | undefined, where: { workflow: string; node: string; field: string }): void {
  const given = output === undefined ? undefined : bindingSchema(sub, result);
  const reason = given === undefined || output === undefined ? null : incompatibility(output, given);
  if (reason !== null) {
    const what = result.kind === 'output' ? `the output of node '${result.node}'` : 'a value';
    throw new MemoflowError('TYPE_MISMATCH', `the body returned ${what}, which does not fit the dynamic's output: ${reason}`, where);
  }
}

/** A digest of the declared children's definitions: what a changed child must change. */
export function childrenDigest(children: ReadonlyMap<string, Callable>): string {
  const fingerprints = [...children.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, child]) => (child.kind === 'workflow' ? { name, workflow: workflowDigest(child) } : taskFingerprint(child)));
  return hashJson(fingerprints);
}

function taskFingerprint(task: AnyTask): Json {
  const { cache, retries, timeoutMs } = task.defaults;
  // `version`: a stored future's nodes carry their task's definition version; a changed child must
  // change this key, or a replay would send attempts every current worker refuses.
  return { name: task.taskName, kind: task.kind, signature: signatureDigest(task.signature), version: task.definitionVersion, cache: cache as unknown as Json, retries, timeoutMs };
}

function workflowDigest(workflow: Extract<Callable, { kind: 'workflow' }>): string {
  return hashJson((workflow as unknown as { spec: Json }).spec);
}
