import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoflowError, type Json } from '@memoflow/engine';
import { MAX_JSON_DEPTH, checkRawValue, toJsonValue } from './json-value.js';

const where = { workflow: 'wf', node: 'n', field: 'v' };

/** `levels` arrays inside each other. */
function nested(levels: number): Json {
  let value: Json = 'leaf';
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

/** JSON values as JSON.parse makes them: unicode strings and keys (any but `__proto__`), nesting. */
const { json } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'grapheme' }),
    fc.array(tie('json'), { maxLength: 5 }),
    fc
      .array(fc.tuple(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 8 }), fc.constantFrom('constructor', 'toString', 'hasOwnProperty', '__proto_')), tie('json')), { maxLength: 5 })
      .map((entries) => Object.fromEntries(entries.filter(([key]) => key !== '__proto__')) as Json),
  ),
}));

function refusal(run: () => unknown): MemoflowError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(MemoflowError);
    return error as MemoflowError;
  }
  throw new Error('accepted');
}

describe('toJsonValue', () => {
  it('keeps every JSON value exactly, but -0, which JSON cannot hold, as 0 (property)', () => {
    // What a stored run reads back: every number as written, except -0 (regression test negative-zero-differs-between-result-and-store).
    const stored = (value: unknown): unknown =>
      Object.is(value, -0) ? 0 : Array.isArray(value) ? value.map(stored) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stored(v)])) : value;
    fc.assert(
      fc.property(json, (value) => {
        const out = toJsonValue(value, where);
        // node's deep-strict equality (vitest's toStrictEqual reads an own `constructor` key as the type).
        expect(isDeepStrictEqual(out, stored(value))).toBe(true);
        expect(JSON.stringify(out)).toBe(JSON.stringify(value));
        checkRawValue(value, where);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps values nested up to the limit, whatever their shape (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_JSON_DEPTH }), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), (levels, shape) => {
        let value: Json = 1;
        for (let i = 0; i < levels; i++) value = shape[i % shape.length] === true ? [value] : { k: value };
        expect(toJsonValue(value, where)).toStrictEqual(value);
      }),
      { numRuns: 50 },
    );
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH}, with a MemoflowError instead of a stack overflow`, () => {
    expect(toJsonValue(nested(MAX_JSON_DEPTH), where)).toStrictEqual(nested(MAX_JSON_DEPTH));
    for (const levels of [MAX_JSON_DEPTH + 1, 20_000, 200_000]) {
      const error = refusal(() => toJsonValue(nested(levels), where));
      expect(error.message).toMatch(/deeper than 1000 levels/);
      expect(error.location).toMatchObject({ workflow: 'wf', node: 'n' });
      expect(error.location.field?.length).toBeLessThan(200);
      expect(refusal(() => checkRawValue(nested(levels), where)).message).toMatch(/deeper than 1000/);
    }
  });

  it('refuses a cycle, naming where it closes; a value shared twice is fine', () => {
    const a: { [key: string]: unknown } = { x: 1 };
    a['list'] = [{ up: a }];
    for (const check of [() => toJsonValue(a, where), () => checkRawValue(a, where)]) {
      const error = refusal(check);
      expect(error.location.field).toBe('v.list[0].up');
      expect(error.message).toMatch(/cyclic/);
    }
    const shared = { s: 1 };
    expect(toJsonValue({ a: shared, b: [shared] }, where)).toEqual({ a: { s: 1 }, b: [{ s: 1 }] });
  });

  it('refuses a __proto__ key anywhere (property), naming its path', () => {
    fc.assert(
      fc.property(json, fc.array(fc.string({ minLength: 1, maxLength: 3, unit: fc.constantFrom('a', 'b') }), { maxLength: 4 }), (payload, path) => {
        let value: Json = JSON.parse(`{"__proto__": ${JSON.stringify(payload)}}`) as Json;
        for (const key of [...path].reverse()) value = { [key]: value };
        const expected = ['v', ...path, '__proto__'].join('.');
        expect(refusal(() => toJsonValue(value, where)).location.field).toBe(expected);
        expect(refusal(() => checkRawValue(value, where)).location.field).toBe(expected);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses holes, NaN, Infinity, undefined in arrays, Dates, Maps, class instances, functions, BigInts', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(refusal(() => toJsonValue({ xs: [1, , 3] }, where)).location.field).toBe('v.xs[1]');
    for (const bad of [Number.NaN, Infinity, [undefined], new Date(0), new Map(), new (class Row {})(), () => 1, 1n, Symbol('s')]) {
      refusal(() => toJsonValue({ bad }, where));
    }
    expect(toJsonValue({ gone: undefined, kept: 1 }, where)).toEqual({ kept: 1 });
    expect(toJsonValue(Object.assign(Object.create(null) as object, { a: 1 }), where)).toEqual({ a: 1 });
  });
});
