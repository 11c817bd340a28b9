import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { Json } from '../json.js';
import type { JsonSchema } from '../spec/workflow-spec.js';
import { canonicalJson } from './canonical-hash.js';

/*
 * Checks a value against a node's output schema (`NodeSpec.outputSchema`, the JSON Schema of the
 * output type as the task returns it, zod `io: 'output'`). The engine does it on every cache HIT
 * (an entry of the wrong type is a miss with a warning, never served) and before every write (a
 * value that fails cannot come from a task, whose SDK validates its output, so only corruption
 * could cause it; it is never written).
 *
 * Draft 2020-12, `strict: false` (zod emits keywords ajv does not know), no format validation
 * (ajv-formats is not a dependency: `format` is ignored rather than refused). Each schema is
 * compiled once: specs are re-read from the store every round, so the cache is keyed by the
 * schema's canonical text, not by object identity.
 */

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false, logger: false });
const compiled = new Map<string, ValidateFunction | null>();
/**
 * In front of `compiled`, by schema object: the nodes of one task share their schema object within
 * a spec, and canonicalising it for each hit of a 100,000-node rerun cost more than the check.
 */
const bySchemaObject = new WeakMap<Exclude<JsonSchema, boolean>, ValidateFunction | null>();
/** Enough for every task of a large deployment; a full cache is simply emptied (recompiling is cheap). */
const MAX_COMPILED = 2000;

/**
 * Why `value` does not match `schema`, or undefined if it does. No schema (a spec from before
 * `outputSchema` existed) means no check. A schema ajv cannot compile is not checked either:
 * refusing every hit of a task over a schema quirk would turn its cache off for good.
 */
export function outputSchemaProblem(schema: JsonSchema | undefined, value: Json): string | undefined {
  if (schema === undefined) return undefined;
  const validate = validatorFor(schema);
  if (validate === null || validate(value)) return undefined;
  const error = validate.errors?.[0];
  if (error === undefined) return 'the value does not match the output schema';
  const where = error.instancePath === '' ? 'the value' : `at ${error.instancePath}`;
  return `${where} ${error.message ?? 'does not match'} (output schema keyword '${error.keyword}')`;
}

function validatorFor(schema: JsonSchema): ValidateFunction | null {
  if (typeof schema !== 'object') return validatorByText(schema);
  const known = bySchemaObject.get(schema);
  if (known !== undefined) return known;
  const validate = validatorByText(schema);
  bySchemaObject.set(schema, validate);
  return validate;
}

function validatorByText(schema: JsonSchema): ValidateFunction | null {
  const id = canonicalJson(schema);
  let validate = compiled.get(id);
  if (validate === undefined) {
    try {
      validate = ajv.compile(schema);
    } catch {
      validate = null;
    }
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(id, validate);
  }
  return validate;
}
