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
    // eslint-disable-next-line no-sparse-arrays -- a hole is what is tested
    expect(storageProblem({ rows: [1, , 3] } as unknown as Json, 'output')).toBe('output.rows[1] is a undefined, which JSON cannot encode');
    expect(storageProblem({ a: { b: undefined } } as unknown as Json, 'output')).toBe('output.a.b is a undefined, which JSON cannot encode');
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

  test('reports exactly what the walk of one path string per value reported, for any value and limit (fast-check against that walk)', () => {
    // The walk storageProblem replaced (it built a path for every value): the model.
    function perValuePaths(value: Json, root = 'value', limitBytes = 64 * 1024 * 1024): string | null {
      let bytes = 0;
      const stack: { value: Json; path: string }[] = [{ value, path: root }];
      while (stack.length > 0) {
        const { value: current, path } = stack.pop() as { value: Json; path: string };
        if (typeof current === 'string') {
          const problem = stringProblem(current);
          if (problem !== null) return `${path} ${problem}`;
          bytes += current.length + 2;
        } else if (typeof current === 'number') {
          if (!Number.isFinite(current)) return `${path} is ${String(current)}, which JSON cannot encode`;
          bytes += 8;
        } else if (current === null || typeof current === 'boolean') {
          bytes += 5;
        } else if (Array.isArray(current)) {
          bytes += 2 + current.length;
          for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i] as Json, path: `${path}[${i}]` });
        } else if (typeof current === 'object') {
          const keys = Object.keys(current);
          bytes += 2 + keys.length;
          for (const key of keys.reverse()) {
            const problem = stringProblem(key);
            if (problem !== null) return `the key ${JSON.stringify(key).slice(0, 40)} of ${path} ${problem}`;
            bytes += key.length + 3;
            stack.push({ value: current[key] as Json, path: /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]` });
          }
        } else {
          return `${path} is a ${typeof current}, which JSON cannot encode`;
        }
        if (bytes > limitBytes) return `${root} is larger than the ${Math.round(limitBytes / (1024 * 1024))} MiB a stored value may be (return a reference to the data, e.g. a path or URL, instead of the data)`;
      }
      return null;
    }
    // Values JSON cannot hold too: NaN, Infinity, undefined (as a property and in arrays), functions, bigints, lone surrogates, U+0000 in keys.
    const leaf = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constant(() => 1), fc.bigInt(), fc.constantFrom('a\u0000', '\ud83d', 'ok'));
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
      array: fc.array(tie('value'), { maxLength: 5 }),
      object: fc.dictionary(fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom('a b', 'x\u0000', '$ok', '_1')), tie('value'), { maxKeys: 5 }),
    }));
    fc.assert(
      fc.property(value, fc.constantFrom(undefined, 16, 64, 200), (v, limit) => {
        expect(storageProblem(v as Json, 'output', limit)).toBe(perValuePaths(v as Json, 'output', limit));
      }),
      { numRuns: 3000 },
    );
  });
});
