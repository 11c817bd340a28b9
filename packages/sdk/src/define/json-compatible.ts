import { z } from 'zod';
import { MemoflowError, type ErrorLocation } from '@memoflow/engine';

/**
 * Definition-time checks that a schema can describe values that cross JSON (queues, the catalog,
 * the run store): an input must be a JSON value when it arrives, an output when it is stored. A
 * schema that can only ever be satisfied by a Date, a BigInt, a function, a symbol, a Map or Set, a
 * NaN or a promise defines a task that can never run, so it is refused when defined, naming the
 * task and the field, instead of failing every attempt.
 *
 * Where zod changes a value on the way in (`z.coerce.date()`, a transform), the input side is what
 * crosses JSON, so an input `z.coerce.date()` (fed an ISO string) is kept; as an output it is refused.
 */
const NEVER_JSON: { readonly [type: string]: string } = {
  date: 'a Date is not JSON (use z.iso.datetime() or z.string(), or z.coerce.date() for an input)',
  bigint: 'a BigInt is not JSON (use z.number() or a string of digits, or z.coerce.bigint() for an input)',
  function: 'a function is not data: it cannot cross a queue or be cached',
  symbol: 'a symbol is not JSON',
  map: 'a Map is not JSON (use z.record(...) or an array of pairs)',
  set: 'a Set is not JSON (use z.array(...))',
  nan: 'NaN is not JSON',
  promise: 'a promise is not data: inputs arrive resolved and outputs are awaited (use the inner schema)',
};

export type SchemaRole = 'input' | 'output';

/** Whether `value` is a zod (v4) schema: what `inputs` and `output` must hold. */
export function isZodSchema(value: unknown): value is z.ZodType {
  return value instanceof z.ZodType || (typeof value === 'object' && value !== null && '_zod' in value && typeof (value as { safeParse?: unknown }).safeParse === 'function');
}

/** Throws INVALID_SPEC naming `where.field` (plus the path inside it) if `schema` can never be JSON. */
export function assertJsonCompatible(schema: z.ZodType, role: SchemaRole, where: ErrorLocation & { field: string }): void {
  let problem: { path: string; reason: string } | undefined;
  z.toJSONSchema(schema, {
    io: role,
    unrepresentable: 'any',
    override(context) {
      if (problem !== undefined) return;
      const def = (context.zodSchema as unknown as { _zod: { def: { type: string; coerce?: boolean } } })._zod.def;
      const reason = NEVER_JSON[def.type];
      if (reason === undefined) return;
      if (role === 'input' && def.coerce === true) return; // z.coerce.date(): an ISO string arrives, the body gets a Date
      problem = { path: fieldPath(context.path), reason };
    },
  });
  if (problem !== undefined) {
    const field = problem.path === '' ? where.field : `${where.field}${problem.path}`;
    throw new MemoflowError('INVALID_SPEC', `the ${role} schema can never be satisfied by a JSON value: ${problem.reason}`, { ...where, field });
  }
}

/** A JSON Schema path (`properties.a.items`) as a field path (`.a[]`); combinators add nothing. */
function fieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    if (step === 'properties' || step === 'patternProperties') {
      const name = path[++i];
      if (name !== undefined) out += `.${String(name)}`;
    } else if (step === 'items' || step === 'prefixItems' || step === 'additionalProperties') {
      out += '[]';
      if (step === 'prefixItems' && typeof path[i + 1] === 'number') i++;
    } else if (step === 'anyOf' || step === 'oneOf' || step === 'allOf') {
      if (typeof path[i + 1] === 'number') i++;
    }
  }
  return out;
}
