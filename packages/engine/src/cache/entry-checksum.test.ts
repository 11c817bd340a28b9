import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Json } from '../json.js';
import { checksumProblem, entryChecksum, ENTRY_CHECKSUM_PREFIX } from './entry-checksum.js';
import { hashJson } from './canonical-hash.js';

describe('entryChecksum', () => {
  const entry = { key: 'k1', kind: 'output' as const, value: { a: 1, b: [2] }, valueHash: null };

  test('is versioned and independent of key order', () => {
    const checksum = entryChecksum(entry);
    expect(checksum.startsWith(ENTRY_CHECKSUM_PREFIX)).toBe(true);
    expect(entryChecksum({ ...entry, value: { b: [2], a: 1 } })).toBe(checksum);
    expect(checksumProblem(entry, checksum)).toBeUndefined();
  });

  test('binds key, kind, value and valueHash', () => {
    const checksum = entryChecksum(entry);
    for (const other of [{ ...entry, key: 'k2' }, { ...entry, kind: 'future' as const }, { ...entry, value: { a: 2, b: [2] } }, { ...entry, valueHash: 'h' }]) {
      expect(entryChecksum(other)).not.toBe(checksum);
      expect(checksumProblem(other, checksum)).toMatch(/checksum mismatch/);
    }
  });

  test("an earlier release's value-only checksum is refused, saying why", () => {
    expect(checksumProblem(entry, hashJson(entry.value))).toMatch(/earlier release, not bound to its key/);
  });

  test('a value with no JSON encoding is a problem, not an exception', () => {
    expect(checksumProblem({ ...entry, value: Number.POSITIVE_INFINITY }, entryChecksum(entry))).toMatch(/undecodable|mismatch/);
  });
});

describe('entryChecksum, written out for its shape', () => {
  // The general encoding every stored checksum was made with: the library over the whole envelope.
  const general = (entry: { key: unknown; kind: unknown; value: unknown; valueHash: unknown }) =>
    `${ENTRY_CHECKSUM_PREFIX}${createHash('sha256')
      .update(canonicalize({ format: 2, key: entry.key, kind: entry.kind, value: entry.value, valueHash: entry.valueHash }) ?? '')
      .digest('hex')}`;

  test('gives the general encoding for any key, kind, value and valueHash', () => {
    const text = fc.string({ unit: 'binary' });
    fc.assert(
      fc.property(text, fc.oneof(fc.constantFrom('output', 'future'), text), fc.jsonValue(), fc.option(text), (key, kind, value, valueHash) => {
        const entry = { key, kind: kind as 'output', value: value as Json, valueHash };
        expect(entryChecksum(entry)).toBe(general(entry));
      }),
      { numRuns: 2000 },
    );
  });

  test('an entry off the shape (a member of another type, or missing) takes the general path', () => {
    for (const entry of [
      { key: 7, kind: 'output', value: 1, valueHash: null },
      { key: 'k', kind: 'output', value: undefined, valueHash: null },
      { key: 'k', kind: 'output', value: 1, valueHash: undefined },
      { key: 'k', kind: 'output', value: 1, valueHash: 5 },
    ]) {
      expect(entryChecksum(entry as never)).toBe(general(entry));
    }
  });

  test('golden: a checksum stored by earlier releases still matches', () => {
    expect(entryChecksum({ key: 'k1', kind: 'output', value: { b: [2, 'x'], a: 1.5 }, valueHash: null })).toBe(general({ key: 'k1', kind: 'output', value: { a: 1.5, b: [2, 'x'] }, valueHash: null }));
  });
});
