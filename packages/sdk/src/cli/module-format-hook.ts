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
  if (result.format === 'commonjs') {
    if (path.endsWith('.cts')) {
      if (result.source === undefined || result.source === null) return result;
      return wrapCommonJs(url, path, sourceText(result.source));
    }
    const text = sourceText(result.source ?? (await readFile(path)));
    return ESM_SYNTAX.test(text) ? nextLoad(url, { ...context, format: 'module' }) : result;
  }
  if (result.format === 'module' && result.source !== undefined && result.source !== null) {
    const original = await readFile(path, 'utf8');
    if (!ESM_SYNTAX.test(original) && CJS_SYNTAX.test(original)) {
      // TypeScript: tsx compiles it as CommonJS when asked to; JavaScript needs no compiling.
      return path.endsWith('.ts') ? nextLoad(url, { ...context, format: 'commonjs' }) : wrapCommonJs(url, path, sourceText(result.source));
    }
  }
  return result;
};

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
