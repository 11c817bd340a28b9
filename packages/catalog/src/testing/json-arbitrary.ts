import type { Json } from '@memoflow/engine';
import fc from 'fast-check';

/*
 * Arbitrary JSON values a task could produce and the stores must keep byte for byte (property
 * tests of the contract suites). Strings cover the whole Unicode range, astral characters included,
 * but no U+0000 and no lone surrogate: those are refused by the stores (a contract test of their
 * own checks that). Objects get keys in arbitrary order, including ones that are traps for plain
 * object handling in JavaScript ("__proto__", "constructor", "").
 */

const storableString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map((text) => text.replaceAll('\u0000', '\u0001')),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.constantFrom('', '😀', '\u{10FFFF}', 'a\u{1F600}b', '"quoted"', '\\', '123', 'null', '\u2028\u2029', 'é'),
);

const trickyKey = fc.oneof(storableString, fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', ' '));

const number = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constantFrom(0, -0, 1e308, -1e308, Number.MAX_VALUE, Number.MIN_VALUE, 5e-324, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e21, 1e-7, 0.1 + 0.2),
);

/** An object built with defineProperty, so "__proto__" is an own key (as JSON.parse makes it), in insertion order. */
function objectOf(entries: [string, Json][]): Json {
  const object: { [key: string]: Json } = {};
  for (const [key, value] of entries) Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  return object;
}

export const jsonValue: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    number,
    storableString,
    fc.array(fc.oneof(fc.constant(null), tie('value')), { maxLength: 5 }),
    fc.array(fc.tuple(trickyKey, fc.oneof(fc.constant(null), tie('value'))), { maxLength: 5 }).map(objectOf),
  ),
})).value;

/** The stores' notion of "the same value": the same JSON text (key order included). */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
