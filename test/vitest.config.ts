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
      // Most of these tests wait (on child processes, Postgres, Redis, a browser), not compute: four
      // files at a time on a 2-core machine took the suite from 16 minutes to 6 (vitest's default
      // is one worker per core). Each test has its own schema, prefix and data directory.
      maxWorkers: 4,
    },
  }),
);
