/**
 * A Node module-loader hook (registered by load-module.ts after tsx's) that lets a user's flows
 * file load whatever its folder's package.json says. Node picks a file's module format from the
 * extension and the nearest package.json `type`; users write ESM syntax in a `.ts` file of a
 * folder `npm init` made (no `type`, so CommonJS), or `require` in a `.ts` of an ESM folder. Left
 * alone, the first dies with ERR_REQUIRE_CYCLE_MODULE (the ESM loader hands the file to the CJS
 * loader, which finds ESM syntax and tries to import it back) and the second with "require is not
 * defined". So, for files outside node_modules only:
 * - a file Node would load as CommonJS that has import/export statements loads as ESM;
 * - a file Node would load as ESM that has no import/export statements but uses `require`,
 *   `module.exports` or `exports.x` loads as CommonJS: TypeScript through tsx's CommonJS
 *   compilation, JavaScript (and every `.cts` file: tsx hands its compiled code to a Node 20
 *   translator that cannot run it) as CommonJS code wrapped in an ES module: it gets a real
 *   `require` (so `require('@memoflow/sdk')` returns the one copy this process already loaded) and
 *   its `module.exports` becomes the default export, which load-module.ts reads like named ones.
 * Runs on Node's loader thread: no state shared with the CLI.
 */
import { readFile } from 'node:fs/promises';
import type { LoadHook } from 'node:module';
import { fileURLToPath } from 'node:url';

const ESM_SYNTAX = /^[ \t]*(?:import(?:[ \t]+[\w$*{]|[ \t]*[{*'"])|export(?:[ \t]+[\w$*{]|[ \t]*[{*]))/m;
const CJS_SYNTAX = /\brequire[ \t]*\(|\bmodule\.exports\b|^[ \t]*exports\.[\w$]+[ \t]*=/m;
const AMBIGUOUS = /\.(?:ts|js|cts)$/;

export const load: LoadHook = async (url, context, nextLoad) => {
  const result = await nextLoad(url, context);
  if (!url.startsWith('file:') || url.includes('/node_modules/')) return result;
  const path = fileURLToPath(url);
  if (!AMBIGUOUS.test(path)) return result;
  if (path.endsWith('.cts')) {
    // tsx compiled it to a CommonJS program that Node 20's translator for hook-given CommonJS
    // source cannot run: run it inside an ES module instead.
    if (result.format !== 'commonjs' || result.source === undefined || result.source === null) return result;
    return wrapCommonJs(url, path, sourceText(result.source));
  }
  const original = await readFile(path, 'utf8');
  const esm = ESM_SYNTAX.test(original);
  if (result.format === 'commonjs') {
    if (esm) return nextLoad(url, { ...context, format: 'module' });
    // CommonJS TypeScript: Node's CommonJS loader would read it uncompiled (tsx's require hook is
    // not registered: it would compile the SDK's own ES modules into a second copy). tsx compiles
    // it as an ES module whose default export is `module.exports`; it only lacks `require`.
    if (path.endsWith('.ts')) return withRequire(url, path, await nextLoad(url, { ...context, format: 'module' }));
    return result;
  }
  if (result.format === 'module' && !esm && CJS_SYNTAX.test(original) && result.source !== undefined && result.source !== null) {
    return path.endsWith('.ts') ? withRequire(url, path, result) : wrapCommonJs(url, path, sourceText(result.source));
  }
  return result;
};

function withRequire(url: string, path: string, compiled: { source?: string | ArrayBuffer | NodeJS.TypedArray | null | undefined }) {
  const code = compiled.source === undefined || compiled.source === null ? '' : sourceText(compiled.source);
  const shim = `import { createRequire as __memoflowCreateRequire } from 'node:module'; const require = __memoflowCreateRequire(${JSON.stringify(url)}); const __filename = ${JSON.stringify(path)}; const __dirname = ${JSON.stringify(fileURLToPath(new URL('.', url)))};`;
  return { format: 'module' as const, source: `${shim}${code}`, shortCircuit: true as const };
}

function sourceText(source: string | ArrayBuffer | NodeJS.TypedArray): string {
  if (typeof source === 'string') return source;
  return Buffer.from(source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength)).toString('utf8');
}

function wrapCommonJs(url: string, path: string, code: string): { format: 'module'; source: string; shortCircuit: true } {
  const dir = fileURLToPath(new URL('.', url));
  // The user's code stays on the wrapper's second line onwards, so stack traces point one line low
  // at most; the function keeps `return`, `this` and the CommonJS globals as CommonJS has them.
  const source =
    `import { createRequire as __memoflowCreateRequire } from 'node:module'; const module = { exports: {} }; (function (exports, require, module, __filename, __dirname) {\n` +
    `${code}\n}).call(module.exports, module.exports, __memoflowCreateRequire(${JSON.stringify(url)}), module, ${JSON.stringify(path)}, ${JSON.stringify(dir)});\n` +
    `export default module.exports;\n`;
  return { format: 'module', source, shortCircuit: true };
}
