import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Json } from './json.js';
import { repairString, storableError, storageProblem, stringProblem } from './storable.js';

describe('storable values', () => {
  test('names where a value cannot be stored, and why', () => {
    expect(storageProblem({ rows: [{ name: 'ok' }, { name: 'a\u0000b' }] }, 'output')).toBe('output.rows[1].name contains U+0000 (a NUL character), which Postgres cannot store');
    expect(storageProblem(['😀'.slice(0, 1)], 'output')).toMatch(/^output\[0\] contains a lone UTF-16 surrogate/);
    expect(storageProblem({ 'bad\u0000key': 1 }, 'output')).toMatch(/^the key "bad\\u0000key" of output contains U\+0000/);
    expect(storageProblem({ 'a b': [Number.NaN] }, 'output')).toBe('output["a b"][0] is NaN, which JSON cannot encode');
    expect(storageProblem('x'.repeat(2000), 'output', 1000)).toMatch(/^output is larger than/);
  });

  test('a 100,000-deep value is checked without overflowing the stack', () => {
    let deep: Json = 'leaf\u0000';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(storageProblem(deep, 'output')).toMatch(/contains U\+0000/);
  });

  test('a JSON value is storable exactly when all its strings and keys are well-formed Unicode without U+0000 (fast-check)', () => {
    const strings = (value: unknown): string[] =>
      typeof value === 'string' ? [value] : Array.isArray(value) ? value.flatMap(strings) : value !== null && typeof value === 'object' ? Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]) : [];
    fc.assert(
      fc.property(fc.jsonValue({ depthSize: 'medium', stringUnit: 'binary' }), (value) => {
        const clean = strings(value).every((text) => (text as string & { isWellFormed(): boolean }).isWellFormed() && !text.includes('\u0000'));
        expect(storageProblem(value as Json) === null).toBe(clean);
      }),
      { numRuns: 1000 },
    );
  });

  test('repaired strings are always storable and unchanged when they already were', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const repaired = repairString(text);
        expect(stringProblem(repaired)).toBeNull();
        if (stringProblem(text) === null) expect(repaired).toBe(text);
      }),
      { numRuns: 1000 },
    );
    const error = storableError({ name: 'E\u0000', message: 'cut 😀'.slice(0, 5), retryable: true, code: 'X' });
    expect(storageProblem(error as unknown as Json)).toBeNull();
  });
});
