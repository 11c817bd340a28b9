// Regression (issue 8, item 14): `memoflow run ./flows.ts ...` in a folder whose package.json has no
// "type": "module" (what `npm init` writes), or with no package.json at all, died with
// ERR_REQUIRE_CYCLE_MODULE and a stack trace. Every combination of folder (no package.json,
// CommonJS, ESM), syntax (import/export, require/exports) and extension must load, in a folder
// outside the repository, through the built CLI. Runs go to Postgres, a schema each: what is under
// test is how the file loads, and 23 PGlite data directories cost two minutes of initdb.
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CJS_FLOWS, ESM_FLOWS, ROOT, STACK_FRAME, runCli, scratchFolder } from '../support/cli.js';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';

const folder = scratchFolder('formats');
const schemas: string[] = [];
afterAll(async () => {
  folder.remove();
  await Promise.all(schemas.map((schema) => dropSchema(schema)));
});

type Scope = 'no package.json' | 'package.json without type' | 'type: module';
const scopes: Scope[] = ['no package.json', 'package.json without type', 'type: module'];
const esmExtensions = ['ts', 'mts', 'js', 'mjs'];
const cjsExtensions = ['ts', 'cts', 'js', 'cjs'];

function scopeDir(scope: Scope): string {
  const dir = join(folder.dir, scope.replace(/\W+/g, '-'));
  mkdirSync(dir, { recursive: true });
  try {
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  } catch {
    // already there
  }
  // Written once per folder: the cases run concurrently, and rewriting it (truncate, then write)
  // while another case's CLI reads it made that one fail with "Unexpected end of JSON input".
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest)) {
    if (scope === 'package.json without type') writeFileSync(manifest, JSON.stringify({ name: 'my-flows', version: '1.0.0', main: 'index.js' }));
    if (scope === 'type: module') writeFileSync(manifest, JSON.stringify({ name: 'my-flows', version: '1.0.0', type: 'module' }));
  }
  return dir;
}

const rows = scopes.flatMap((scope) => [
  ...esmExtensions.map((ext) => ({ scope, syntax: 'ESM', ext, source: ESM_FLOWS })),
  // CommonJS syntax in a "type": "module" folder is an error Node itself makes for .js; TypeScript
  // and the explicit .cjs/.cts extensions still load there.
  ...cjsExtensions.filter((ext) => !(scope === 'type: module' && ext === 'js')).map((ext) => ({ scope, syntax: 'CommonJS', ext, source: CJS_FLOWS })),
]);

describe('a flows file loads wherever the user keeps it', () => {
  it.concurrent.each(rows)('$syntax .$ext in a folder with $scope', async ({ scope, syntax, ext, source }) => {
    const dir = scopeDir(scope);
    const file = `flows-${syntax}.${ext}`;
    writeFileSync(join(dir, file), ext.endsWith('ts') ? source.replace('async ({ n })', 'async ({ n }: { n: number })') : source);
    const schema = `mf_formats_${scope.replace(/\W+/g, '_')}_${syntax}_${ext}_${process.pid}`.toLowerCase();
    schemas.push(schema);
    const result = await runCli(['run', `./${file}`, 'reg.main', '--input', 'n=21', '--schema', schema], { cwd: dir, timeoutMs: 200_000, env: { DATABASE_URL: TEST_DATABASE_URL } });
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ out: 42 });
  }, 240_000);
});
