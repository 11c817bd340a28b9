import type { Json } from '../json.js';
import type { JsonSchema } from './workflow-spec.js';

/**
 * Whether a value of schema `producer` always fits schema `consumer`: the definition-time check of
 * a binding TypeScript could not see. Deliberately conservative in what it rejects: it compares
 * JSON types, array items and required object properties, and accepts whatever it cannot judge
 * (the worker validates every input against its zod schema anyway).
 *
 * Returns null when compatible, else a short reason.
 */
export function incompatibility(consumer: JsonSchema, producer: JsonSchema, path = ''): string | null {
  if (consumer === true || producer === true) return null;
  if (consumer === false) return `${where(path)}accepts nothing`;
  if (producer === false) return null;
  const wanted = jsonTypes(consumer);
  const given = jsonTypes(producer);
  if (wanted === null || given === null) return null;
  const missing = [...given].filter((type) => !wanted.has(type) && !(type === 'integer' && wanted.has('number')));
  if (missing.length > 0) return `${where(path)}expects ${describe(wanted)} but is given ${describe(given)}`;
  if (given.size === 1 && given.has('array')) {
    const items = subSchema(consumer, 'items');
    const givenItems = subSchema(producer, 'items');
    if (items !== undefined && givenItems !== undefined) return incompatibility(items, givenItems, `${path}[]`);
  }
  if (given.size === 1 && given.has('object')) {
    const required = stringList(consumer['required']);
    const givenRequired = new Set(stringList(producer['required']));
    const properties = objectOf(consumer['properties']);
    const givenProperties = objectOf(producer['properties']);
    for (const name of required) {
      const fieldPath = path === '' ? name : `${path}.${name}`;
      if (!givenRequired.has(name)) return `${where(fieldPath)}is required but may be missing`;
      const want = properties[name];
      const have = givenProperties[name];
      if (isSchema(want) && isSchema(have)) {
        const reason = incompatibility(want, have, fieldPath);
        if (reason !== null) return reason;
      }
    }
  }
  return null;
}

/** The schema of a property path inside an object schema, or `true` (unknown) if it cannot be followed. */
export function schemaAtPath(schema: JsonSchema, path: readonly string[]): JsonSchema | undefined {
  let current: JsonSchema = schema;
  for (const segment of path) {
    if (current === true) return true;
    if (current === false) return undefined;
    const properties = objectOf(current['properties']);
    const next = properties[segment];
    if (!isSchema(next)) return jsonTypes(current) === null ? true : undefined;
    current = next;
  }
  return current;
}

function jsonTypes(schema: { [key: string]: Json }): Set<string> | null {
  const type = schema['type'];
  if (typeof type === 'string') return new Set([type]);
  if (Array.isArray(type)) return new Set(type.filter((t): t is string => typeof t === 'string'));
  if ('const' in schema) return new Set([typeOfValue(schema['const'] ?? null)]);
  if (Array.isArray(schema['enum'])) return new Set(schema['enum'].map((value) => typeOfValue(value)));
  const union = schema['anyOf'] ?? schema['oneOf'];
  if (Array.isArray(union)) {
    const types = new Set<string>();
    for (const member of union) {
      if (!isSchema(member) || member === true || member === false) return null;
      const memberTypes = jsonTypes(member);
      if (memberTypes === null) return null;
      for (const t of memberTypes) types.add(t);
    }
    return types;
  }
  return null;
}

function typeOfValue(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function subSchema(schema: { [key: string]: Json }, key: string): JsonSchema | undefined {
  const value = schema[key];
  return isSchema(value) ? value : undefined;
}

function isSchema(value: Json | undefined): value is JsonSchema {
  return typeof value === 'boolean' || (value !== null && typeof value === 'object' && !Array.isArray(value));
}

function objectOf(value: Json | undefined): { [key: string]: Json } {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
}

function stringList(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function describe(types: Set<string>): string {
  return [...types].sort().join(' | ');
}

function where(path: string): string {
  return path === '' ? '' : `'${path}' `;
}
