import { describe, expect, it } from 'vitest';
import type { NewCacheEntry } from '../ports/cache-catalog.js';
import type { RunState } from '../state/run-state.js';
import { InMemoryCacheCatalog } from './in-memory-cache-catalog.js';
import { InMemoryRunStore } from './in-memory-run-store.js';

// The port semantics are covered by the contract suites in packages/catalog (memory.test.ts runs
// them against these fakes); this file covers the test hooks only the fakes have.

const entry = (key: string): NewCacheEntry => ({
  key,
  kind: 'output',
  project: 'p',
  domain: 'd',
  task: 't',
  parts: { format: 1, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: {} },
  value: { key },
  valueHash: null,
  runId: 'r',
  nodeId: 'n',
});

describe('InMemoryCacheCatalog test hooks', () => {
  it('failNext rejects the next call of one method only, in order', async () => {
    const catalog = new InMemoryCacheCatalog();
    const first = new Error('first');
    catalog.failNext('put', first);
    catalog.failNext('put');
    await expect(catalog.put([entry('a')])).rejects.toBe(first);
    await expect(catalog.put([entry('a')])).rejects.toThrow('simulated put failure');
    expect((await catalog.lookup('output', ['a'])).hits.size).toBe(0); // failed puts wrote nothing
    await catalog.put([entry('a')]);
    catalog.failNext('lookup');
    await expect(catalog.lookup('output', ['a'])).rejects.toThrow('simulated lookup failure');
    expect((await catalog.lookup('output', ['a'])).hits.size).toBe(1);
  });

  it('corrupt damages an entry so lookups report it instead of serving it', async () => {
    const catalog = new InMemoryCacheCatalog();
    await catalog.put([entry('a'), entry('b')]);
    expect(catalog.corrupt('output', 'a', 'undecodable')).toBe(true);
    expect(catalog.corrupt('output', 'b')).toBe(true);
    expect(catalog.corrupt('future', 'a')).toBe(false);
    const { hits, corrupt } = await catalog.lookup('output', ['a', 'b']);
    expect(hits.size).toBe(0);
    expect(corrupt.get('a')).toMatch(/undecodable/);
    expect(corrupt.get('b')).toMatch(/checksum mismatch/);
  });

  it('stamps createdAt with the injected clock', async () => {
    const at = new Date('2031-05-06T07:08:09.010Z');
    const catalog = new InMemoryCacheCatalog({ clock: { now: () => at } });
    await catalog.put([entry('a')]);
    expect((await catalog.list())[0]?.createdAt).toEqual(at);
  });
});

describe('InMemoryRunStore test hooks', () => {
  it('failNext makes the next save reject without writing', async () => {
    const store = new InMemoryRunStore();
    const createdAt = new Date('2030-01-01T00:00:00.000Z');
    const state: RunState = {
      run: {
        id: 'r1', workflow: 'w', project: 'p', domain: 'd',
        spec: { specVersion: 1, name: 'w', inputs: {}, hashedInputs: [], nodes: [], outputs: {} },
        inputs: {}, options: { overwriteCache: false }, status: 'running', outputs: null, error: null,
        version: 0, createdAt, updatedAt: createdAt, finishedAt: null,
      },
      nodes: {},
    };
    await store.create(state);
    store.failNext('save');
    await expect(store.save({ run: { ...state.run, status: 'failed' }, nodes: [], expectedVersion: 0 })).rejects.toThrow('simulated save failure');
    expect((await store.load('r1'))?.run).toMatchObject({ version: 0, status: 'running' });
    expect(await store.save({ run: { ...state.run, status: 'failed' }, nodes: [], expectedVersion: 0 })).toBe(true);
  });
});
