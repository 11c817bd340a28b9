import { MemoflowError, describeGiven, type ErrorLocation } from '../errors.js';

const VERSION_PATTERN = /^[A-Za-z0-9._-]+$/;

/** DESIGN.md: a cache version is letters, digits, `-`, `_`, `.`; anything else is a definition-time error. */
export function assertValidCacheVersion(version: unknown, where: ErrorLocation): asserts version is string {
  if (typeof version !== 'string' || !VERSION_PATTERN.test(version)) {
    throw new MemoflowError(
      'INVALID_CACHE_VERSION',
      `cache.version ${describeGiven(version)} is invalid: use letters, digits, '-', '_' and '.' only (e.g. '1', 'v2.1', '2024-06-01')`,
      { ...where, field: where.field ?? 'cache.version' },
    );
  }
}

/** DESIGN.md: `ignoreInputs` may only name inputs the task has. */
export function assertIgnoredInputsExist(ignoreInputs: readonly string[], inputNames: readonly string[], where: ErrorLocation): void {
  for (const name of ignoreInputs) {
    if (!inputNames.includes(name)) {
      throw new MemoflowError(
        'INVALID_IGNORE_INPUTS',
        `cache.ignoreInputs names '${name}', which is not an input (inputs: ${inputNames.join(', ') || 'none'})`,
        { ...where, field: 'cache.ignoreInputs' },
      );
    }
  }
}
