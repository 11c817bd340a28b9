import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { keyOfParts, type CacheKeyParts } from '../cache/cache-key.js';
import type { Json, NodeValue } from '../json.js';
import { keyDifferences, SHOWN_VALUE_LIMIT } from './key-differences.js';

/*
 * Random pairs of key parts drawn from small alphabets, so that equal and unequal parts both occur
 * often: the differences must be exactly the parts that differ (never a false one, never a missed
 * one), and none exactly when the two keys are equal.
 */
const small = fc.constantFrom('a', 'b', 'demo', 'constructor', '__proto__', 'x.y', '');
const digest = fc.constantFrom('sha256:1', 'sha256:2', 'hash:1', 'tree:1');
const inputs = fc.dictionary(fc.constantFrom('rows', 'n', 'constructor', 'toString', 'a b', 'ü'), digest, { maxKeys: 4 });
const parts: fc.Arbitrary<CacheKeyParts> = fc.record({
  format: fc.constant(1 as const),
  project: small,
  domain: small,
  task: small,
  signature: fc.constantFrom('s1', 's2'),
  version: fc.constantFrom('1', '2', '1.0'),
  inputs,
});
const SCALARS = ['project', 'domain', 'task', 'signature', 'version'] as const;

function expectedDifferences(now: CacheKeyParts, was: CacheKeyParts): string[] {
  const expected = SCALARS.filter((part) => now[part] !== was[part]).map((part) => part as string);
  const names = new Set([...Object.keys(now.inputs), ...Object.keys(was.inputs)]);
  for (const name of names) {
    const a = Object.hasOwn(was.inputs, name) ? was.inputs[name] : undefined;
    const b = Object.hasOwn(now.inputs, name) ? now.inputs[name] : undefined;
    if (a !== b) expected.push(`input:${name}`);
  }
  return expected.sort();
}

describe('keyDifferences (property)', () => {
  test('names exactly the parts that differ, and none exactly when the keys are equal', () => {
    fc.assert(
      fc.property(parts, parts, (now, was) => {
        const differences = keyDifferences(now, was);
        const named = differences.map((d) => (d.part === 'input' ? `input:${d.name ?? ''}` : d.part)).sort();
        expect(named).toEqual(expectedDifferences(now, was));
        expect(differences.length === 0).toBe(keyOfParts(now) === keyOfParts(was));
        for (const d of differences) {
          if (d.part !== 'input') continue;
          const name = d.name ?? '';
          expect(d.change).toBe(!Object.hasOwn(was.inputs, name) ? 'added' : !Object.hasOwn(now.inputs, name) ? 'removed' : 'changed');
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('was/now values are shown only when known and small, each from its own side', () => {
    const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;
    fc.assert(
      fc.property(parts, parts, fc.dictionary(fc.string({ maxLength: 4 }), json), fc.dictionary(fc.string({ maxLength: 4 }), json), (now, was, nowRaw, wasRaw) => {
        const nowValues: { [name: string]: NodeValue } = {};
        const wasValues: { [name: string]: NodeValue } = {};
        for (const name of Object.keys(now.inputs)) nowValues[name] = { value: Object.hasOwn(nowRaw, name) ? (nowRaw[name] ?? null) : name };
        for (const name of Object.keys(was.inputs)) wasValues[name] = { value: Object.hasOwn(wasRaw, name) ? (wasRaw[name] ?? null) : name };
        for (const d of keyDifferences(now, was, { now: nowValues, was: wasValues })) {
          if (d.part !== 'input') continue;
          const name = d.name ?? '';
          const check = (side: 'now' | 'was', values: { [name: string]: NodeValue }) => {
            const value = Object.hasOwn(values, name) ? values[name]?.value : undefined;
            const small = value !== undefined && JSON.stringify(value).length <= SHOWN_VALUE_LIMIT;
            if (small) expect(d[side]).toEqual(value);
            else expect(d[side]).toBeUndefined();
          };
          check('now', nowValues);
          check('was', wasValues);
        }
      }),
      { numRuns: 500 },
    );
  });
});
