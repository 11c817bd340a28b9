import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Json } from '../json.js';
import { canonicalJson, sha256Hex } from './canonical-hash.js';

// The fast paths must give the very text and digest the general ones give: every key and checksum
// ever stored was made by them.
describe('canonicalJson and sha256Hex', () => {
  const anyText = fc.string({ unit: 'binary' }); // lone surrogates and U+0000 included

  test('canonicalJson is the library, for any JSON value and every scalar', () => {
    const scalar = fc.oneof(anyText, fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(-0));
    fc.assert(
      fc.property(fc.oneof(scalar, fc.jsonValue(), fc.dictionary(anyText, scalar)), (value) => {
        const expected = (() => {
          try {
            return canonicalize(value);
          } catch (error) {
            return error instanceof Error ? `throws ${error.message}` : 'throws';
          }
        })();
        let actual: string;
        try {
          actual = canonicalJson(value as Json);
        } catch (error) {
          actual = error instanceof Error ? `throws ${error.message}` : 'throws';
        }
        expect(actual).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  test('NaN and the infinities are still refused', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) expect(() => canonicalJson(value)).toThrow();
  });

  test("sha256Hex is createHash's digest of the text's UTF-8, lone surrogates included", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        expect(sha256Hex(text)).toBe(createHash('sha256').update(text).digest('hex'));
      }),
      { numRuns: 2000 },
    );
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
