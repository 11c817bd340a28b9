import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Json } from '@memoflow/engine';
import { previewJson } from './preview.js';

const json: fc.Arbitrary<Json> = fc.jsonValue() as fc.Arbitrary<Json>;

describe('previewJson', () => {
  it('is a prefix of the pretty JSON, at most maxChars long, truncated exactly when the JSON is longer', () => {
    fc.assert(
      fc.property(json, fc.integer({ min: 0, max: 300 }), (value, max) => {
        const full = JSON.stringify(value, null, 2);
        const preview = previewJson(value, max);
        expect(preview.text.length).toBeLessThanOrEqual(max);
        expect(full.startsWith(preview.text)).toBe(true);
        expect(preview.truncated).toBe(full.length > max);
        if (!preview.truncated) expect(preview.text).toBe(full);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps strings with surrogate pairs and escapes a prefix of their encoding', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.integer({ min: 0, max: 60 }), (text, max) => {
        const preview = previewJson({ text, list: [text, text] }, max);
        expect(JSON.stringify({ text, list: [text, text] }, null, 2).startsWith(preview.text)).toBe(true);
      }),
    );
  });

  it('previews a huge value in a few milliseconds, without encoding it whole', () => {
    const huge: Json = { rows: Array.from({ length: 2_000_000 }, (_, i) => ({ i, name: `row ${i}` })), blob: 'x'.repeat(20_000_000) };
    const started = performance.now();
    const preview = previewJson(huge, 1_000);
    expect(performance.now() - started).toBeLessThan(50);
    expect(preview.truncated).toBe(true);
    expect(preview.text).toHaveLength(1_000);
    expect(preview.text.startsWith('{\n  "rows": [\n    {\n      "i": 0,')).toBe(true);
  });
});
