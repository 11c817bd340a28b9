import { describe, expect, test } from 'vitest';
import { incompatibility, schemaAtPath } from './schema-compat.js';
import type { JsonSchema } from './workflow-spec.js';

const string: JsonSchema = { type: 'string' };
const number: JsonSchema = { type: 'number' };
const integer: JsonSchema = { type: 'integer' };

describe('incompatibility(consumer, producer)', () => {
  test('same types fit', () => {
    expect(incompatibility(string, string)).toBeNull();
    expect(incompatibility({ type: 'array', items: number }, { type: 'array', items: number })).toBeNull();
  });

  test('different JSON types do not', () => {
    expect(incompatibility(string, { type: 'array', items: number })).toBe('expects string but is given array');
    expect(incompatibility(number, { type: 'boolean' })).toBe('expects number but is given boolean');
  });

  test('integer fits number, not the other way round', () => {
    expect(incompatibility(number, integer)).toBeNull();
    expect(incompatibility({ type: 'array', items: number }, { type: 'array', items: integer })).toBeNull();
    expect(incompatibility(integer, number)).toBe('expects integer but is given number');
  });

  test('array items are compared with a path', () => {
    expect(incompatibility({ type: 'array', items: string }, { type: 'array', items: number })).toBe("'[]' expects string but is given number");
    expect(incompatibility({ type: 'array', items: { type: 'array', items: string } }, { type: 'array', items: { type: 'array', items: number } })).toBe(
      "'[][]' expects string but is given number",
    );
  });

  test('objects: required fields must be required by the producer and fit', () => {
    const wanted = { type: 'object', properties: { a: string, b: number }, required: ['a'] };
    expect(incompatibility(wanted, { type: 'object', properties: { a: string }, required: ['a'] })).toBeNull();
    // Optional consumer fields are not required of the producer.
    expect(incompatibility(wanted, { type: 'object', properties: { a: string, b: string }, required: ['a'] })).toBeNull();
    expect(incompatibility(wanted, { type: 'object', properties: { a: string } })).toBe("'a' is required but may be missing");
    expect(incompatibility(wanted, { type: 'object', properties: { a: number }, required: ['a'] })).toBe("'a' expects string but is given number");
  });

  test('nested object paths are named', () => {
    const wanted = { type: 'object', properties: { m: { type: 'object', properties: { w: { type: 'array', items: number } }, required: ['w'] } }, required: ['m'] };
    const given = { type: 'object', properties: { m: { type: 'object', properties: { w: { type: 'array', items: string } }, required: ['w'] } }, required: ['m'] };
    expect(incompatibility(wanted, given)).toBe("'m.w[]' expects number but is given string");
  });

  test('anyOf / oneOf / type arrays are unions', () => {
    const nullableString = { anyOf: [string, { type: 'null' }] };
    expect(incompatibility(nullableString, string)).toBeNull();
    expect(incompatibility(nullableString, { type: 'null' })).toBeNull();
    expect(incompatibility(nullableString, { type: ['string', 'null'] })).toBeNull();
    expect(incompatibility({ oneOf: [string, number] }, integer)).toBeNull();
    expect(incompatibility(string, nullableString)).toBe('expects string but is given null | string');
    expect(incompatibility(string, { type: ['string', 'null'] })).toBe('expects string but is given null | string');
  });

  test('const and enum give their value types', () => {
    expect(incompatibility(string, { enum: ['a', 'b'] })).toBeNull();
    expect(incompatibility(string, { const: 3 })).toBe('expects string but is given integer');
    expect(incompatibility(number, { enum: [1, 2.5] })).toBeNull();
    expect(incompatibility(string, { enum: ['a', null] })).toBe('expects string but is given null | string');
  });

  test('true and unknown schemas are accepted; false consumers accept nothing', () => {
    expect(incompatibility(true, string)).toBeNull();
    expect(incompatibility(string, true)).toBeNull();
    expect(incompatibility({}, string)).toBeNull();
    expect(incompatibility(string, {})).toBeNull();
    expect(incompatibility({ anyOf: [string, true] }, number)).toBeNull();
    expect(incompatibility(false, string)).toBe('accepts nothing');
    expect(incompatibility(string, false)).toBeNull();
  });
});

describe('schemaAtPath', () => {
  const split: JsonSchema = { type: 'object', properties: { train: { type: 'array', items: number }, meta: { type: 'object', properties: { n: integer } } } };

  test('the empty path is the schema itself', () => {
    expect(schemaAtPath(split, [])).toBe(split);
  });

  test('follows properties', () => {
    expect(schemaAtPath(split, ['train'])).toEqual({ type: 'array', items: number });
    expect(schemaAtPath(split, ['meta', 'n'])).toEqual(integer);
  });

  test('an unknown property of a typed object cannot be followed', () => {
    expect(schemaAtPath(split, ['nope'])).toBeUndefined();
  });

  test('an untyped or `true` schema yields `true` (unknown)', () => {
    expect(schemaAtPath(true, ['a', 'b'])).toBe(true);
    expect(schemaAtPath({ description: 'x' }, ['a'])).toBe(true);
    expect(schemaAtPath(false, ['a'])).toBeUndefined();
  });
});
