import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  DEFAULT_CACHE_TTL_MS,
  MemoflowError,
  NonRetryableError,
  assertIgnoredInputsExist,
  assertValidCacheVersion,
  parseDuration,
  type CacheSettings,
  type Json,
  type TaskContext,
  type TaskImplementation,
  type TaskOutcome,
  type TaskSignature,
} from '@memoflow/engine';
import { assertSchemas } from './check-schemas.js';
import { computeHash, hashFunctionOf } from './hash-with.js';
import { NO_OUTPUT_SCHEMA, toJsonSchema } from './json-schema.js';
import { toJsonValue } from './json-value.js';
import type { Bindable, Ref } from './reference.js';
import { currentTrace } from './trace.js';

export type InputShape = { readonly [name: string]: z.ZodType };
export type InputValues<I extends InputShape> = { [K in keyof I]: z.output<I[K]> };
/** What a call binds: an input whose schema accepts `undefined` (`.optional()`, `.default(...)`) may be left out. */
export type InputBindings<I extends InputShape> = OptionalWhenUndefined<{ [K in keyof I]: Bindable<z.input<I[K]>> }, { [K in keyof I]: z.input<I[K]> }>;

/** `T` with the keys whose value type in `By` admits `undefined` made optional. */
export type OptionalWhenUndefined<T, By = T> = { [K in keyof T as K extends keyof By ? (undefined extends By[K] ? never : K) : K]: T[K] } & {
  [K in keyof T as K extends keyof By ? (undefined extends By[K] ? K : never) : never]?: T[K];
};
export type OutputOf<O extends z.ZodType | undefined> = O extends z.ZodType ? z.output<O> : null;

/** `cache` on a task: caching is on when it is given (`true` or an object) unless `enabled: false`. */
export interface CacheOptions<Name extends string = string> {
  enabled?: boolean;
  /**
   * Bump to invalidate every entry of the task. Letters, digits, `-`, `_`, `.`. When omitted, the
   * version is derived from the task body's source, so editing the code invalidates its entries.
   */
  version?: string;
  /**
   * Concurrent runs with the same key execute the body once; the others wait and reuse the result.
   * Not implemented yet: `true` is refused at definition time rather than silently ignored.
   */
  serialize?: boolean;
  /** Inputs left out of the key (e.g. a log level, a batch size that does not change the result). */
  ignoreInputs?: readonly Name[];
  /** How long an entry stays valid: `'90s'`, `'12h'`, `'28d'` (default) or milliseconds. */
  ttl?: string | number;
}

export interface TaskOptions<I extends InputShape, O extends z.ZodType | undefined> {
  /** Stable, user-visible name (`etl.clean`): workers find the task by it and it is part of cache keys. */
  name: string;
  description?: string;
  inputs: I;
  /** The output's schema; a task without one returns nothing (its completion is the result). */
  output?: O;
  cache?: boolean | CacheOptions<Extract<keyof I, string>>;
  /** Extra attempts after a failed one (default 0). Throw `NonRetryableError` to stop retrying. */
  retries?: number;
  /** Per-attempt time limit: `'30s'`, `'5m'` or milliseconds. */
  timeout?: string | number;
}

export type TaskBody<I extends InputShape, O extends z.ZodType | undefined> = (
  inputs: InputValues<I>,
  context: TaskContext,
) => Promise<O extends z.ZodType ? z.input<O> : void> | (O extends z.ZodType ? z.input<O> : void);

/** Node-level settings that `.withOverrides()` can change on one call. */
export interface NodeSettings {
  cache: CacheSettings | null;
  retries: number;
  timeoutMs: number | null;
}

/** A call of a task inside a workflow: a reference to its output, with per-node overrides. */
export type TaskCall<O> = Ref<O> & {
  /** Overrides this node's cache, retries or timeout (Flyte's `with_overrides`). Returns the same call. */
  withOverrides(overrides: NodeOverrides): TaskCall<O>;
};

export interface NodeOverrides {
  cache?: boolean | CacheOptions;
  retries?: number;
  timeout?: string | number;
}

export interface TaskDefinition<I extends InputShape, O extends z.ZodType | undefined> {
  (inputs: InputBindings<I>): TaskCall<OutputOf<O>>;
  /** A task runs its body; a dynamic's body returns the sub-workflow to run. */
  readonly kind: 'task' | 'dynamic';
  readonly taskName: string;
  readonly description: string | undefined;
  readonly inputs: I;
  readonly output: O;
  readonly signature: TaskSignature;
  readonly defaults: NodeSettings;
  /** The cache version used when none is given: derived from the body's source. */
  readonly sourceVersion: string;
  /** The body itself, for unit tests: runs it directly, without validation or caching. */
  readonly fn: TaskBody<I, O>;
  /** What a worker registers: validates inputs, runs the body, validates and hashes the output. */
  readonly implementation: TaskImplementation;
  /** A dynamic's declared tasks (what its body may call); empty for a task. */
  readonly children: readonly Callable[];
}

/**
 * Any task or dynamic, as a value to register or inspect. Without the call signature and with `fn`
 * loosened: their parameters would make a specific task unassignable to one over the general
 * InputShape (parameters are contravariant). Nothing is called through it.
 */
export type AnyTask = Omit<TaskDefinition<InputShape, z.ZodType | undefined>, 'fn'> & { readonly fn: (...args: never[]) => unknown };

/** Defines a typed task. Calling it inside a workflow body adds a node and returns a reference. */
export function task<I extends InputShape, O extends z.ZodType | undefined = undefined>(
  options: TaskOptions<I, O>,
  body: TaskBody<I, O>,
): TaskDefinition<I, O> {
  const base = defineNode('task', options, body);
  const name = options.name;
  const implementation: TaskImplementation = {
    name,
    async execute(inputs, context): Promise<TaskOutcome> {
      const result: unknown = await body(base.parseInputs(inputs, context), context);
      if (options.output === undefined) return { output: null, outputHash: null };
      const checked = options.output.safeParse(result);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        const path = issue?.path.length ? ` at '${issue.path.join('.')}'` : '';
        throw new NonRetryableError(`task '${name}' (node '${context.nodeId}') returned a value that does not match its output schema${path}: ${issue?.message ?? checked.error.message}`);
      }
      const output: Json = toJsonValue(checked.data, { node: context.nodeId, field: 'output' });
      return { output, outputHash: computeHash(options.output, checked.data, `task '${name}' output`) ?? null };
    },
  };
  return callable(base, implementation, []) as TaskDefinition<I, O>;
}

/** What a task and a dynamic share once defined: name, signature, defaults, input validation. */
export interface NodeDefinitionBase<I extends InputShape> {
  kind: 'task' | 'dynamic';
  options: TaskOptions<I, z.ZodType | undefined>;
  signature: TaskSignature;
  sourceVersion: string;
  defaults: NodeSettings;
  body: (...args: never[]) => unknown;
  parseInputs(inputs: { [name: string]: Json }, context: TaskContext): InputValues<I>;
}

/** Validates a task-like definition and resolves its settings; definition-time errors name the task and field. */
export function defineNode<I extends InputShape>(
  kind: 'task' | 'dynamic',
  options: TaskOptions<I, z.ZodType | undefined>,
  body: (...args: never[]) => unknown,
  children?: string,
): NodeDefinitionBase<I> {
  const name = options.name;
  const where = { node: name };
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new MemoflowError('INVALID_SPEC', `${kind} name ${JSON.stringify(name)} may only contain letters, digits, '_', '-' and '.'`, { field: 'name' });
  }
  assertSchemas(options, where, `${kind} '${name}'`);
  const inputNames = Object.keys(options.inputs);
  const signature: TaskSignature = {
    inputs: Object.fromEntries(inputNames.map((input) => [input, toJsonSchema(options.inputs[input] as z.ZodType)])),
    output: options.output === undefined ? NO_OUTPUT_SCHEMA : toJsonSchema(options.output),
    outputHashed: hashFunctionOf(options.output) !== undefined,
    ...(children === undefined ? {} : { children }),
  };
  const optionalInputs = optionalNames(options.inputs);
  if (optionalInputs.length > 0) signature.optionalInputs = optionalInputs;
  const sourceVersion = `src-${createHash('sha256').update(body.toString()).digest('hex').slice(0, 12)}`;
  const defaults: NodeSettings = {
    cache: resolveCache(options.cache, null, inputNames, sourceVersion, { node: name }),
    retries: resolveRetries(options.retries, where),
    timeoutMs: options.timeout === undefined ? null : parseDuration(options.timeout, { ...where, field: 'timeout' }),
  };
  const inputSchema = z.object(options.inputs as { [name: string]: z.ZodType });
  return {
    kind,
    options,
    signature,
    sourceVersion,
    defaults,
    body,
    parseInputs(inputs, context) {
      const parsed = inputSchema.safeParse(inputs);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new NonRetryableError(
          `${kind} '${name}' (node '${context.nodeId}'): input '${issue?.path.join('.') ?? '?'}' does not match its schema: ${issue?.message ?? parsed.error.message}`,
        );
      }
      return parsed.data as InputValues<I>;
    },
  };
}

/** The callable a workflow body uses: adds a node to the active trace and returns a reference. */
export function callable<I extends InputShape>(base: NodeDefinitionBase<I>, implementation: TaskImplementation, children: readonly Callable[]): AnyTask {
  const name = base.options.name;
  const call = (inputs: InputBindings<I>) => currentTrace(name).addTaskCall(definition, inputs as { [name: string]: unknown });
  const definition = Object.assign(call, {
    kind: base.kind,
    taskName: name,
    description: base.options.description,
    inputs: base.options.inputs,
    output: base.options.output,
    signature: base.signature,
    defaults: base.defaults,
    sourceVersion: base.sourceVersion,
    fn: base.body,
    implementation,
    children,
  }) as unknown as AnyTask;
  return definition;
}

/** Anything a workflow or dynamic body can call: a task, a dynamic, or a workflow (as a sub-workflow). */
export type Callable = AnyTask | { readonly kind: 'workflow'; readonly workflowName: string; readonly tasks: ReadonlyMap<string, AnyTask> };

/** Resolves `cache` options (task-level, or an override on top of the task's settings) to CacheSettings. */
export function resolveCache(
  option: boolean | CacheOptions | undefined,
  base: CacheSettings | null,
  inputNames: readonly string[],
  sourceVersion: string,
  where: { workflow?: string; node: string },
): CacheSettings | null {
  if (option === undefined) return base;
  if (option === false) return null;
  const given: CacheOptions = option === true ? {} : option;
  if (given.enabled === false) return null;
  if (given.serialize === true) {
    // Accepting it and running concurrent duplicates anyway would be a silent lie about what runs.
    throw new MemoflowError('NOT_SUPPORTED', 'cache.serialize (reservations, so concurrent runs with one key execute once) is not implemented yet; remove it', { ...where, field: 'cache.serialize' });
  }
  const version = given.version ?? base?.version ?? sourceVersion;
  assertValidCacheVersion(version, where);
  const ignoreInputs = [...(given.ignoreInputs ?? base?.ignoreInputs ?? [])];
  assertIgnoredInputsExist(ignoreInputs, inputNames, where);
  return {
    enabled: true,
    version,
    serialize: given.serialize ?? base?.serialize ?? false,
    ignoreInputs,
    ttlMs: given.ttl === undefined ? (base?.ttlMs ?? DEFAULT_CACHE_TTL_MS) : parseDuration(given.ttl, { ...where, field: 'cache.ttl' }),
  };
}

export function resolveRetries(retries: number | undefined, where: { workflow?: string; node: string }): number {
  if (retries === undefined) return 0;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new MemoflowError('INVALID_SPEC', `retries must be a whole number >= 0, got ${String(retries)}`, { ...where, field: 'retries' });
  }
  return retries;
}

/** Inputs whose schema accepts `undefined` (`.optional()`, `.default(...)`): they may be left unbound. */
export function optionalNames(inputs: InputShape): string[] {
  return Object.entries(inputs)
    .filter(([, schema]) => schema.safeParse(undefined).success)
    .map(([name]) => name);
}

export function isTaskDefinition(value: unknown): value is AnyTask {
  const kind = (value as { kind?: unknown } | null)?.kind;
  return typeof value === 'function' && (kind === 'task' || kind === 'dynamic') && typeof (value as { taskName?: unknown }).taskName === 'string';
}
