import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  DEFAULT_CACHE_TTL_MS,
  MemoflowError,
  NonRetryableError,
  assertIgnoredInputsExist,
  assertValidCacheVersion,
  describeGiven,
  parseDuration,
  stringProblem,
  signatureDigest,
  type CacheSettings,
  type ErrorLocation,
  type Json,
  type JsonSchema,
  type TaskContext,
  type TaskImplementation,
  type TaskOutcome,
  type TaskSignature,
} from '@memoflow/engine';
import { freeVariables } from './free-variables.js';
import { computeHash, hashFunctionOf } from './hash-with.js';
import { assertJsonCompatible, isZodSchema } from './json-compatible.js';
import { NO_OUTPUT_SCHEMA, toJsonSchema, toOutputJsonSchema } from './json-schema.js';
import { checkRawValue, toJsonValue } from './json-value.js';
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
  /** The output's JSON Schema as the body returns it (zod `io: 'output'`); cache hits are checked against it. */
  readonly outputSchema: JsonSchema;
  readonly defaults: NodeSettings;
  /** The cache version used when none is given: derived from the body's source. */
  readonly sourceVersion: string;
  /**
   * Why `sourceVersion` cannot stand for the code (the body refers to variables outside itself, or
   * its source cannot be read), or null. `cache: true` without `cache.version` is refused then.
   */
  readonly sourceVersionProblem: string | null;
  /**
   * The definition's version as attempts carry it (`cache.version` when given, else `sourceVersion`):
   * a worker registered with another definition refuses the attempt (TASK_VERSION_MISMATCH).
   */
  readonly definitionVersion: string;
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
  assertOptionsObject('task', options);
  const base = defineNode('task', options, body);
  const name = options.name;
  const implementation: TaskImplementation = {
    name,
    version: base.definitionVersion,
    signature: signatureDigest(base.signature),
    async execute(inputs, context): Promise<TaskOutcome> {
      const result: unknown = await body(base.parseInputs(inputs, context), context);
      if (options.output === undefined) return { output: null, outputHash: null };
      // Before the schema: it would drop `__proto__` keys silently, or recurse into a cycle.
      checkRawValue(result, { node: context.nodeId, field: 'output' });
      const checked = options.output.safeParse(result);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        const path = issue?.path.length ? ` at '${issue.path.join('.')}'` : '';
        throw new NonRetryableError(`task '${name}' (node '${context.nodeId}') returned a value that does not match its output schema${path}: ${issue?.message ?? checked.error.message}`);
      }
      const output: Json = toJsonValue(checked.data, { node: context.nodeId, field: 'output' });
      return { output, outputHash: computeHash(options.output, checked.data, `task '${name}' output`, { node: context.nodeId, field: 'output' }) ?? null };
    },
  };
  return callable(base, implementation, []) as TaskDefinition<I, O>;
}

/** What a task and a dynamic share once defined: name, signature, defaults, input validation. */
export interface NodeDefinitionBase<I extends InputShape> {
  kind: 'task' | 'dynamic';
  options: TaskOptions<I, z.ZodType | undefined>;
  signature: TaskSignature;
  outputSchema: JsonSchema;
  sourceVersion: string;
  sourceVersionProblem: string | null;
  definitionVersion: string;
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
  assertNodeName(kind, name);
  assertRunnableDefinition(kind, options, body, where);
  const inputNames = Object.keys(options.inputs);
  const signature: TaskSignature = {
    inputs: Object.fromEntries(inputNames.map((input) => [input, toJsonSchema(options.inputs[input] as z.ZodType)])),
    output: options.output === undefined ? NO_OUTPUT_SCHEMA : toJsonSchema(options.output),
    outputHashed: hashFunctionOf(options.output) !== undefined,
    ...(children === undefined ? {} : { children }),
  };
  const optionalInputs = optionalNames(options.inputs);
  if (optionalInputs.length > 0) signature.optionalInputs = optionalInputs;
  const derived = deriveVersion(kind, name, body);
  const sourceVersion = derived.version;
  const defaults: NodeSettings = {
    cache: resolveCache(options.cache, null, inputNames, derived, { node: name }),
    retries: resolveRetries(options.retries, where),
    timeoutMs: options.timeout === undefined ? null : parseDuration(options.timeout, { ...where, field: 'timeout' }),
  };
  const inputSchema = z.object(options.inputs);
  return {
    kind,
    options,
    signature,
    outputSchema: options.output === undefined ? NO_OUTPUT_SCHEMA : toOutputJsonSchema(options.output),
    sourceVersion,
    sourceVersionProblem: derived.problem,
    definitionVersion: defaults.cache?.version ?? sourceVersion,
    defaults,
    body,
    parseInputs(inputs, context) {
      for (const [input, value] of Object.entries(inputs)) checkRawValue(value, { node: context.nodeId, field: input });
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
  const call = (inputs: InputBindings<I>) => currentTrace(name).addTaskCall(definition, inputs);
  const definition = Object.assign(call, {
    kind: base.kind,
    taskName: name,
    description: base.options.description,
    inputs: base.options.inputs,
    output: base.options.output,
    signature: base.signature,
    outputSchema: base.outputSchema,
    defaults: base.defaults,
    sourceVersion: base.sourceVersion,
    sourceVersionProblem: base.sourceVersionProblem,
    definitionVersion: base.definitionVersion,
    fn: base.body,
    implementation,
    children,
  }) as unknown as AnyTask;
  return definition;
}

/** Anything a workflow or dynamic body can call: a task, a dynamic, or a workflow (as a sub-workflow). */
export type Callable = AnyTask | { readonly kind: 'workflow'; readonly workflowName: string; readonly tasks: ReadonlyMap<string, AnyTask> };

/**
 * The version `cache: true` falls back to when no `cache.version` is given, and why it cannot be
 * trusted, if it cannot (then caching without a pinned version is refused; see DerivedVersion).
 */
export interface DerivedVersion {
  version: string;
  /** Null when the version stands for the code; else what to tell a user who relies on it. */
  problem: string | null;
}

/**
 * A task body's derived version: a digest of its source text. Sound only for a body that refers to
 * nothing outside itself but standard globals: closure values cannot be read in JavaScript and
 * imported or module-level code is not in the text, so such a body must pin `cache.version`.
 */
export function deriveVersion(kind: 'task' | 'dynamic', name: string, body: (...args: never[]) => unknown): DerivedVersion {
  const source = Function.prototype.toString.call(body);
  const version = `src-${createHash('sha256').update(source).digest('hex').slice(0, 12)}`;
  const free = freeVariables(body);
  if (free.kind === 'unparsable') return { version, problem: `the ${kind} body's version cannot be derived from its source: ${free.reason}` };
  if (free.names.length === 0) return { version, problem: null };
  const list = free.names.map((variable) => `'${variable}'`).join(', ');
  return {
    version,
    problem:
      `the ${kind} body uses ${list} from outside itself; a version derived from the body's source cannot see their values or code ` +
      `(two closures of one factory would share cache entries)`,
  };
}

/** Resolves `cache` options (task-level, or an override on top of the task's settings) to CacheSettings. */
export function resolveCache(
  option: boolean | CacheOptions | undefined,
  base: CacheSettings | null,
  inputNames: readonly string[],
  sourceVersion: string | DerivedVersion,
  where: { workflow?: string; node: string },
): CacheSettings | null {
  if (option === undefined) return base;
  if (option === false) return null;
  if (option !== true && !isPlainObject(option)) {
    throw new MemoflowError('INVALID_SPEC', `cache must be true, false or an object of cache options, got ${describeGiven(option)}`, { ...where, field: 'cache' });
  }
  const given: CacheOptions = option === true ? {} : option;
  assertCacheOptionTypes(given, where);
  if (given.enabled === false) return null;
  if ('version' in given && given.version === null) {
    // `??` would quietly fall back to a derived version: null is a mistake, not "derive one".
    assertValidCacheVersion(given.version, where);
  }
  const derived: DerivedVersion = typeof sourceVersion === 'string' ? { version: sourceVersion, problem: null } : sourceVersion;
  if (given.version === undefined && base?.version === undefined && derived.problem !== null) {
    throw new MemoflowError(
      'INVALID_CACHE_VERSION',
      `${derived.problem}; caching it without a version would serve one closure's results to another: pin cache: { version: '1' } and bump it when what the body uses changes`,
      { ...where, field: 'cache.version' },
    );
  }
  const version = given.version ?? base?.version ?? derived.version;
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

const CACHE_OPTIONS: readonly string[] = ['enabled', 'version', 'serialize', 'ignoreInputs', 'ttl'] satisfies readonly (keyof CacheOptions)[];

/**
 * What a JavaScript caller can get wrong in the cache options without TypeScript noticing: a
 * misspelt option (`versoin` would silently fall back to a derived version), `enabled: 'no'`
 * (truthy, so caching stayed on), `ignoreInputs: 'x'` (spread into its characters). Each names
 * its field instead.
 */
function assertCacheOptionTypes(given: CacheOptions, where: { workflow?: string; node: string }): void {
  for (const key of Object.keys(given)) {
    if (!CACHE_OPTIONS.includes(key)) {
      throw new MemoflowError('INVALID_SPEC', `cache has no option '${key}' (options: ${CACHE_OPTIONS.join(', ')})`, { ...where, field: `cache.${key}` });
    }
  }
  for (const flag of ['enabled', 'serialize'] as const) {
    const value: unknown = given[flag];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new MemoflowError('INVALID_SPEC', `cache.${flag} must be true or false, got ${describeGiven(value)}`, { ...where, field: `cache.${flag}` });
    }
  }
  const ignored: unknown = given.ignoreInputs;
  if ('ignoreInputs' in given && (!Array.isArray(ignored) || !ignored.every((name) => typeof name === 'string'))) {
    throw new MemoflowError('INVALID_SPEC', `cache.ignoreInputs must be an array of input names, got ${describeGiven(ignored)}`, { ...where, field: 'cache.ignoreInputs' });
  }
}

/**
 * The most extra attempts a node may have. Retries exist for transient faults; a hundred covers any
 * backoff schedule a user would want, while `1e9` would keep a failing node (and its run) busy
 * forever and is always a typo or a misunderstanding.
 */
export const MAX_RETRIES = 100;

export function resolveRetries(retries: number | undefined, where: { workflow?: string; node: string }): number {
  if (retries === undefined) return 0;
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES) {
    throw new MemoflowError('INVALID_SPEC', `retries must be a whole number from 0 to ${MAX_RETRIES}, got ${describeGiven(retries)}`, { ...where, field: 'retries' });
  }
  return retries;
}

/**
 * What can never run is refused when defined, naming the task and field: inputs that are not an
 * object of zod schemas, an output that is not one, a body that is not a function, and schemas no
 * JSON value can satisfy (a Date, BigInt, function, symbol, Map... see json-compatible.ts).
 */
function assertRunnableDefinition(kind: 'task' | 'dynamic', options: { readonly inputs: unknown; readonly output?: unknown }, body: unknown, where: { node: string }): void {
  const inputs: unknown = options.inputs;
  if (!isPlainObject(inputs)) {
    throw new MemoflowError('INVALID_SPEC', `${kind} inputs must be an object of zod schemas (e.g. { rows: z.array(z.number()) }, or {} for none), got ${describeGiven(inputs)}`, { ...where, field: 'inputs' });
  }
  for (const [input, schema] of Object.entries(inputs)) {
    assertStorableName(input, 'input', { ...where, field: 'inputs' });
    if (!isZodSchema(schema)) {
      throw new MemoflowError('INVALID_SPEC', `input '${input}' must be a zod schema (z.string(), z.number(), ...), got ${describeGiven(schema)}`, { ...where, field: `inputs.${input}` });
    }
    assertJsonCompatible(schema, 'input', { ...where, field: `inputs.${input}` });
  }
  if (options.output !== undefined) {
    if (!isZodSchema(options.output)) {
      throw new MemoflowError('INVALID_SPEC', `output must be a zod schema, got ${describeGiven(options.output)}`, { ...where, field: 'output' });
    }
    assertJsonCompatible(options.output, 'output', { ...where, field: 'output' });
  }
  if (typeof body !== 'function' || /^class[\s{]/.test(Function.prototype.toString.call(body))) {
    throw new MemoflowError('INVALID_SPEC', `the ${kind} body must be a function ((inputs, context) => ...), got ${describeGiven(body)}`, { ...where, field: 'body' });
  }
}

/** A plain object (`{...}` or `Object.create(null)`), not an array, a Date, a Map or a class instance. */
export function isPlainObject(value: unknown): value is { [key: string]: unknown } {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** An input or output name no store can keep (U+0000, a lone surrogate) is refused where it is defined. */
export function assertStorableName(name: string, what: 'input' | 'output', where: ErrorLocation & { field: string }): void {
  const problem = stringProblem(name);
  if (problem !== null) throw new MemoflowError('INVALID_SPEC', `the ${what} name ${JSON.stringify(name).slice(0, 40)} ${problem}; rename it`, where);
}

/** A task, dynamic or workflow name: letters, digits, `_`, `-` and `.` (node ids and cache keys are made of it). */
export function assertNodeName(kind: 'task' | 'dynamic' | 'workflow', name: unknown): asserts name is string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new MemoflowError('INVALID_SPEC', `${kind} name ${describeGiven(name)} may only contain letters, digits, '_', '-' and '.'`, { field: 'name' });
  }
}

/**
 * The first argument of `task()`, `dynamic()` and `workflow()` must be an object of options: from
 * JavaScript, `task(null, ...)` or `workflow('etl.main', ...)` would otherwise end in "Cannot read
 * properties of null (reading 'name')".
 */
export function assertOptionsObject(kind: 'task' | 'dynamic' | 'workflow', options: unknown): void {
  if (!isPlainObject(options)) {
    throw new MemoflowError('INVALID_SPEC', `${kind}() takes an object of options first (e.g. ${kind}({ name: 'etl.clean', inputs: { ... } }, ...)), got ${describeGiven(options)}`, { field: 'options' });
  }
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
