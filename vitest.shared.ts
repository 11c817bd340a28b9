import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import sibling packages from source, so a change in engine is seen by the sdk's tests
// without a rebuild. Type checking (`npm run typecheck`) goes through the built declarations.
const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@memoflow\/engine$/, replacement: src('engine') },
      { find: /^@memoflow\/catalog$/, replacement: src('catalog') },
      { find: /^@memoflow\/worker$/, replacement: src('worker') },
      { find: /^@memoflow\/sdk$/, replacement: src('sdk') },
    ],
  },
  test: {
    testTimeout: 30_000,
    // Creating a PGlite database (initdb + migrations) takes seconds, far more on a loaded machine.
    hookTimeout: 60_000,
    include: ['src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
  },
});
