/**
 * Regression: definitions that can never run were accepted, and failed (or misbehaved) only when a
 * run reached them: inputs of types JSON cannot carry (Date, BigInt, function, symbol, Map), a Date
 * output, `inputs: 5`, a body that is not a function, `cache.version: null` (silently a derived
 * version), `retries: 1e9`. Each is now refused at definition time with an error naming the task
 * and the field; the ones that can run (`z.coerce.date()` fed an ISO string) are kept and run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoflowError } from '@memoflow/engine';
import { connect, dynamic, task, workflow, z } from '@memoflow/sdk';
import { uniqueName } from '../support/modes.js';

type Options = Parameters<typeof task>[0];
const body = async () => 1;

interface Case {
  what: string;
  options: (name: string) => Options;
  body?: unknown;
  field: string;
  message: RegExp;
}

const CASES: Case[] = [
  { what: 'a z.date() input', options: (name) => ({ name, inputs: { when: z.date() } }), field: 'inputs.when', message: /Date is not JSON/ },
  { what: 'a z.bigint() input', options: (name) => ({ name, inputs: { n: z.bigint() } }), field: 'inputs.n', message: /BigInt is not JSON/ },
  { what: 'a z.function() input', options: (name) => ({ name, inputs: { f: z.function() } }), field: 'inputs.f', message: /function is not data/ },
  { what: 'a z.symbol() input', options: (name) => ({ name, inputs: { s: z.symbol() } }), field: 'inputs.s', message: /symbol is not JSON/ },
  { what: 'a z.map() input', options: (name) => ({ name, inputs: { m: z.map(z.string(), z.number()) } }), field: 'inputs.m', message: /Map is not JSON/ },
  { what: 'a z.set() input', options: (name) => ({ name, inputs: { s: z.set(z.number()) } }), field: 'inputs.s', message: /Set is not JSON/ },
  { what: 'a Date deep inside an input', options: (name) => ({ name, inputs: { rows: z.array(z.object({ at: z.date().optional() })) } }), field: 'inputs.rows[].at', message: /Date is not JSON/ },
  { what: 'a z.date() output', options: (name) => ({ name, inputs: {}, output: z.date() }), field: 'output', message: /Date is not JSON/ },
  { what: 'a z.coerce.date() output (the stored value would be a Date)', options: (name) => ({ name, inputs: {}, output: z.coerce.date() }), field: 'output', message: /Date is not JSON/ },
  { what: 'a Map inside an output', options: (name) => ({ name, inputs: {}, output: z.object({ index: z.map(z.string(), z.number()) }) }), field: 'output.index', message: /Map is not JSON/ },
  { what: 'inputs: 5', options: (name) => ({ name, inputs: 5 as unknown as Options['inputs'] }), field: 'inputs', message: /inputs must be an object of zod schemas/ },
  { what: 'inputs: null', options: (name) => ({ name, inputs: null as unknown as Options['inputs'] }), field: 'inputs', message: /inputs must be an object of zod schemas/ },
  { what: 'an input that is not a zod schema', options: (name) => ({ name, inputs: { x: { type: 'number' } as unknown as z.ZodType } }), field: 'inputs.x', message: /must be a zod schema/ },
  { what: 'an output that is not a zod schema', options: (name) => ({ name, inputs: {}, output: 'number' as unknown as z.ZodType }), field: 'output', message: /output must be a zod schema/ },
  { what: 'a body that is not a function', options: (name) => ({ name, inputs: {} }), body: 42, field: 'body', message: /body must be a function/ },
  { what: 'a class as the body', options: (name) => ({ name, inputs: {} }), body: class Body {}, field: 'body', message: /got a class/ },
  { what: 'cache.version: null', options: (name) => ({ name, inputs: {}, cache: { version: null as unknown as string } }), field: 'cache.version', message: /cache.version null is invalid/ },
  { what: 'cache.version: 2 (a number)', options: (name) => ({ name, inputs: {}, cache: { version: 2 as unknown as string } }), field: 'cache.version', message: /cache.version 2 is invalid/ },
  { what: "cache: 'yes'", options: (name) => ({ name, inputs: {}, cache: 'yes' as unknown as boolean }), field: 'cache', message: /cache must be true, false or an object/ },
  { what: 'retries: 1e9', options: (name) => ({ name, inputs: {}, retries: 1e9 }), field: 'retries', message: /from 0 to 100, got 1000000000/ },
  { what: 'retries: 101', options: (name) => ({ name, inputs: {}, retries: 101 }), field: 'retries', message: /from 0 to 100/ },
  { what: 'retries: 1.5', options: (name) => ({ name, inputs: {}, retries: 1.5 }), field: 'retries', message: /whole number/ },
  { what: "retries: '3'", options: (name) => ({ name, inputs: {}, retries: '3' as unknown as number }), field: 'retries', message: /whole number/ },
];

function refusal(define: () => unknown): MemoflowError {
  try {
    define();
  } catch (error) {
    if (!(error instanceof MemoflowError)) throw error;
    return error;
  }
  throw new Error('the definition was accepted');
}

describe('definitions that can never run are refused when defined', () => {
  it.each(CASES)('task(): $what', ({ options, body: given, field, message }) => {
    const name = uniqueName('reg.unrunnable');
    const error = refusal(() => task(options(name), (given ?? body) as never));
    expect(error.location).toEqual({ node: name, field });
    expect(error.message).toMatch(message);
    expect(error.message).toContain(name);
  });

  it.each(CASES.filter((c) => c.field !== 'output' && !c.field.startsWith('output.')))('dynamic(): $what', ({ options, body: given, field, message }) => {
    const name = uniqueName('reg.unrunnable');
    const error = refusal(() => dynamic({ ...options(name), output: z.number(), tasks: [] }, (given ?? body) as never));
    expect(error.location).toEqual({ node: name, field });
    expect(error.message).toMatch(message);
  });

  it('what can run is kept: retries 100, and a z.coerce.date() input fed an ISO string reaches the body as that Date', async () => {
    expect(task({ name: uniqueName('reg.ok'), inputs: {}, retries: 100 }, async () => undefined).defaults.retries).toBe(100);
    const day = task({ name: uniqueName('reg.day'), inputs: { when: z.coerce.date() }, output: z.string(), cache: { version: '1' } }, ({ when }) => when.toISOString());
    const flow = workflow({ name: uniqueName('reg.day.flow'), inputs: { iso: z.string() } }, ({ iso }) => ({ day: day({ when: iso }) }));
    const dataDir = await mkdtemp(join(tmpdir(), 'memoflow-reg-'));
    const mf = await connect({ dataDir, log: 'silent' });
    try {
      const run = await mf.run(flow, { iso: '2025-03-04T05:06:07.000Z' });
      expect(await run.result()).toEqual({ day: '2025-03-04T05:06:07.000Z' });
    } finally {
      await mf.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
