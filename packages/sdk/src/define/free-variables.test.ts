import { describe, expect, it } from 'vitest';
import { freeVariables } from './free-variables.js';

const outside = 1;
const helper = (x: number) => x + outside;

/** Builds a function from source text, as another tool's output would look (no vitest rewriting). */
// The analysis reads a function's source text: these tests build functions from source on purpose.
// eslint-disable-next-line @typescript-eslint/no-implied-eval, @typescript-eslint/no-unsafe-call
const fromSource = (source: string) => new Function(`return (${source});`)() as (...args: never[]) => unknown;

describe('freeVariables', () => {
  it.each([
    ['an arrow using only its parameters', '({ xs }) => xs.map((x) => x * 2)', []],
    ['standard globals', 'async ({ x }) => { await new Promise((r) => setTimeout(r, 1)); return Math.max(JSON.parse(String(x)), Number.EPSILON) + Buffer.byteLength(structuredClone("a")) + process.pid + new URL("http://a").port.length; }', []],
    ['a local function and class', '(x) => { function twice(n) { return n * 2; } class K { m() { return 1; } } return twice(x) + new K().m(); }', []],
    ['a closure value', '({ amount }) => amount * rate', ['rate']],
    ['helpers and constants', '(x) => helper(x) + LIMIT + helper(x)', ['LIMIT', 'helper']],
    ['esbuild keepNames helper only', '(x) => { const f = __name(function f() { return x; }, "f"); return f(); }', []],
    ["vitest's import references are imports", '(x) => (0, __vite_ssr_import_1__.createHash)("sha256") + __vite_ssr_import_meta__.url', ['__vite_ssr_import_1__']],
    ['a direct eval reads the closure', '(x) => eval("x")', ['eval']],
    ['arguments in a function is its own', 'function (x) { return arguments.length; }', []],
    ['arguments in an arrow is the enclosing one', '(x) => arguments.length', ['arguments']],
    ['a user global', '(x) => globalThis.config + myGlobal', ['myGlobal']],
  ])('%s', (_label, source, expected) => {
    expect(freeVariables(fromSource(source))).toEqual({ kind: 'closed', names: expected });
  });

  it('reads method shorthand bodies', () => {
    const holder = { async run(x: number) { return helper(x); }, plain(x: number) { return x; } };
    expect(freeVariables(holder.run)).toMatchObject({ kind: 'closed' });
    expect((freeVariables(holder.run) as { names: string[] }).names).toContain('helper');
    expect(freeVariables(holder.plain)).toEqual({ kind: 'closed', names: [] });
  });

  it('a native or bound function cannot be read: unparsable', () => {
    expect(freeVariables(Math.max)).toMatchObject({ kind: 'unparsable' });
    expect(freeVariables(((x: number) => x).bind(null, 1))).toMatchObject({ kind: 'unparsable' });
  });

  it('a closure of this file is seen through whatever transform loaded it', () => {
    const rate = 0.2;
    expect(freeVariables((x: number) => x * rate)).toEqual({ kind: 'closed', names: ['rate'] });
    expect(freeVariables((x: number) => helper(x))).toEqual({ kind: 'closed', names: ['helper'] });
  });
});
