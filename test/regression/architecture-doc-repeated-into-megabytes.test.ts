import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * A scripted edit of packages/worker/ARCHITECTURE.md replaced text one character at a time and left
 * a 20 KB document as 4.7 MB of one paragraph repeated 61,000 times; nobody reads a document that
 * size, so nobody noticed for a session. Every Markdown file the repository tracks stays a size a
 * reader can read, and no paragraph of one stands in it twice.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const MAX_BYTES = 200_000;

describe('regression: a tracked document repeated into megabytes', () => {
  const documents = execFileSync('git', ['ls-files', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter((path) => path !== '');

  it('finds the documents', () => {
    expect(documents).toContain('packages/worker/ARCHITECTURE.md');
  });

  it.each(documents)('%s is under 200 KB and repeats no paragraph of four lines or more', (path) => {
    const file = `${root}/${path}`;
    expect(statSync(file).size).toBeLessThan(MAX_BYTES);
    const paragraphs = readFileSync(file, 'utf8')
      .split(/\n\s*\n/)
      .map((paragraph) => paragraph.trim())
      .filter((paragraph) => paragraph.split('\n').length >= 4 && !paragraph.startsWith('```') && !paragraph.startsWith('|'));
    const seen = new Set<string>();
    const repeated = paragraphs.filter((paragraph) => (seen.has(paragraph) ? true : (seen.add(paragraph), false)));
    expect(repeated.map((paragraph) => paragraph.slice(0, 80))).toEqual([]);
  });
});
