// Lint: typescript-eslint's type-checked preset, plus the two rules that keep async code and closed
// unions honest (STYLE.md 14): a floating promise is an unhandled rejection waiting to happen, and a
// switch over a union that misses a new variant silently ignores it.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.mjs', '**/*.js', '**/*.cjs', 'examples/ml-pipeline/data/**', '**/vitest.config.ts', 'vitest.shared.ts', 'packages/catalog/drizzle.config.ts'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // Every file belongs to one of these projects (the examples to test/'s, which runs them).
      parserOptions: { project: ['packages/*/tsconfig.json', 'test/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: false, requireDefaultForNonUnion: false }],
      // Off: `async` is how a function says it returns a promise. The ports are async interfaces,
      // and their in-memory implementations and test fakes often have nothing to await.
      '@typescript-eslint/require-await': 'off',
      // `_name` marks a value deliberately left unused (a destructured field dropped on purpose).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' }],
      // A spread into a call passes every item as an argument on the stack: past ~120,000 items it
      // throws RangeError, and a run's nodes, events and results come in 100,000s
      // (test/regression/a-round-of-many-nodes-overflows-the-stack.test.ts). Append in a loop.
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name=/^(push|unshift|splice)$/] > SpreadElement",
          message: 'push/unshift/splice(...items) overflows the stack for large arrays: append in a loop.',
        },
        {
          selector: "CallExpression[callee.object.name='Math'][callee.property.name=/^(max|min)$/] > SpreadElement",
          message: 'Math.max/min(...items) overflows the stack for large arrays: reduce instead.',
        },
      ],
    },
  },
  {
    // Tests: vitest's asymmetric matchers (`expect.any(String)`, `expect.objectContaining`) are typed
    // `any`, and `expect(obj.method)` is how a test points at a method without calling it.
    files: ['**/*.test.ts', '**/testing/**/*.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // Tests spread arrays they sized themselves.
      'no-restricted-syntax': 'off',
    },
  },
);
