import { MemoflowError, type ErrorLocation } from '@memoflow/engine';
import { isZodSchema } from './json-compatible.js';

/**
 * Checks that a workflow's `inputs` is an object of zod schemas (and `output`, when given, a zod
 * schema) before anything reads them (tasks and dynamics: `assertRunnableDefinition`): a JSON Schema, a plain value or a string used to end in zod's internals
 * ("Cannot use 'in' operator to search for '_idmap'"). Duck-typed (`_zod` and `safeParse`), so a
 * schema from another copy of zod v4 is accepted.
 */
export function assertSchemas(options: { inputs?: unknown; output?: unknown }, where: ErrorLocation, what: string): void {
  const inputs = options.inputs;
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    throw new MemoflowError('INVALID_SPEC', `${what} needs \`inputs\`: an object of zod schemas, e.g. { rows: z.array(z.number()) }, got ${describe(inputs)}`, { ...where, field: 'inputs' });
  }
  for (const [name, schema] of Object.entries(inputs)) {
    if (!isZodSchema(schema)) {
      throw new MemoflowError('INVALID_SPEC', `input '${name}' of ${what} must be a zod schema (e.g. z.number()), got ${describe(schema)}`, { ...where, field: `inputs.${name}` });
    }
  }
  if ('output' in options && options.output !== undefined && !isZodSchema(options.output)) {
    throw new MemoflowError('INVALID_SPEC', `the output of ${what} must be a zod schema (e.g. z.number()), got ${describe(options.output)}`, { ...where, field: 'output' });
  }
}


function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a plain object${'type' in value ? ' (a JSON Schema? use zod)' : ''}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `a ${typeof value}`;
}
