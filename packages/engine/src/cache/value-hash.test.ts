import { describe, expect, test } from 'vitest';
import { isCanonicalTree } from './hash-tree.js';
import { decodeValueHash, encodeValueHash } from './value-hash.js';

describe('value-hash codec', () => {
  test("a task's output is stored as it always was: null is plain, a string is the whole hash, whatever it spells", () => {
    expect(encodeValueHash({ value: 1 }, 'task')).toBeNull();
    for (const hash of ['sha:abc', 'members:{"object":{}}', 'hash:x', '']) {
      expect(encodeValueHash({ value: 1, hash }, 'task')).toBe(hash);
      expect(decodeValueHash('x', hash, 'task')).toEqual({ value: 'x', hash });
    }
    expect(decodeValueHash({ rows: [1] }, null, 'task')).toEqual({ value: { rows: [1] } });
  });

  test("a container's hashed members are stored as members: + canonical JSON, and read back", () => {
    const value = { value: { b: ['x', 'y'], a: 'raw' }, members: { object: { b: { array: [null, 'hy'] }, a: 'ha' } } };
    const stored = encodeValueHash(value, 'container');
    expect(stored).toBe('members:{"object":{"a":"ha","b":{"array":[null,"hy"]}}}');
    expect(decodeValueHash(value.value, stored, 'container')).toEqual(value);
  });

  test("a container's whole hash (a dynamic returning a hashed result) is a JSON string after the prefix", () => {
    expect(encodeValueHash({ value: 1, hash: 'members:"x"' }, 'container')).toBe('members:"members:\\"x\\""');
    expect(decodeValueHash(1, 'members:"members:\\"x\\""', 'container')).toEqual({ value: 1, hash: 'members:"x"' });
    expect(encodeValueHash({ value: 1 }, 'container')).toBeNull();
    expect(decodeValueHash(1, null, 'container')).toEqual({ value: 1 });
  });

  test('a container entry with a bare hash was written by the old encoding (member digests without field names): corrupt, a miss', () => {
    expect(decodeValueHash({ alpha: 'f' }, 'f2a1c3', 'container')).toEqual({ corrupt: 'a container output hash written before hashed members were recorded' });
  });

  test('members that are not JSON or do not fit the value are a corrupt entry', () => {
    expect(decodeValueHash({ a: 1 }, 'members:{', 'container')).toEqual({ corrupt: 'its hashed members are not JSON' });
    for (const tree of ['null', '5', '{"object":{}}', '{"object":{"b":"h"}}', '{"array":["h"]}', '{"object":{"a":"h"},"array":[]}', '{"object":{"a":5}}']) {
      expect(decodeValueHash({ a: 1 }, `members:${tree}`, 'container')).toEqual({ corrupt: 'its hashed members do not fit its value' });
    }
    expect(decodeValueHash([1, 2], 'members:{"array":["h"]}', 'container')).toEqual({ corrupt: 'its hashed members do not fit its value' });
    expect(decodeValueHash([1, 2], 'members:{"array":[null,null]}', 'container')).toEqual({ corrupt: 'its hashed members do not fit its value' });
    expect(decodeValueHash([1, 2], 'members:{"array":[null,"h"]}', 'container')).toEqual({ value: [1, 2], members: { array: [null, 'h'] } });
  });

  test('a field named __proto__ is an own field of the tree, not a prototype', () => {
    const value = JSON.parse('{"__proto__":"raw"}') as { [key: string]: string };
    const decoded = decodeValueHash(value, 'members:{"object":{"__proto__":"h"}}', 'container');
    expect(decoded).toEqual({ value, members: JSON.parse('{"object":{"__proto__":"h"}}') });
    expect(isCanonicalTree({ object: {} }, value)).toBe(false);
  });
});
