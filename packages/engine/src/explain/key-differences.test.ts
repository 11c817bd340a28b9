import { describe, expect, test } from 'vitest';
import type { CacheKeyParts } from '../cache/cache-key.js';
import type { TaskSignature } from '../spec/workflow-spec.js';
import { keyDifferences, signatureDifferences, SHOWN_VALUE_LIMIT } from './key-differences.js';

const parts = (patch: Partial<CacheKeyParts> = {}): CacheKeyParts => ({ format: 1, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: { rows: 'sha256:1' }, ...patch });

describe('keyDifferences', () => {
  test('an input added or removed counts, with the value on the side that has it', () => {
    const now = parts({ inputs: { rows: 'sha256:1', extra: 'sha256:2' } });
    expect(keyDifferences(now, parts(), { now: { rows: { value: 1 }, extra: { value: 'x' } }, was: { rows: { value: 1 } } })).toEqual([{ part: 'input', name: 'extra', change: 'added', now: 'x' }]);
    expect(keyDifferences(parts(), now, { now: { rows: { value: 1 } }, was: { extra: { value: 'x' } } })).toEqual([{ part: 'input', name: 'extra', change: 'removed', was: 'x' }]);
  });

  test('a value too large to show is named without it', () => {
    const big = 'x'.repeat(SHOWN_VALUE_LIMIT);
    expect(keyDifferences(parts({ inputs: { rows: 'sha256:2' } }), parts(), { now: { rows: { value: big } }, was: { rows: { value: 'small' } } })).toEqual([{ part: 'input', name: 'rows', change: 'changed', was: 'small' }]);
  });

  test('parts of a malformed entry (an older release, a hand-edited row) read as having no inputs, never crash', () => {
    const broken = { ...parts(), inputs: null } as unknown as CacheKeyParts;
    expect(keyDifferences(parts(), broken)).toEqual([{ part: 'input', name: 'rows', change: 'added' }]);
    expect(keyDifferences(parts(), { ...parts(), inputs: ['a'] } as unknown as CacheKeyParts)).toEqual([{ part: 'input', name: 'rows', change: 'added' }]);
  });
});

describe('signatureDifferences', () => {
  const signature = (patch: Partial<TaskSignature> = {}): TaskSignature => ({ inputs: { rows: { type: 'array', items: { type: 'number' } } }, output: { type: 'number' }, outputHashed: false, ...patch });

  test('names each changed input schema, the output schema, hashWith, optional inputs and children; key order is no change', () => {
    expect(signatureDifferences(signature({ inputs: { rows: { items: { type: 'number' }, type: 'array' } } }), signature())).toEqual([]);
    const now = signature({ inputs: { rows: { type: 'array' }, limit: { type: 'integer' } }, output: { type: 'string' }, outputHashed: true, optionalInputs: ['limit'], children: 'c2' });
    expect(signatureDifferences(now, signature({ children: 'c1' }))).toEqual([
      { part: 'signature', name: 'inputs.limit', change: 'added', now: { type: 'integer' } },
      { part: 'signature', name: 'inputs.rows', change: 'changed', was: { type: 'array', items: { type: 'number' } }, now: { type: 'array' } },
      { part: 'signature', name: 'output', change: 'changed', was: { type: 'number' }, now: { type: 'string' } },
      { part: 'signature', name: 'outputHashed', change: 'changed', was: false, now: true },
      { part: 'signature', name: 'optionalInputs', change: 'changed', was: [], now: ['limit'] },
      { part: 'signature', name: 'children', change: 'changed', was: 'c1', now: 'c2' },
    ]);
  });
});
