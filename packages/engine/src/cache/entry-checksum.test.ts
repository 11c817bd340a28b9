import { describe, expect, test } from 'vitest';
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
