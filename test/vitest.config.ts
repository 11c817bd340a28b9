import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../vitest.shared.js';

// The end-to-end suite and the examples' tests (STYLE.md 12: examples are run by the tests).
export default mergeConfig(
  shared,
  defineConfig({
    test: {
      root: fileURLToPath(new URL('..', import.meta.url)),
      include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    },
  }),
);
