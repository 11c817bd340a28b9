import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { cutoffLines, cutoffNote, cutoffReports, formatDuration, savedCompute, savedComputeLine, type ComputeNode } from './saved-compute.js';

const node = (id: string, patch: Partial<ComputeNode> = {}): ComputeNode => ({ id, parent: null, cacheStatus: 'HIT', savedMs: 1000, cutoffHint: null, ...patch });

describe('formatDuration', () => {
  test.each([
    [0, '0 ms'],
    [850, '850 ms'],
    [999.6, '1000 ms'],
    [1000, '1.0 s'],
    [4250, '4.2 s'],
    [9999, '9.9 s'],
    [10_000, '10 s'],
    [59_999, '59 s'],
    [60_000, '1 m'],
    [252_000, '4 m 12 s'],
    [3_600_000, '1 h'],
    [3_600_000 + 5 * 60_000 + 59_000, '1 h 5 m'],
    [2 * 86_400_000 + 4 * 3_600_000, '2 d 4 h'],
    [Number.MAX_SAFE_INTEGER, '104249991 d 8 h'],
    [null, 'unknown'],
    [-1, 'unknown'],
    [Number.NaN, 'unknown'],
    [Number.POSITIVE_INFINITY, 'unknown'],
  ])('%s ms reads %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test('property: at most two units, biggest first, never more than the duration, and short of it by less than the smallest unit shown', () => {
    const size: { [unit: string]: number } = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 2 ** 45 }), (ms) => {
        const text = formatDuration(ms);
        const parts = [...text.matchAll(/([\d.]+) (ms|s|m|h|d)/g)].map((m) => [Number(m[1]), m[2] as string] as const);
        expect(parts.length).toBeGreaterThanOrEqual(1);
        expect(parts.length).toBeLessThanOrEqual(2);
        expect(parts.map(([, unit]) => unit).join(' ')).toBe(text.replace(/[\d.]+ /g, ''));
        const shown = parts.reduce((sum, [n, unit]) => sum + n * (size[unit] ?? 0), 0);
        expect(shown).toBeLessThanOrEqual(ms + 1e-6);
        const smallest = parts[parts.length - 1]?.[1] ?? 'ms';
        const step = smallest === 's' && text.includes('.') ? 100 : (size[smallest] ?? 1);
        // The unit below the smallest shown may be dropped when zero: 1 h 0 m reads "1 h".
        const next = { d: 3_600_000, h: 60_000, m: 1000, s: step, ms: 1 }[smallest] ?? 1;
        expect(ms - shown).toBeLessThan(parts.length === 1 ? size[smallest] ?? 1 : Math.max(step, next));
      }),
    );
  });
});

describe('saved compute', () => {
  test('counts the hits of all nodes (children too) and sums what they saved; a FUTURE_HIT saves its compile but is not from the cache', () => {
    const nodes = [node('a', { savedMs: 250_000 }), node('b', { savedMs: 2000 }), node('d', { cacheStatus: 'FUTURE_HIT', savedMs: 500 }), node('d.x', { parent: 'd', cacheStatus: 'MISS', savedMs: null })];
    expect(savedCompute(nodes)).toEqual({ fromCache: 2, nodes: 4, savedMs: 252_500, unknown: 0 });
    expect(savedComputeLine(nodes)).toBe('2 of 4 from the cache, 4 m 12 s of compute saved');
  });

  test('nothing hit: no savings claimed; hits on entries of an earlier release are counted but their compute is unknown', () => {
    expect(savedComputeLine([node('a', { cacheStatus: 'POPULATED', savedMs: null })])).toBe('0 of 1 from the cache');
    expect(savedComputeLine([node('a', { savedMs: null })])).toBe('1 of 1 from the cache, compute saved unknown (1 hit on entries from an earlier release, their compute unknown)');
    expect(savedComputeLine([node('a', { savedMs: 61_000 }), node('b', { savedMs: null }), node('c', { savedMs: null })])).toBe(
      '3 of 3 from the cache, at least 1 m 1 s of compute saved (2 hits on entries from an earlier release, their compute unknown)',
    );
  });
});

describe('the early-cutoff report', () => {
  const hint = (upstream: string, savedMs: number | null) => ({ upstream, savedMs, entry: { runId: 'r0', nodeId: 'x' } });
  const nodes = [
    node('a', { cacheStatus: 'MISS', savedMs: null }),
    node('b', { cacheStatus: 'SKIPPED', savedMs: null, cutoffHint: hint('a', 63_000) }),
    node('d', { cacheStatus: 'SKIPPED', savedMs: null, cutoffHint: hint('a', 5000) }),
    // A child of a container in the report: covered by its container's hint (had d hit, it would not have run).
    node('d.x', { parent: 'd', cacheStatus: 'SKIPPED', savedMs: null, cutoffHint: hint('a', 4000) }),
    node('c', { cacheStatus: 'SKIPPED', savedMs: null, cutoffHint: hint('b', null) }),
  ];

  test('names each node and its upstream, leaving out the children of a reported container', () => {
    expect(cutoffReports(nodes).map((r) => [r.node, r.upstream, r.savedMs])).toEqual([
      ['b', 'a', 63_000],
      ['d', 'a', 5000],
      ['c', 'b', null],
    ]);
  });

  test('the summary note and the runs show lines say what hashWith would have saved', () => {
    expect(cutoffNote(nodes)).toBe('early cutoff: b, d, c reran only because a, b reran, with unchanged inputs; hashWith on their outputs would have let them hit (at least 1 m 8 s of compute)');
    expect(cutoffLines(nodes)).toEqual([
      'early cutoff (reran only because of the cascade, inputs unchanged: content-hash the upstream output with hashWith to let them hit):',
      '  b: upstream a reran; would have hit the entry of run r0 node x, saving 1 m 3 s',
      '  d: upstream a reran; would have hit the entry of run r0 node x, saving 5.0 s',
      '  c: upstream b reran; would have hit the entry of run r0 node x, saving unknown',
    ]);
    expect(cutoffNote([node('a')])).toBe('');
    expect(cutoffLines([node('a')])).toEqual([]);
  });
});
