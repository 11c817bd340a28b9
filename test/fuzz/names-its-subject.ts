/**
 * The oracle of the fuzz suite: an error caused by a user's mistake is a MemoflowError (never a
 * TypeError, RangeError or whatever a user's value threw) that names what it is about: the
 * workflow, the node and the field or input, both in `location` and in its one-line message.
 */
import { expect } from 'vitest';
import { MemoflowError } from '@memoflow/sdk';

/** What an error must name; a field is matched exactly, or by a predicate (a path inside an input). */
export interface Subject {
  workflow?: string;
  node?: string;
  field?: string | ((field: string) => boolean);
  /** The error code, when the case determines it. */
  code?: string;
  /** What the message must say about the mistake. */
  says?: RegExp;
}

/** Messages that mean an internal walker or a user value broke, not that memoflow judged the mistake. */
const LEAKED = /Maximum call stack|is not a function|is not iterable|Cannot read properties|Cannot convert|Do not know how to serialize|Converting circular structure|\.trim is not/;

/** Asserts the error names its subject; returns it for further checks. */
export function expectNamesItsSubject(error: unknown, subject: Subject): MemoflowError {
  if (!(error instanceof MemoflowError)) {
    // Shown as it is, so a counterexample says what leaked.
    expect.fail(`expected a MemoflowError, got ${describeThrown(error)}`);
  }
  const { location, message } = error;
  expect(message).not.toMatch(LEAKED);
  if (subject.code !== undefined) expect(error.code, message).toBe(subject.code);
  for (const part of ['workflow', 'node'] as const) {
    const expected = subject[part];
    if (expected === undefined) continue;
    expect(location[part], message).toBe(expected);
    expect(message).toContain(`${part} '${expected}'`);
  }
  if (subject.field !== undefined) {
    const field = location.field;
    expect(field, message).toBeDefined();
    if (typeof subject.field === 'string') expect(field, message).toBe(subject.field);
    else expect(subject.field(field ?? ''), `field '${field}' in: ${message}`).toBe(true);
    expect(message).toContain(`field '${field}'`);
  }
  if (subject.says !== undefined) expect(message).toMatch(subject.says);
  return error;
}

/** A field predicate: the input itself or a path inside it (`rows`, `rows[2]`, `rows.a.b`). */
export function inside(input: string): (field: string) => boolean {
  return (field) => field === input || field.startsWith(`${input}.`) || field.startsWith(`${input}[`);
}

/** Runs `action` and returns what it threw or rejected with; fails when it did not. */
export async function caught(action: () => unknown): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  return expect.fail('expected an error, but the call succeeded');
}

function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ''}`;
    return typeof value === 'bigint' ? `${value}n` : String(value);
  } catch {
    return 'an unprintable value';
  }
}
