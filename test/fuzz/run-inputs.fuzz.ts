/**
 * Fuzz (issue 8, item 16): generated bad run inputs through `mf.run` in the embedded mode. Each case
 * is a good set of inputs with one mistake: a value JSON cannot carry or Postgres cannot store at a
 * generated path, a wrong type, a missing or unknown input (inherited names included), inputs that
 * are not an object, bad run options, or something other than a workflow. Properties: the call
 * ends within a bound, it rejects with a MemoflowError naming the workflow and the input (the path
 * inside it where the error can know it), nothing is submitted, and the connection still runs a
 * good workflow afterwards. A few good edge values (-0, long strings, deep-but-legal nesting) run.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { hashWith, task, workflow, z, type Memoflow } from '@memoflow/sdk';
import { badValue, fieldOf } from './bad-values.js';
import { fuzzParameters, within } from './fuzz-settings.js';
import { caught, expectNamesItsSubject, inside, type Subject } from './names-its-subject.js';

const echo = task({ name: 'fuzz.inputs.echo', inputs: { v: z.any() }, output: z.any() }, ({ v }) => v);
const WORKFLOW = 'fuzz.inputs.main';
const main = workflow(
  { name: WORKFLOW, inputs: { n: z.number().int(), label: z.string(), rows: z.array(z.number()), any: z.any(), maybe: z.string().optional() } },
  ({ n, label, rows, any }) => ({ n: echo({ v: n }), label: echo({ v: label }), rows: echo({ v: rows }), any: echo({ v: any }) }),
);
const good = () => ({ n: 1, label: 'a', rows: [1, 2], any: { ok: true } });
const double = task({ name: 'fuzz.inputs.double', inputs: { x: z.number() }, output: z.number() }, ({ x }) => x * 2);
const healthy = workflow({ name: 'fuzz.inputs.healthy', inputs: { x: z.number() } }, ({ x }) => ({ y: double({ x }) }));

/** Thrown by a generated hash function: user code can throw anything. */
const thrownBigInt: unknown = 5n;

/** A call of `mf.run` with one mistake, and what the refusal must name; or a good call that must run. */
interface Case {
  what: string;
  call: (mf: Memoflow) => Promise<unknown>;
  refused?: Subject;
  /** A good edge value: the run must succeed with these outputs. */
  succeeds?: { [name: string]: unknown };
}

const run = (inputs: unknown, options?: unknown) => (mf: Memoflow) => mf.run(main, inputs as never, options as never);
const typed = { n: 'n', label: 'label', rows: 'rows' } as const;
const wrongFor: { [K in keyof typeof typed]: fc.Arbitrary<unknown> } = {
  n: fc.oneof(fc.string(), fc.boolean(), fc.constantFrom(null, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60, 5n, [], {}, '1')),
  label: fc.oneof(fc.double(), fc.boolean(), fc.constantFrom(null, 5n, ['a'], { s: 'a' })),
  rows: fc.oneof(fc.string(), fc.double(), fc.constantFrom(null, {}, { 0: 1, length: 1 }), fc.array(fc.oneof(fc.string(), fc.boolean()), { minLength: 1, maxLength: 3 })),
};

const cases: fc.Arbitrary<Case> = fc.oneof(
  // A value no JSON or store can hold, somewhere inside `any` or `rows`.
  fc.tuple(badValue, fc.constantFrom('any', 'rows')).map(([bad, input]): Case => {
    const inputs = { ...good(), [input]: input === 'rows' ? [1, bad.value] : bad.value };
    const at = input === 'rows' ? { ...bad, path: `[1]${bad.path}` } : bad;
    // `rows` is a typed array: zod's own path ('rows.1') names a wrong type inside it.
    const field = input === 'rows' ? inside('rows') : fieldOf('any', at);
    return { what: `${bad.label} in '${input}'`, call: run(inputs), refused: { workflow: WORKFLOW, field, ...(input === 'any' ? { says: bad.says } : {}) } };
  }),
  // A value of the wrong type for a typed input.
  fc.constantFrom(...(Object.keys(typed) as (keyof typeof typed)[])).chain((input) =>
    wrongFor[input].map((value): Case => ({ what: `${input} = ${String(typeof value)}`, call: run({ ...good(), [input]: value }), refused: { workflow: WORKFLOW, field: inside(input), code: 'INPUT_SCHEMA_MISMATCH' } })),
  ),
  // A required input left out (or given as undefined).
  // (Not `any`: z.any() admits undefined, so memoflow counts it optional while zod's object refuses the gap.)
  fc.tuple(fc.constantFrom('n', 'label', 'rows'), fc.boolean()).map(([input, asUndefined]): Case => {
    const inputs: { [name: string]: unknown } = good();
    if (asUndefined) inputs[input] = undefined;
    else delete inputs[input];
    return { what: `missing ${input}`, call: run(inputs), refused: { workflow: WORKFLOW, field: input, code: 'MISSING_INPUT' } };
  }),
  // An input the workflow does not have: a plain name, or one every object inherits.
  fc.oneof(fc.stringMatching(/^[a-z][a-zA-Z0-9_]{0,8}$/).filter((name) => !(name in good()) && name !== 'maybe'), fc.constantFrom('toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__', '__defineGetter__')).map(
    (name): Case => {
      const inputs: { [name: string]: unknown } = good();
      Object.defineProperty(inputs, name, { value: 1, enumerable: true, configurable: true, writable: true });
      return { what: `unknown input ${name}`, call: run(inputs), refused: { workflow: WORKFLOW, field: name, code: 'UNKNOWN_INPUT' } };
    },
  ),
  // Inputs that are not an object of inputs.
  fc.constantFrom<unknown>(null, undefined, 5, 'n=1', [], [good()], 5n, true).map((inputs): Case => ({ what: `inputs ${String(inputs)}`, call: run(inputs), refused: { workflow: WORKFLOW } })),
  // Bad run options: a project or domain no key may hold, options that are not an object.
  fc
    .tuple(fc.constantFrom('project', 'domain'), fc.oneof(fc.string().filter((s) => !/^[A-Za-z0-9_.-]+$/.test(s)), fc.constantFrom<unknown>(5, 5n, null, {}, [], true)))
    .map(([option, value]): Case => ({ what: `${option} ${String(typeof value)}`, call: run(good(), { [option]: value }), refused: { workflow: WORKFLOW, field: option } })),
  fc.constantFrom<unknown>(null, 5, 'fast', [], true, 5n).map((options): Case => ({ what: `options ${String(options)}`, call: run(good(), options), refused: { workflow: WORKFLOW, field: 'options' } })),
  fc.constantFrom<unknown>('yes', 1, null, {}).map((value): Case => ({ what: `overwriteCache ${String(value)}`, call: run(good(), { overwriteCache: value }), refused: { workflow: WORKFLOW, field: 'overwriteCache' } })),
  // An input whose hashWith function throws or returns no usable hash.
  fc.constantFrom<[string, (value: string) => unknown]>(
    ['returns a number', () => 5],
    ['returns an empty string', () => ''],
    ['returns a BigInt', () => 5n],
    ['returns undefined', () => undefined],
    ['throws', () => { throw new Error('hash broke'); }],
    ['throws 5n', () => { throw thrownBigInt; }],
  ).map(([how, hash]): Case => {
    const flow = workflow({ name: `${WORKFLOW}.hashed`, inputs: { h: hashWith(z.string(), hash as (value: string) => string) } }, ({ h }) => ({ h: echo({ v: h }) }));
    return { what: `a hashWith function that ${how}`, call: (mf) => mf.run(flow, { h: 'x' }), refused: { workflow: `${WORKFLOW}.hashed`, field: 'h', code: 'INVALID_SPEC' } };
  }),
  // Not a workflow at all.
  fc.constantFrom<unknown>({}, null, undefined, 5, 'fuzz.inputs.main', echo, () => ({}), { kind: 'workflow' }).map((value): Case => ({
    what: `mf.run(${typeof value})`,
    call: (mf) => mf.run(value as never, good() as never),
    refused: { field: 'workflow', code: 'INVALID_SPEC' },
  })),
  // Good edge values: they run, and come back as they went in.
  fc
    .oneof(
      fc.constant({ n: -0 }),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }).map((label) => ({ label })),
      fc.integer({ min: 10_000, max: 200_000 }).map((length) => ({ label: 'é'.repeat(length) })),
      fc.integer({ min: 1, max: 900 }).map((levels) => ({ any: Array.from({ length: levels }).reduce<unknown>((inner) => [inner], 'leaf') })),
      fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('__proto__')).map((any) => ({ any })),
    )
    .map((patch): Case => {
      const inputs = { ...good(), ...patch };
      // JSON is what a run keeps: -0 comes back as 0.
      const expected = JSON.parse(JSON.stringify({ n: inputs.n, label: inputs.label, rows: inputs.rows, any: inputs.any })) as { [name: string]: unknown };
      return { what: `good edge value ${Object.keys(patch).join()}`, call: run(inputs), succeeds: expected };
    }),
);

/** Registers the property on a connection the caller opens (api.fuzz.test.ts shares one). */
export function fuzzRunInputs(t: { readonly mf: Memoflow }): void {
  it('each is refused before anything runs, naming the workflow and the input; good edge values run', async () => {
    const runsBefore = (await t.mf.runs.list({ limit: 10_000 })).length;
    let submitted = 0;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        if (c.succeeds !== undefined) {
          const handle = await within(c.call(t.mf) as ReturnType<Memoflow['run']>, 10_000, c.what);
          submitted++;
          expect(await within(handle.result(), 10_000, `the run of ${c.what}`)).toEqual(c.succeeds);
          return;
        }
        const error = await within(caught(() => c.call(t.mf)), 10_000, c.what);
        expectNamesItsSubject(error, c.refused ?? {});
      }),
      fuzzParameters(300),
    );
    // Nothing refused was submitted, and the connection still runs a good workflow.
    expect(await t.mf.runs.list({ limit: 10_000 })).toHaveLength(runsBefore + submitted);
    expect(await within((await t.mf.run(healthy, { x: 21 })).result(), 10_000, 'a good run after the fuzzing')).toEqual({ y: 42 });
  }, 120_000);
}
