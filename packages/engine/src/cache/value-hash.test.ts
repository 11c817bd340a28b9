import { describe, expect, test } from 'vitest';
import { isCanonicalTree } from './hash-tree.js';
import { decodeValueHash, encodeValueHash } from './value-hash.js';

describe('value-hash codec', () => {
  test('entries written before it decode as they were written: null is plain, a string is the whole hash', () => {
    expect(decodeValueHash({ rows: [1] }, null)).toEqual({ value: { rows: [1] } });
    expect(decodeValueHash('x', 'sha:abc')).toEqual({ value: 'x', hash: 'sha:abc' });
    expect(decodeValueHash('x', 'hash:abc')).toEqual({ value: 'x', hash: 'hash:abc' });
  });

  test('a plain value or a whole hash is stored as before', () => {
    expect(encodeValueHash({ value: 1 })).toBeNull();
    expect(encodeValueHash({ value: 1, hash: 'sha:abc' })).toBe('sha:abc');
  });

  test('hashed members are stored as members: + canonical JSON, and read back', () => {
    const value = { value: { b: ['x', 'y'], a: 'raw' }, members: { object: { b: { array: [null, 'hy'] }, a: 'ha' } } };
    const stored = encodeValueHash(value);
    expect(stored).toBe('members:{"object":{"a":"ha","b":{"array":[null,"hy"]}}}');
    expect(decodeValueHash(value.value, stored)).toEqual(value);
  });

  test('a whole hash that looks like the encoding is escaped, and unescaped on the way back', () => {
    for (const hash of ['members:{"object":{}}', 'hash:members:x', 'hash:hash:', 'members:']) {
      const stored = encodeValueHash({ value: 1, hash });
      expect(stored).toBe(`hash:${hash}`);
      expect(decodeValueHash(1, stored)).toEqual({ value: 1, hash });
    }
  });

  test('members that are not JSON or do not fit the value are a corrupt entry', () => {
    expect(decodeValueHash({ a: 1 }, 'members:{')).toEqual({ corrupt: 'its hashed members are not JSON' });
    for (const tree of ['"h"', 'null', '{"object":{}}', '{"object":{"b":"h"}}', '{"array":["h"]}', '{"object":{"a":"h"},"array":[]}', '{"object":{"a":5}}']) {
      expect(decodeValueHash({ a: 1 }, `members:${tree}`)).toEqual({ corrupt: 'its hashed members do not fit its value' });
    }
    expect(decodeValueHash([1, 2], 'members:{"array":["h"]}')).toEqual({ corrupt: 'its hashed members do not fit its value' });
    expect(decodeValueHash([1, 2], 'members:{"array":[null,null]}')).toEqual({ corrupt: 'its hashed members do not fit its value' });
    expect(decodeValueHash([1, 2], 'members:{"array":[null,"h"]}')).toEqual({ value: [1, 2], members: { array: [null, 'h'] } });
  });

  test('a field named __proto__ is an own field of the tree, not a prototype', () => {
    const value = JSON.parse('{"__proto__":"raw"}') as { [key: string]: string };
    const decoded = decodeValueHash(value, 'members:{"object":{"__proto__":"h"}}');
    expect(decoded).toEqual({ value, members: JSON.parse('{"object":{"__proto__":"h"}}') });
    expect(isCanonicalTree({ object: {} }, value)).toBe(false);
  });
});
