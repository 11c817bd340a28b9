import { describe, expect, test } from 'vitest';
import type { Json } from '../json.js';
import { inputDigest } from './cache-key.js';
import { arrayOf, objectOf, taggedEncoding } from './hash-tree.js';

describe('hash trees', () => {
  test('composites record only the members that are hashed; none hashed, no tree', () => {
    expect(arrayOf([{ value: 1 }, { value: 'x', hash: 'h' }])).toEqual({ value: [1, 'x'], members: { array: [null, 'h'] } });
    expect(arrayOf([{ value: 1 }, { value: 2 }])).toEqual({ value: [1, 2] });
    const nested = objectOf([['plain', { value: 1 }], ['inner', arrayOf([{ value: 'x', hash: 'h' }])]]);
    expect(nested).toEqual({ value: { plain: 1, inner: ['x'] }, members: { object: { inner: { array: ['h'] } } } });
    expect(objectOf([['a', { value: 1 }]])).toEqual({ value: { a: 1 } });
  });

  test('a tree with no hash anywhere encodes as plain data (null), however it is spelled', () => {
    expect(taggedEncoding({ a: 1 }, { object: { a: { object: {} } } })).toBeNull();
    expect(taggedEncoding([1], { array: [null] })).toBeNull();
  });

  test('where a tree does not fit its value, that part is plain data, and nothing throws', () => {
    const plain = (value: Json) => inputDigest({ value });
    expect(inputDigest({ value: 'not an object', members: { object: { a: 'h' } } })).toBe(plain('not an object'));
    expect(inputDigest({ value: [1], members: { array: [null, 'h'] } })).toBe(plain([1]));
    expect(inputDigest({ value: { b: 1 }, members: { object: { a: 'h' } } })).toBe(plain({ b: 1 }));
    expect(inputDigest({ value: [1, 2], members: { array: ['h'] } })).toMatch(/^tree:/);
  });
});
