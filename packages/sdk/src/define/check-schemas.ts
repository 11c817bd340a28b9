import { MemoflowError, describeGiven, type ErrorLocation } from '@memoflow/engine';
import { assertJsonCompatible, isZodSchema } from './json-compatible.js';
import { assertStorableName, isPlainObject } from './task.js';

/**
 * Checks that a workflow's `inputs` is an object of zod schemas (and `output`, when given, a zod
 * schema) before anything reads them (tasks and dynamics: `assertRunnableDefinition`): a JSON Schema, a plain value or a string used to end in zod's internals
 * ("Cannot use 'in' operator to search for '_idmap'"). Duck-typed (`_zod` and `safeParse`), so a
 * schema from another copy of zod v4 is accepted.
 */
export function assertSchemas(options: { inputs?: unknown; output?: unknown }, where: ErrorLocation, what: string): void {
  const inputs = options.inputs;
  if (!isPlainObject(inputs)) {
    throw new MemoflowError('INVALID_SPEC', `${what} needs \`inputs\`: an object of zod schemas, e.g. { rows: z.array(z.number()) }, got ${describe(inputs)}`, { ...where, field: 'inputs' });
  }
  for (const [name, schema] of Object.entries(inputs)) {
    assertStorableName(name, 'input', { ...where, field: 'inputs' });
    if (!isZodSchema(schema)) {
      throw new MemoflowError('INVALID_SPEC', `input '${name}' of ${what} must be a zod schema (e.g. z.number()), got ${describe(schema)}`, { ...where, field: `inputs.${name}` });
    }
    // As for a task's inputs: a schema only a Date, a BigInt, a Map... satisfies can never be given.
    assertJsonCompatible(schema, 'input', { ...where, field: `inputs.${name}` });
  }
  if ('output' in options && options.output !== undefined && !isZodSchema(options.output)) {
    throw new MemoflowError('INVALID_SPEC', `the output of ${what} must be a zod schema (e.g. z.number()), got ${describe(options.output)}`, { ...where, field: 'output' });
  }
}


function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value)) return `a plain object${'type' in value ? ' (a JSON Schema? use zod)' : ''}`;
  if (typeof value === 'object') return describeGiven(value);
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `a ${typeof value}`;
}
