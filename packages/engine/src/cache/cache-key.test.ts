import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, test } from 'vitest';
import type { Json } from '../json.js';
import type { TaskSignature } from '../spec/workflow-spec.js';
import { canonicalJson, sha256Hex } from './canonical-hash.js';
import { computeCacheKey, diffKeyParts, inputDigest, keyOfParts, partsHashTo, shortKey, type CacheKeyParts, type CacheKeyRequest } from './cache-key.js';

const numbers = { type: 'array', items: { type: 'number' } };

const cleanSignature: TaskSignature = { inputs: { rows: numbers }, output: numbers, outputHashed: false };

function request(overrides: Partial<CacheKeyRequest> = {}): CacheKeyRequest {
  return {
    project: 'demo',
    domain: 'dev',
    task: 'etl.clean',
    signature: cleanSignature,
    cache: { version: '1', ignoreInputs: [] },
    inputs: { rows: { value: [1, -2, 3] } },
    ...overrides,
  };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/*
 * GOLDEN KEYS. Every entry in every catalog is addressed by these bytes: if one of these assertions
 * fails, existing caches silently become cold for every user. Changing an expected value here must
 * be a deliberate change of the key encoding, shipped with a bump of `CacheKeyParts.format` and a
 * release note, never a "fix the test" edit.
 */
describe('golden keys (must never change between releases)', () => {
  test('a plain task with one array input', () => {
    const { key, parts } = computeCacheKey(request());
    expect(key).toBe('9ecec96ca9bc83c9b79c475777c550a516b2dd0772c1f96b4e75efe3019d5021');
    expect(parts).toEqual({
      format: 1,
      project: 'demo',
      domain: 'dev',
      task: 'etl.clean',
      signature: '05e450b99bbdad3d651166b71cc9eba97b0d9c90ad85203dab891aa4dedf40b0',
      version: '1',
      inputs: { rows: 'sha256:291bbc895d1412460556618bc33cfcc323cac88cbfae4a2062ccfbd2afb51ec7' },
    });
  });

  test('the encoding is SHA-256 over JCS of the parts, spelled out by hand', () => {
    // Independent of the implementation: the documented encoding, written as literal text.
    const signature = sha256('{"inputs":{"rows":{"items":{"type":"number"},"type":"array"}},"output":{"items":{"type":"number"},"type":"array"},"outputHashed":false}');
    const rows = sha256('[1,-2,3]');
    const text = `{"domain":"dev","format":1,"inputs":{"rows":"sha256:${rows}"},"project":"demo","signature":"${signature}","task":"etl.clean","version":"1"}`;
    expect(computeCacheKey(request()).key).toBe(sha256(text));
  });

  test('another domain, task and version', () => {
    const { key } = computeCacheKey(
      request({
        domain: 'prod',
        task: 'etl.total',
        signature: { inputs: { rows: numbers }, output: { type: 'number' }, outputHashed: false },
        cache: { version: 'v2.1', ignoreInputs: [] },
        inputs: { rows: { value: [1, 3] } },
      }),
    );
    expect(key).toBe('7f83d893d9bd5837346eef2f390f9e07a3d27f349e775bfdee681466fc30223d');
  });

  test('a hashWith input, an ignored input and a hashed output', () => {
    const { key, parts } = computeCacheKey({
      project: 'ml',
      domain: 'staging',
      task: 'ml.train',
      signature: {
        inputs: { data: { type: 'string' }, seed: { type: 'integer' }, verbose: { type: 'boolean' } },
        output: { type: 'object', properties: { model: { type: 'string' } }, required: ['model'] },
        outputHashed: true,
      },
      cache: { version: '2024-06-01', ignoreInputs: ['verbose'] },
      inputs: { data: { value: 's3://bucket/data.csv', hash: 'abc123' }, seed: { value: 42 }, verbose: { value: true } },
    });
    expect(key).toBe('435d9f54ba373473935301fe2ae450b38a38dea33c557a95855510485119202e');
    expect(parts.inputs).toEqual({ data: 'hash:abc123', seed: 'sha256:73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049' });
  });

  test('a task with no inputs', () => {
    const { key } = computeCacheKey(
      request({ task: 'noop', signature: { inputs: {}, output: { type: 'null' }, outputHashed: false }, inputs: {} }),
    );
    expect(key).toBe('5d622fed23829d76bf8adaddb2f822cebc06a8a823e061d83e8df2f4e9b2366b');
  });
});

describe('golden keys of composite bindings with hashed members (format 1, `tree:` digests)', () => {
  // An object binding `{ alpha: f, n: 1 }` (f a hashWith output) and an array binding `[f, 2, g]`.
  const signature: TaskSignature = { inputs: { files: { type: 'object' }, xs: { type: 'array' } }, output: { type: 'number' }, outputHashed: false };
  const inputs = {
    files: { value: { n: 1, alpha: 'raw bytes of f' }, members: { object: { alpha: 'hf' } } },
    xs: { value: ['raw f', 2, 'raw g'], members: { array: ['hf', null, 'hg'] } },
  };

  test('the key and its parts', () => {
    const { key, parts } = computeCacheKey(request({ task: 'io.names', signature, inputs }));
    expect(parts.inputs).toEqual({
      files: 'tree:15c90fe65e6f3c4410ac10aa4b58da48087f9d686893aeb2125b4862548e644b',
      xs: 'tree:dd2bd856fab60ac7b106d2c85bfa8d27b64c2f4e83007f86f10045fa0870914e',
    });
    expect(key).toBe('1553dc0c4a7f1ab7390039fa8abbc2ac0f37fb1d1fe51b7e2190c5b7820d2c16');
  });

  test('the tagged encoding, spelled out by hand', () => {
    // h: a hashed member by its hash; v: a plain subtree by its value; o / a: an object / array of these.
    expect(inputDigest(inputs.files)).toBe(`tree:${sha256('["o",{"alpha":["h","hf"],"n":["v",1]}]')}`);
    expect(inputDigest(inputs.xs)).toBe(`tree:${sha256('["a",[["h","hf"],["v",2],["h","hg"]]]')}`);
    const nested = { value: { outer: { inner: [1, 'x'] }, plain: { deep: true } }, members: { object: { outer: { object: { inner: { array: [null, 'hx'] } } } } } };
    expect(inputDigest(nested)).toBe(`tree:${sha256('["o",{"outer":["o",{"inner":["a",[["v",1],["h","hx"]]]}],"plain":["v",{"deep":true}]}]')}`);
  });
});

describe('computeCacheKey', () => {
  const base = computeCacheKey(request()).key;

  test('is deterministic', () => {
    expect(computeCacheKey(request()).key).toBe(base);
  });

  test('input key order (of the inputs and inside values) does not change the key', () => {
    const signature: TaskSignature = { inputs: { a: { type: 'object' }, b: { type: 'number' } }, output: { type: 'number' }, outputHashed: false };
    const one = computeCacheKey(request({ signature, inputs: { a: { value: { x: 1, y: [1, { p: 1, q: 2 }] } }, b: { value: 2 } } }));
    const two = computeCacheKey(request({ signature, inputs: { b: { value: 2 }, a: { value: { y: [1, { q: 2, p: 1 }], x: 1 } } } }));
    expect(two.key).toBe(one.key);
  });

  test('array order does change the key', () => {
    expect(computeCacheKey(request({ inputs: { rows: { value: [3, -2, 1] } } })).key).not.toBe(base);
  });

  test('project and domain change the key (entries are never shared across them)', () => {
    expect(computeCacheKey(request({ project: 'other' })).key).not.toBe(base);
    expect(computeCacheKey(request({ domain: 'prod' })).key).not.toBe(base);
  });

  test('the task name changes the key', () => {
    expect(computeCacheKey(request({ task: 'etl.clean2' })).key).not.toBe(base);
  });

  test('cache.version changes the key', () => {
    expect(computeCacheKey(request({ cache: { version: '2', ignoreInputs: [] } })).key).not.toBe(base);
  });

  test('a signature change (input schema, output schema or outputHashed) changes the key', () => {
    const inputSchema = computeCacheKey(request({ signature: { ...cleanSignature, inputs: { rows: { type: 'array', items: { type: 'integer' } } } } }));
    const outputSchema = computeCacheKey(request({ signature: { ...cleanSignature, output: { type: 'array', items: { type: 'string' } } } }));
    const hashed = computeCacheKey(request({ signature: { ...cleanSignature, outputHashed: true } }));
    const keys = new Set([base, inputSchema.key, outputSchema.key, hashed.key]);
    expect(keys.size).toBe(4);
    expect(inputSchema.parts.inputs).toEqual(computeCacheKey(request()).parts.inputs);
  });

  test('input values change the key', () => {
    expect(computeCacheKey(request({ inputs: { rows: { value: [1, -2, 4] } } })).key).not.toBe(base);
  });

  test('ignoreInputs removes an input from the key', () => {
    const signature: TaskSignature = { inputs: { rows: numbers, verbose: { type: 'boolean' } }, output: numbers, outputHashed: false };
    const cache = { version: '1', ignoreInputs: ['verbose'] };
    const on = computeCacheKey(request({ signature, cache, inputs: { rows: { value: [1] }, verbose: { value: true } } }));
    const off = computeCacheKey(request({ signature, cache, inputs: { rows: { value: [1] }, verbose: { value: false } } }));
    expect(off.key).toBe(on.key);
    expect(on.parts.inputs).toEqual({ rows: inputDigest({ value: [1] }) });
    // Without ignoreInputs the same two requests differ.
    const noIgnore = { version: '1', ignoreInputs: [] };
    expect(computeCacheKey(request({ signature, cache: noIgnore, inputs: { rows: { value: [1] }, verbose: { value: true } } })).key).not.toBe(
      computeCacheKey(request({ signature, cache: noIgnore, inputs: { rows: { value: [1] }, verbose: { value: false } } })).key,
    );
  });

  test('a hash on a NodeValue replaces the digest of the value', () => {
    const a = computeCacheKey(request({ inputs: { rows: { value: [1, 2, 3], hash: 'content-1' } } }));
    const b = computeCacheKey(request({ inputs: { rows: { value: [9, 9, 9, 9], hash: 'content-1' } } }));
    const c = computeCacheKey(request({ inputs: { rows: { value: [1, 2, 3], hash: 'content-2' } } }));
    expect(b.key).toBe(a.key);
    expect(c.key).not.toBe(a.key);
    expect(a.parts.inputs['rows']).toBe('hash:content-1');
    // A hash never collides with a value digest of the same text.
    expect(computeCacheKey(request({ inputs: { rows: { value: [1, 2, 3] } } })).key).not.toBe(a.key);
  });

  test('inputDigest prefixes say where a digest came from', () => {
    expect(inputDigest({ value: 'x' })).toBe(`sha256:${sha256('"x"')}`);
    expect(inputDigest({ value: 'x', hash: 'h' })).toBe('hash:h');
  });

  test('shortKey prints the first ten characters, or - for no key', () => {
    expect(shortKey(base)).toBe(base.slice(0, 10));
    expect(shortKey(base)).toHaveLength(10);
    expect(shortKey(null)).toBe('-');
  });
});

describe('diffKeyParts', () => {
  test('no differences for equal parts', () => {
    const { parts } = computeCacheKey(request());
    expect(diffKeyParts(parts, computeCacheKey(request()).parts)).toEqual([]);
  });

  test('names each differing part, inputs by name, in a stable order', () => {
    const signature: TaskSignature = { inputs: { rows: numbers, b: { type: 'number' }, a: { type: 'number' } }, output: numbers, outputHashed: false };
    const wanted = computeCacheKey(request({ signature, inputs: { rows: { value: [1] }, a: { value: 1 }, b: { value: 2 } } })).parts;
    const found = computeCacheKey(
      request({
        domain: 'prod',
        signature: { ...signature, output: { type: 'number' } },
        cache: { version: '2', ignoreInputs: [] },
        inputs: { rows: { value: [1] }, a: { value: 10 }, b: { value: 20 } },
      }),
    ).parts;
    expect(diffKeyParts(wanted, found)).toEqual(['domain', 'signature', 'version', 'inputs.a', 'inputs.b']);
  });

  test('an input present on one side only is a difference', () => {
    const signature: TaskSignature = { inputs: { rows: numbers, extra: { type: 'number' } }, output: numbers, outputHashed: false };
    const wanted = computeCacheKey(request({ signature, inputs: { rows: { value: [1] }, extra: { value: 1 } } })).parts;
    const found = computeCacheKey(request({ signature, cache: { version: '1', ignoreInputs: ['extra'] }, inputs: { rows: { value: [1] }, extra: { value: 1 } } })).parts;
    expect(diffKeyParts(wanted, found)).toEqual(['inputs.extra']);
  });

  test('project and task', () => {
    const wanted = computeCacheKey(request()).parts;
    const found = computeCacheKey(request({ project: 'p2', task: 't2' })).parts;
    expect(diffKeyParts(wanted, found)).toEqual(['project', 'task']);
  });
});

describe('keyOfParts, written out for the parts shape', () => {
  it('gives exactly the key of the general canonical encoding, for any strings and input names', () => {
    const text = fc.string({ unit: 'binary' });
    fc.assert(
      fc.property(text, text, text, text, text, fc.dictionary(text, text), (project, domain, task, signature, version, inputs) => {
        const parts: CacheKeyParts = { format: 1, project, domain, task, signature, version, inputs };
        expect(keyOfParts(parts)).toBe(sha256Hex(canonicalJson({ ...parts })));
      }),
      { numRuns: 500 },
    );
  });
});

describe('partsHashTo: stored parts proven against the parts a key was computed from', () => {
  // The answer must always be the hash's: equality with derived parts is a shortcut, never a rule.
  const byHashing = (found: unknown, key: string) => {
    try {
      return keyOfParts(found as CacheKeyParts) === key;
    } catch {
      return false;
    }
  };
  const text = fc.string({ unit: 'binary' });
  const member = fc.constantFrom('format', 'project', 'domain', 'task', 'signature', 'version', 'inputs', 'extra');
  // A copy of the parts as a catalog would give them back, then maybe damaged: a member changed,
  // dropped, added, given another type; an input changed, dropped or added; or the members reordered.
  const damage = fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.record({ kind: fc.constant('set' as const), member, value: fc.oneof(text, fc.integer(), fc.constant(null), fc.dictionary(text, text)) }),
    fc.record({ kind: fc.constant('drop' as const), member }),
    fc.record({ kind: fc.constant('input' as const), name: text, value: fc.option(fc.oneof(text, fc.integer()), { nil: undefined }) }),
    fc.constant({ kind: 'reorder' as const }),
    fc.constant({ kind: 'array' as const }),
  );
  type Damage = { kind: 'none' } | { kind: 'set'; member: string; value: unknown } | { kind: 'drop'; member: string } | { kind: 'input'; name: string; value: unknown } | { kind: 'reorder' } | { kind: 'array' };
  function damaged(parts: CacheKeyParts, d: Damage): unknown {
    const copy = JSON.parse(JSON.stringify(parts)) as Record<string, unknown>;
    switch (d.kind) {
      case 'none':
        return copy;
      case 'set':
        copy[d.member] = d.value;
        return copy;
      case 'drop':
        delete copy[d.member];
        return copy;
      case 'input': {
        const inputs = copy['inputs'] as Record<string, unknown>;
        if (d.value === undefined) delete inputs[d.name];
        else inputs[d.name] = d.value;
        return copy;
      }
      case 'reorder':
        return Object.fromEntries(Object.entries(copy).reverse());
      case 'array':
        return [copy];
    }
  }

  it('answers as hashing does, for derived parts and any damage to the stored copy', () => {
    fc.assert(
      fc.property(text, text, text, fc.dictionary(text, fc.jsonValue(), { maxKeys: 4 }), damage, fc.boolean(), (project, task, version, values, d, derivedWanted) => {
        const inputs = Object.fromEntries(Object.entries(values).map(([name, value]) => [name, { value: value as Json }]));
        const { key, parts } = computeCacheKey(request({ project, task, cache: { version, ignoreInputs: [] }, inputs }));
        // Not derived here: a copy read back, as a node loaded from the store has.
        const wanted = derivedWanted ? parts : (JSON.parse(JSON.stringify(parts)) as CacheKeyParts);
        const found = damaged(parts, d);
        expect(partsHashTo(found, key, wanted)).toBe(byHashing(found, key));
        expect(partsHashTo(found, key)).toBe(byHashing(found, key));
      }),
      { numRuns: 1000 },
    );
  });

  it('derived parts do not vouch for another key', () => {
    const { parts } = computeCacheKey(request());
    const other = computeCacheKey(request({ task: 'etl.other' }));
    expect(partsHashTo(JSON.parse(JSON.stringify(parts)), other.key, parts)).toBe(false);
    expect(partsHashTo(JSON.parse(JSON.stringify(other.parts)), other.key, parts)).toBe(true);
  });

  it('parts that cannot be encoded hash to nothing', () => {
    const { key, parts } = computeCacheKey(request());
    expect(partsHashTo({ ...parts, version: Number.NaN }, key, parts)).toBe(false);
    expect(partsHashTo(undefined, key, parts)).toBe(false);
  });
});
