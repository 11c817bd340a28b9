import { z } from 'zod';
import type { JsonSchema } from '@memoflow/engine';

const cache = new WeakMap<z.ZodType, JsonSchema>();

/**
 * The JSON Schema of a zod type: what a task's signature (and so its cache key) is made of.
 * `io: 'input'` because a signature describes what a task accepts; unrepresentable parts (transforms,
 * dates) become `{}` rather than failing, since the signature only needs to change when the type does.
 */
export function toJsonSchema(schema: z.ZodType): JsonSchema {
  let json = cache.get(schema);
  if (json === undefined) {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { [key: string]: unknown };
    json = JSON.parse(JSON.stringify(rest)) as JsonSchema;
    cache.set(schema, json);
  }
  return json;
}

const outputCache = new WeakMap<z.ZodType, JsonSchema>();

/**
 * The JSON Schema of what a task returns (zod `io: 'output'`: after transforms and defaults), which
 * the engine checks cache hits against (`NodeSpec.outputSchema`). Not part of the key: the
 * signature (`toJsonSchema`) already changes whenever the type does.
 */
export function toOutputJsonSchema(schema: z.ZodType): JsonSchema {
  let json = outputCache.get(schema);
  if (json === undefined) {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as { [key: string]: unknown };
    json = JSON.parse(JSON.stringify(rest)) as JsonSchema;
    outputCache.set(schema, json);
  }
  return json;
}

/** Null's schema: the output of a task that declares none. */
export const NO_OUTPUT_SCHEMA: JsonSchema = { type: 'null' };
