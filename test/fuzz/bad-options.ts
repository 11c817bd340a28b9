/**
 * Generated bad values for the options of `task()`, `dynamic()`, `workflow()` and
 * `.withOverrides()`: each is a mutation of a good options object, with the field the refusal must
 * name. Values of every JavaScript type, not only the typed ones: JavaScript callers (and casts)
 * pass whatever they have.
 */
import fc from 'fast-check';
import { z } from '@memoflow/sdk';

/** Something a JavaScript caller may pass instead of the right type. */
export const anyWrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 5n, -1n, Symbol('s'), [], [1], {}, { length: 1 }, () => 1, new Date(0), new Map(), Number.NaN),
  fc.constant(null).map(() => {
    const cyclic: { [key: string]: unknown } = {};
    cyclic['self'] = cyclic;
    return cyclic;
  }),
);

/** Names no task or workflow may have: not a string, or characters outside `A-Za-z0-9_.-`. */
export const badName: fc.Arbitrary<unknown> = fc.oneof(
  anyWrongType,
  fc.constant(undefined),
  fc.double(),
  fc.string({ unit: 'grapheme' }).filter((name) => !/^[A-Za-z0-9_.-]+$/.test(name)),
  fc.constantFrom('', ' ', 'a b', 'a/b', 'é', 'a\u0000', `x${'😀'.slice(0, 1)}`, 'a\nb', '__proto__ x'),
);

/** Durations (`timeout`, `cache.ttl`) that are not a positive finite number of milliseconds or `<n><unit>`. */
export const badDuration: fc.Arbitrary<unknown> = fc.oneof(
  anyWrongType,
  fc.constantFrom(0, -0, -1, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, -1e-9),
  fc.double({ max: 0 }),
  fc.constantFrom('', ' ', '0s', '0ms', '0.0h', '-5s', '5', '5 parsecs', '1e3s', 'Infinityms', '5S', '٣s', '5sec', 's', '1.s', `${'9'.repeat(400)}ms`),
  fc.string().filter((text) => !/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*$/.test(text)),
);

/** Retries that are not a whole number from 0 to 100. */
export const badRetries: fc.Arbitrary<unknown> = fc.oneof(
  anyWrongType,
  fc.double().filter((n) => !(Number.isInteger(n) && n >= 0 && n <= 100)),
  fc.integer({ min: 101 }),
  fc.integer({ max: -1 }),
  fc.constantFrom('3', '0', 1e9),
);

/** Cache versions outside letters, digits, `-`, `_`, `.` (or not a string). */
export const badVersion: fc.Arbitrary<unknown> = fc.oneof(
  anyWrongType.filter((value) => value !== undefined),
  fc.double(),
  fc.string({ unit: 'grapheme' }).filter((version) => !/^[A-Za-z0-9._-]+$/.test(version)),
);

/** Schemas no JSON value can satisfy, and values that are not zod schemas at all. */
export const notJsonSchema: fc.Arbitrary<unknown> = fc.constantFrom<unknown>(
  z.date(),
  z.bigint(),
  z.symbol(),
  z.map(z.string(), z.number()),
  z.set(z.number()),
  z.nan(),
  z.promise(z.number()),
  z.function(),
);
export const notZod: fc.Arbitrary<unknown> = fc.oneof(
  anyWrongType.filter((value) => value !== undefined),
  fc.constantFrom<unknown>(5, 'number', { type: 'number' }, { _def: {}, safeParse: () => ({ success: true }) }, undefined),
);

/** One mistake in a task's (or a dynamic's) options: the field it is in and how to make it. */
export interface OptionMistake {
  field: string;
  apply(options: { [key: string]: unknown }): void;
  code?: string;
  label: string;
}

const set = (field: string, value: unknown, code?: string): OptionMistake => ({
  field,
  label: `${field} = ${describe(value)}`,
  ...(code === undefined ? {} : { code }),
  apply(options) {
    const [head, tail] = field.split('.', 2) as [string, string | undefined];
    if (tail === undefined) options[head] = value;
    else options[head] = { ...(options[head] as object), [tail]: value };
  },
});

/** Mistakes in the settings `task()`, `dynamic()` and `.withOverrides()` share. */
export const settingMistake: fc.Arbitrary<OptionMistake> = fc.oneof(
  badRetries.map((value) => set('retries', value)),
  badDuration.map((value) => set('timeout', value, 'INVALID_DURATION')),
  anyWrongType.filter((value) => typeof value !== 'boolean' && !isPlainObject(value)).map((value) => set('cache', value)),
  fc.oneof(fc.constantFrom<unknown>(5, 'yes', 0), fc.string()).map((value) => set('cache', value)),
  badVersion.map((value) => set('cache.version', value, 'INVALID_CACHE_VERSION')),
  badDuration.map((value) => set('cache.ttl', value, 'INVALID_DURATION')),
  fc.oneof(anyWrongType.filter((value) => !Array.isArray(value)), fc.constantFrom<unknown>('x', 'y', ['y'], ['x', 'nope'], [5], [null])).map((value) => set('cache.ignoreInputs', value)),
  fc.oneof(anyWrongType.filter((value) => typeof value !== 'boolean'), fc.constantFrom<unknown>('no', 'false', 0, 1)).map((value) => set('cache.enabled', value)),
  fc.oneof(anyWrongType.filter((value) => typeof value !== 'boolean'), fc.constantFrom<unknown>('yes', 1)).map((value) => set('cache.serialize', value)),
  fc.constantFrom('versoin', 'ttL', 'ignore', 'key', 'hash').map((key) => set(`cache.${key}`, '1')),
);

/** Mistakes only a definition can make: its name, inputs, output and body. */
export const definitionMistake: fc.Arbitrary<OptionMistake> = fc.oneof(
  badName.map((value) => set('name', value)),
  fc.oneof(anyWrongType.filter((value) => !isPlainObject(value)), fc.constantFrom<unknown>(5, 'n', [z.number()], undefined)).map((value) => set('inputs', value)),
  fc.oneof(notZod, notJsonSchema).map((schema) => ({ ...set('inputs.x', schema), apply: (options: { [key: string]: unknown }) => void (options['inputs'] = { x: schema }) })),
  fc.oneof(notZod.filter((value) => value !== undefined), notJsonSchema).map((schema) => set('output', schema)),
);

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

export function describe(value: unknown): string {
  try {
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'symbol' || typeof value === 'function') return typeof value;
    if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
