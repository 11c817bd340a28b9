import type { CacheCatalog, CacheEntryDamage, CacheEntryKind, CacheKeyParts, Json, NewCacheEntry } from '@memoflow/engine';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixturePerSuite } from './fixture-per-suite.js';
import { FakeClock } from './fake-clock.js';
import { jsonValue, sameJson } from './json-arbitrary.js';


/** What the contract needs from one implementation. */
export interface CacheCatalogFixture {
  catalog: CacheCatalog;
  /**
   * Damages a stored entry behind the port's back (SQL for the real back ends, a test hook for
   * the fake): `tampered` changes the value but not its checksum; `undecodable` stores a value
   * that cannot be decoded to a JSON value; `value-hash` changes its valueHash; `legacy` gives it
   * the value-only checksum of the previous release; `{ copyFrom }` copies another entry's value,
   * valueHash and checksum over it.
   */
  corrupt(kind: CacheEntryKind, key: string, how: CacheEntryDamage): Promise<void>;
  /** Empties the catalog before each test (the contract reads `catalog` again afterwards, so a fixture may swap in a fresh instance). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The CacheCatalog contract (ports/cache-catalog.ts). Every implementation runs it; the in-memory
 * one is thereby a verified fake. `open` gets the clock the catalog must stamp `createdAt` with.
 */
export function describeCacheCatalogContract(name: string, open: (clock: FakeClock) => Promise<CacheCatalogFixture>): void {
  describe(`CacheCatalog contract: ${name}`, () => {
    const clock = new FakeClock();
    let catalog: CacheCatalog;
    const fixture = fixturePerSuite(() => open(clock), (opened) => {
      catalog = opened.catalog;
    });

    it('misses on an empty catalog and on an empty key list', async () => {
      const result = await catalog.lookup('output', ['nope']);
      expect(result.hits.size).toBe(0);
      expect(result.corrupt.size).toBe(0);
      const empty = await catalog.lookup('output', []);
      expect(empty.hits.size).toBe(0);
      await catalog.put([]);
      expect(await catalog.list()).toEqual([]);
    });

    it('hits with every field as written, createdAt from the clock', async () => {
      const now = clock.advance(1000);
      const written = entry('k1', { value: { rows: [1, 2, 3], nested: { a: null, b: 'x' } }, valueHash: 'h-123' });
      await catalog.put([written]);
      const { hits, corrupt } = await catalog.lookup('output', ['k1']);
      expect(corrupt.size).toBe(0);
      const hit = hits.get('k1');
      expect(hit).toEqual({ ...written, createdAt: now });
      expect(hit?.createdAt).toBeInstanceOf(Date);
      expect(hit?.createdAt.getTime()).toBe(now.getTime());
    });

    it('round-trips JSON values exactly, including strings that look like JSON', async () => {
      const values: Json[] = [
        null, true, false, 0, -5, 0.1 + 0.2, 1e21, 1e-7, Number.MAX_SAFE_INTEGER, -1.5e300,
        '', '123', 'true', 'null', '"quoted"', '[1]', '{"a":1}', 'unicode: é ✓ 😀 \n\t\\ \u0001',
        [], {}, [null, [[]], { '': 1 }], { 'key with spaces': { deep: [1, 'two', { three: 3 }] } },
      ];
      const entries = values.map((value, i) => entry(`json-${i}`, { value }));
      await catalog.put(entries);
      const { hits, corrupt } = await catalog.lookup('output', entries.map((e) => e.key));
      expect(corrupt.size).toBe(0);
      values.forEach((value, i) => {
        const hit = hits.get(`json-${i}`);
        expect(hit, `value #${i}`).toBeDefined();
        expect(hit?.value, `value #${i}`).toStrictEqual(value);
      });
    });

    it('rejects a batch holding a string the stores refuse (U+0000, lone surrogate) and writes none of it', async () => {
      for (const bad of ['nul \u0000 inside', 'lone \ud800 surrogate']) {
        await expect(catalog.put([entry('fine'), entry('bad', { value: { text: bad } })])).rejects.toThrow();
        await expect(catalog.put([entry('bad-key', { value: { [bad]: 1 } })])).rejects.toThrow();
      }
      expect(await catalog.list()).toEqual([]);
      await catalog.put([entry('pair', { value: 'astral 😀 is fine' })]);
      expect((await catalog.lookup('output', ['pair'])).hits.get('pair')?.value).toBe('astral 😀 is fine');
    });

    it('round-trips object key order exactly: nested, inside arrays, in values and key parts', async () => {
      // jsonb would sort these keys (shorter first, then bytewise); the stores must not.
      const values: Json[] = [
        { rmse: 0.12, r2: 0.98, n: 1000 },
        { zeta: { yak: 1, xi: [{ b: 2, a: 1, ccc: { z: null, a: [] } }, [{ d: 'x', c: 'y' }]] }, alpha: 'first', bb: true, a: 0 },
        [{ zz: 1, aa: 2, m: { y: 1, x: 2 } }, 'text', [{ q: 1, p: 2 }]],
        { 'ü-key': 1, 'a-key': 2, '': 3, 'Z': 4 },
      ];
      const written = values.map((value, i) => {
        const e = entry(`order-${i}`, { value });
        e.parts.inputs = { zeta: 'sha256:z', alpha: 'sha256:a', mid: 'sha256:m' };
        return e;
      });
      await catalog.put(written);
      const { hits, corrupt } = await catalog.lookup('output', written.map((e) => e.key));
      expect(corrupt.size).toBe(0);
      written.forEach((e, i) => {
        const hit = hits.get(e.key);
        expect(JSON.stringify(hit?.value), `value #${i}`).toBe(JSON.stringify(values[i]));
        expect(JSON.stringify(hit?.parts), `parts #${i}`).toBe(JSON.stringify(e.parts));
      });
      expect(JSON.stringify((await catalog.list({ limit: 1 }))[0]?.parts)).toBe(JSON.stringify(written[0]?.parts));
      // The upsert path (ON CONFLICT) keeps the order too.
      const replaced = { wins: [{ y: 1, x: 2 }], also: { k: 1, j: 2 } };
      await catalog.put([entry('order-0', { value: replaced })]);
      const again = (await catalog.lookup('output', ['order-0'])).hits.get('order-0');
      expect(JSON.stringify(again?.value)).toBe(JSON.stringify(replaced));
    });

    it('looks up a batch in one call: present keys hit, absent ones are simply missing', async () => {
      await catalog.put([entry('a'), entry('b'), entry('c')]);
      const { hits, corrupt } = await catalog.lookup('output', ['a', 'x', 'b', 'y', 'c', 'a']);
      expect([...hits.keys()].sort()).toEqual(['a', 'b', 'c']);
      expect(corrupt.size).toBe(0);
    });

    it('put upserts: a newer entry replaces the older and resets createdAt', async () => {
      clock.advance(1000);
      await catalog.put([entry('u', { value: 'old', runId: 'run-1', nodeId: 'n1', valueHash: 'old-hash' })]);
      const later = clock.advance(60_000);
      const newer = entry('u', { value: { fresh: true }, runId: 'run-2', nodeId: 'n2', valueHash: null, task: 'etl.other' });
      await catalog.put([newer]);
      const { hits } = await catalog.lookup('output', ['u']);
      expect(hits.get('u')).toEqual({ ...newer, createdAt: later });
      expect(await catalog.list()).toHaveLength(1);
    });

    it('keeps the last of two entries with the same key and kind in one put', async () => {
      await catalog.put([entry('dup', { value: 1 }), entry('dup', { value: 2 })]);
      const { hits } = await catalog.lookup('output', ['dup']);
      expect(hits.get('dup')?.value).toBe(2);
    });

    it('keeps kinds separate: the same key as output and as future', async () => {
      await catalog.put([entry('same', { kind: 'output', value: 'an output' })]);
      expect((await catalog.lookup('future', ['same'])).hits.size).toBe(0);
      await catalog.put([entry('same', { kind: 'future', value: { nodes: [] } })]);
      expect((await catalog.lookup('output', ['same'])).hits.get('same')?.value).toBe('an output');
      expect((await catalog.lookup('future', ['same'])).hits.get('same')?.value).toEqual({ nodes: [] });
      expect(await catalog.evict({ keys: ['same'] })).toBe(2);
    });

    it('copies values in and out: callers cannot change what is stored', async () => {
      const written = entry('copy', { value: { list: [1, 2] } });
      await catalog.put([written]);
      (written.value as { list: number[] }).list.push(3);
      written.parts.inputs['injected'] = 'x';
      const first = (await catalog.lookup('output', ['copy'])).hits.get('copy');
      expect(first?.value).toEqual({ list: [1, 2] });
      expect(first?.parts.inputs['injected']).toBeUndefined();
      (first?.value as { list: number[] }).list.push(4);
      first?.createdAt.setTime(0);
      const second = (await catalog.lookup('output', ['copy'])).hits.get('copy');
      expect(second?.value).toEqual({ list: [1, 2] });
      expect(second?.createdAt.getTime()).not.toBe(0);
    });

    it('reports a tampered or undecodable entry in `corrupt`, never throws, still serves the rest', async () => {
      await catalog.put([entry('good'), entry('tampered'), entry('undecodable')]);
      await fixture().corrupt('output', 'tampered', 'tampered');
      await fixture().corrupt('output', 'undecodable', 'undecodable');
      const { hits, corrupt } = await catalog.lookup('output', ['good', 'tampered', 'undecodable']);
      expect([...hits.keys()]).toEqual(['good']);
      expect([...corrupt.keys()].sort()).toEqual(['tampered', 'undecodable']);
      for (const reason of corrupt.values()) expect(reason).toMatch(/\w/);
      // A fresh put over a corrupt entry repairs it.
      await catalog.put([entry('tampered', { value: 'repaired' })]);
      expect((await catalog.lookup('output', ['tampered'])).hits.get('tampered')?.value).toBe('repaired');
    });

    it('binds the checksum to the key: value and checksum copied from another key of the same task are corrupt', async () => {
      await catalog.put([entry('x1', { value: { result: 1 }, valueHash: 'h1' }), entry('x2', { value: { result: 2 } })]);
      await fixture().corrupt('output', 'x2', { copyFrom: 'x1' });
      const { hits, corrupt } = await catalog.lookup('output', ['x1', 'x2']);
      expect([...hits.keys()]).toEqual(['x1']);
      expect(corrupt.get('x2')).toMatch(/checksum mismatch/);
      await catalog.put([entry('x2', { value: { result: 2 } })]);
      expect((await catalog.lookup('output', ['x2'])).hits.get('x2')?.value).toEqual({ result: 2 });
    });

    it('binds the checksum to the valueHash (it feeds downstream keys)', async () => {
      await catalog.put([entry('h', { valueHash: 'real' })]);
      await fixture().corrupt('output', 'h', 'value-hash');
      expect((await catalog.lookup('output', ['h'])).corrupt.get('h')).toMatch(/checksum mismatch/);
    });

    it('reports an entry of the previous release (value-only checksum) as corrupt, saying so; a put rewrites it', async () => {
      await catalog.put([entry('old', { value: [1, 2] })]);
      await fixture().corrupt('output', 'old', 'legacy');
      const { hits, corrupt } = await catalog.lookup('output', ['old']);
      expect(hits.size).toBe(0);
      expect(corrupt.get('old')).toMatch(/written by an earlier release, not bound to its key/);
      await catalog.put([entry('old', { value: [1, 2] })]);
      expect((await catalog.lookup('output', ['old'])).hits.get('old')?.value).toEqual([1, 2]);
    });

    it('round-trips arbitrary JSON values byte for byte (property, batched)', async () => {
      let values = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(jsonValue, { minLength: 1, maxLength: 25 }), async (batch) => {
          const written = batch.map((value, i) => entry(`prop-${i}`, { value, valueHash: i % 2 === 0 ? null : `h-${i}` }));
          await catalog.put(written);
          const { hits, corrupt } = await catalog.lookup('output', written.map((e) => e.key));
          expect(corrupt.size).toBe(0);
          for (const e of written) {
            const hit = hits.get(e.key);
            if (!sameJson(hit?.value, e.value)) throw new Error(`${JSON.stringify(e.value)} came back as ${JSON.stringify(hit?.value)}`);
            expect(hit?.valueHash).toBe(e.valueHash);
          }
          values += batch.length;
        }),
        { numRuns: PROPERTY_RUNS },
      );
      expect(values).toBeGreaterThan(PROPERTY_RUNS);
    });

    it('lists summaries newest first (ties by key), without values, with filters and a limit', async () => {
      const t1 = clock.advance(1000);
      await catalog.put([entry('l-b', { task: 'etl.a', runId: 'r1' }), entry('l-a', { task: 'etl.a', runId: 'r1' })]);
      const t2 = clock.advance(1000);
      await catalog.put([entry('l-c', { task: 'etl.b', runId: 'r2', kind: 'future' })]);
      const t3 = clock.advance(1000);
      await catalog.put([entry('l-d', { task: 'etl.a', runId: 'r2', project: 'other' })]);
      await catalog.put([entry('l-e', { task: 'etl.a', runId: 'r3', domain: 'prod' })]);

      const all = await catalog.list();
      expect(all.map((e) => e.key)).toEqual(['l-d', 'l-e', 'l-c', 'l-a', 'l-b']);
      expect(all.map((e) => e.createdAt.getTime())).toEqual([t3, t3, t2, t1, t1].map((d) => d.getTime()));
      expect(all[0]).not.toHaveProperty('value');
      const { value: _value, ...summary } = entry('l-d', { task: 'etl.a', runId: 'r2', project: 'other' });
      expect(all[0]).toEqual({ ...summary, createdAt: t3 });

      expect((await catalog.list({ task: 'etl.a' })).map((e) => e.key)).toEqual(['l-d', 'l-e', 'l-a', 'l-b']);
      expect((await catalog.list({ runId: 'r2' })).map((e) => e.key)).toEqual(['l-d', 'l-c']);
      expect((await catalog.list({ kind: 'future' })).map((e) => e.key)).toEqual(['l-c']);
      expect((await catalog.list({ kind: 'output', project: 'demo', domain: 'dev' })).map((e) => e.key)).toEqual(['l-a', 'l-b']);
      expect((await catalog.list({ project: 'other' })).map((e) => e.key)).toEqual(['l-d']);
      expect((await catalog.list({ domain: 'prod' })).map((e) => e.key)).toEqual(['l-e']);
      expect((await catalog.list({ limit: 2 })).map((e) => e.key)).toEqual(['l-d', 'l-e']);
      expect(await catalog.list({ limit: 0 })).toEqual([]);
      expect(await catalog.list({ task: 'etl.none' })).toEqual([]);
    });

    it('evicts by run, task, project, domain and keys, counting what it removed', async () => {
      await catalog.put([
        entry('e1', { runId: 'r1', task: 'etl.a' }),
        entry('e2', { runId: 'r1', task: 'etl.b' }),
        entry('e3', { runId: 'r2', task: 'etl.a' }),
        entry('e4', { runId: 'r2', task: 'etl.a', kind: 'future' }),
        entry('e5', { runId: 'r3', task: 'etl.c', project: 'p2' }),
        entry('e6', { runId: 'r3', task: 'etl.c', domain: 'prod' }),
      ]);
      expect(await catalog.evict({ runId: 'none' })).toBe(0);
      expect(await catalog.evict({ runId: 'r1', task: 'etl.b' })).toBe(1);
      expect(await keys()).toEqual(['e1', 'e3', 'e4', 'e5', 'e6']);
      expect(await catalog.evict({ runId: 'r1' })).toBe(1);
      expect(await catalog.evict({ task: 'etl.a' })).toBe(2);
      expect(await catalog.evict({ keys: [] })).toBe(0);
      expect(await catalog.evict({ project: 'p2' })).toBe(1);
      expect(await catalog.evict({ domain: 'prod', keys: ['e6', 'zzz'] })).toBe(1);
      expect(await keys()).toEqual([]);
    });

    it("evicts one kind only: a dynamic node's output without its future", async () => {
      await catalog.put([entry('dyn', { kind: 'output', value: [1] }), entry('dyn', { kind: 'future', value: { nodes: [] } })]);
      expect(await catalog.evict({ keys: ['dyn'], kind: 'output' })).toBe(1);
      expect((await catalog.lookup('output', ['dyn'])).hits.size).toBe(0);
      expect((await catalog.lookup('future', ['dyn'])).hits.get('dyn')?.value).toEqual({ nodes: [] });
      expect((await catalog.list({ kind: 'future' })).map((e) => e.key)).toEqual(['dyn']);
    });

    it('evicts everything with an empty filter', async () => {
      await catalog.put([entry('x1'), entry('x2', { kind: 'future' }), entry('x3', { project: 'p9' })]);
      expect(await catalog.evict({})).toBe(3);
      expect(await catalog.list()).toEqual([]);
      expect(await catalog.evict({})).toBe(0);
    });

    it('puts and looks up 1,000 entries in one call each', async () => {
      const many = Array.from({ length: 1000 }, (_, i) =>
        entry(`bulk-${String(i).padStart(4, '0')}`, { value: { i, payload: 'x'.repeat(200), list: [i, i + 1] } }),
      );
      await catalog.put(many);
      const { hits, corrupt } = await catalog.lookup('output', many.map((e) => e.key));
      expect(corrupt.size).toBe(0);
      expect(hits.size).toBe(1000);
      expect(hits.get('bulk-0999')?.value).toEqual({ i: 999, payload: 'x'.repeat(200), list: [999, 1000] });
      expect(await catalog.list({ limit: 5 })).toHaveLength(5);
      expect(await catalog.evict({ keys: many.slice(0, 500).map((e) => e.key) })).toBe(500);
    });

    async function keys(): Promise<string[]> {
      return (await catalog.list()).map((e) => e.key).sort();
    }
  });
}

/** Batches per property test and implementation (each of up to 25 values): a few seconds in CI. */
const PROPERTY_RUNS = 40;

type EntryOverrides = Partial<Omit<NewCacheEntry, 'key'>>;

function entry(key: string, overrides: EntryOverrides = {}): NewCacheEntry {
  const project = overrides.project ?? 'demo';
  const domain = overrides.domain ?? 'dev';
  const task = overrides.task ?? 'etl.clean';
  const parts: CacheKeyParts = { format: 1, project, domain, task, signature: 'sig-1', version: '1', inputs: { rows: `sha256:${key}` } };
  return {
    key,
    kind: 'output',
    project,
    domain,
    task,
    parts,
    value: { key },
    valueHash: null,
    runId: 'run-0',
    nodeId: 'n0',
    ...overrides,
  };
}
