/**
 * Fuzz (issue 8, item 16): generated bad workflow definitions, run through `mf.run`: options and
 * names of every wrong type, bodies that are not functions, throw (anything), return the wrong
 * thing or are async; outputs holding values no store keeps; task calls with unbound, unknown
 * (inherited names included), mistyped or unstorable inputs; references used as plain values;
 * bad `.withOverrides()`; two tasks under one name; workflows that call themselves. Each must be
 * refused before anything runs with a MemoflowError naming the workflow, the node and the field
 * where there is one, never a TypeError or a stack overflow.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { task, workflow, z, type AnyWorkflow, type Memoflow } from '@memoflow/sdk';
import { badValue, fieldOf } from './bad-values.js';
import { anyWrongType, badName, describe as show, settingMistake } from './bad-options.js';
import { fuzzParameters, within } from './fuzz-settings.js';
import { caught, expectNamesItsSubject, inside, type Subject } from './names-its-subject.js';

/** Names of one case: a workflow and the tasks it calls, unique across cases. */
interface Names {
  workflow: string;
  /** The called task's name and its node id (a name's last segment). */
  task: string;
  node: string;
}

interface Case {
  what: string;
  /** Defines the workflow (throwing where a definition is refused) and says what must be named. */
  build(names: Names): { define: () => AnyWorkflow; refused: Subject };
}

let serial = 0;
function freshNames(): Names {
  const n = ++serial;
  return { workflow: `fuzz.wfdef.w${n}`, task: `fuzz.wfdef.t${n}`, node: `t${n}` };
}

/** The task a case's workflow calls: a number in, an object out (fields can be read). */
function makeTask(names: Names) {
  return task({ name: names.task, inputs: { x: z.number(), v: z.any().optional() }, output: z.object({ a: z.number() }), cache: { version: '1' } }, ({ x }) => ({ a: x }));
}
const words = task({ name: 'fuzz.wfdef.words', inputs: { s: z.string() }, output: z.array(z.string()) }, ({ s }) => s.split(' '));

/** A case whose body calls the task: `call(t, inputs)` makes the call, with the mistake in it. */
const calling = (what: string, call: (t: ReturnType<typeof makeTask>, inputs: { [name: string]: unknown }, names: Names) => unknown, refused: (names: Names) => Subject): Case => ({
  what,
  build(names) {
    const t = makeTask(names);
    return { define: () => workflow({ name: names.workflow, inputs: { n: z.number(), s: z.string() } }, (inputs) => ({ out: call(t, inputs, names) as never })), refused: refused(names) };
  },
});

const thrownByBody = fc.constantFrom<() => unknown>(
  () => new Error('no config'),
  () => new TypeError('rows is undefined'),
  () => 5n,
  () => null,
  () => undefined,
  () => 'a string',
  () => Symbol('thrown'),
  () => {
    const cyclic: { [key: string]: unknown } = {};
    cyclic['self'] = cyclic;
    return cyclic;
  },
  () => ({ toJSON: () => { throw new Error('no JSON'); } }),
  () => {
    const error = new Error('x');
    Object.defineProperty(error, 'message', { get: () => { throw new Error('getter'); } });
    return error;
  },
);

const notAnOutputsObject = fc.constantFrom<unknown>(null, undefined, 5, 'out', [], [1], 5n, () => ({}), Promise.resolve({}));

const inheritedOrUnknown = fc.oneof(fc.constantFrom('toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__'), fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/).filter((name) => name !== 'x' && name !== 'v'));

const cases: fc.Arbitrary<Case> = fc.oneof(
  // The options themselves.
  fc.oneof(anyWrongType.filter((value) => !(typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype)), fc.constantFrom<unknown>(undefined, 'fuzz.w', 5)).map((options): Case => ({
    what: `workflow(${show(options)}, body)`,
    build: () => ({ define: () => workflow(options as never, () => ({})), refused: { field: 'options', code: 'INVALID_SPEC' } }),
  })),
  badName.map((name): Case => ({ what: `workflow name ${show(name)}`, build: () => ({ define: () => workflow({ name: name as string, inputs: {} }, () => ({})), refused: { field: 'name', code: 'INVALID_SPEC' } }) })),
  fc.oneof(anyWrongType.filter((value) => !(typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype)), fc.constantFrom<unknown>(5, 'n')).map((inputs): Case => ({
    what: `workflow inputs ${show(inputs)}`,
    build: (names) => ({ define: () => workflow({ name: names.workflow, inputs: inputs as never }, () => ({})), refused: { workflow: names.workflow, field: 'inputs' } }),
  })),
  fc.oneof(anyWrongType.filter((value) => value !== undefined), fc.constantFrom<unknown>({ type: 'number' }, 'number', z.date(), z.bigint())).map((schema): Case => ({
    what: `workflow input schema ${show(schema)}`,
    build: (names) => ({ define: () => workflow({ name: names.workflow, inputs: { n: schema as never } }, () => ({})), refused: { workflow: names.workflow, field: inside('inputs.n') } }),
  })),
  fc.constantFrom('n\u0000', `n${'😀'.slice(0, 1)}`).map((input): Case => ({
    what: `workflow input named ${JSON.stringify(input)}`,
    build: (names) => ({ define: () => workflow({ name: names.workflow, inputs: { [input]: z.number() } }, () => ({})), refused: { workflow: names.workflow, field: 'inputs' } }),
  })),
  // The body.
  fc.oneof(anyWrongType.filter((value) => typeof value !== 'function'), fc.constantFrom<unknown>(undefined, '() => ({})')).map((body): Case => ({
    what: `workflow body ${show(body)}`,
    build: (names) => ({ define: () => workflow({ name: names.workflow, inputs: {} }, body as never), refused: { workflow: names.workflow, field: 'body', code: 'INVALID_SPEC' } }),
  })),
  thrownByBody.map((make): Case => ({
    what: `the body throws ${show(make())}`,
    build: (names) => ({
      define: () =>
        workflow({ name: names.workflow, inputs: {} }, () => {
          throw make();
        }),
      refused: { workflow: names.workflow, field: 'body', code: 'INVALID_SPEC' },
    }),
  })),
  notAnOutputsObject.map((returned): Case => ({
    what: `the body returns ${show(returned)}`,
    build: (names) => ({ define: () => workflow({ name: names.workflow, inputs: {} }, () => returned as never), refused: { workflow: names.workflow, code: 'INVALID_SPEC' } }),
  })),
  // Outputs.
  badValue.map((bad): Case => ({
    what: `an output literal with ${bad.label}`,
    build: (names) => ({ define: () => workflow({ name: names.workflow, inputs: {} }, () => ({ out: bad.value as never })), refused: { workflow: names.workflow, field: fieldOf('outputs.out', bad) } }),
  })),
  fc.constantFrom('__proto__', 'o\u0000', `o${'😀'.slice(1)}`).map((output): Case => ({
    what: `an output named ${JSON.stringify(output)}`,
    build: (names) => {
      const outputs = {};
      Object.defineProperty(outputs, output, { value: 1, enumerable: true });
      return { define: () => workflow({ name: names.workflow, inputs: {} }, () => outputs), refused: { workflow: names.workflow, field: output === '__proto__' ? 'outputs.__proto__' : 'outputs' } };
    },
  })),
  // Task calls.
  fc.constant(calling('an unbound input', (t) => t({} as never), (n) => ({ workflow: n.workflow, node: n.node, field: 'x', code: 'UNBOUND_INPUT' }))),
  inheritedOrUnknown.map((name) =>
    calling(
      `an unknown input ${name}`,
      (t, { n }) => {
        const inputs = { x: n };
        Object.defineProperty(inputs, name, { value: 1, enumerable: true });
        return t(inputs as never);
      },
      (n) => ({ workflow: n.workflow, node: n.node, field: name, code: 'UNKNOWN_INPUT' }),
    ),
  ),
  fc.constantFrom<unknown>(null, undefined, 5, 'x', 5n, true, [1]).map((inputs) => calling(`a call with ${show(inputs)}`, (t) => t(inputs as never), (n) => ({ workflow: n.workflow, node: n.node }))),
  fc.oneof(fc.string(), fc.boolean(), fc.constantFrom<unknown>(null, Number.NaN, Number.POSITIVE_INFINITY, 5n, [1], { a: 1 }, () => 1)).map((x) =>
    calling(`a literal x = ${show(x)}`, (t) => t({ x: x as number }), (n) => ({ workflow: n.workflow, node: n.node, field: inside('x') })),
  ),
  badValue.map((bad) => calling(`a literal v with ${bad.label}`, (t) => t({ x: 1, v: bad.value }), (n) => ({ workflow: n.workflow, node: n.node, field: fieldOf('v', bad) }))),
  fc.constant(calling('a reference of the wrong type', (t, { s }) => t({ x: words({ s: s as string }) as never }), (n) => ({ workflow: n.workflow, node: n.node, field: 'x', code: 'TYPE_MISMATCH' }))),
  fc.constant(calling('a field the output does not have', (t, { n }) => t({ x: (t({ x: n as number }) as unknown as { nope: never }).nope }), (n) => ({ workflow: n.workflow, field: 'x', code: 'TYPE_MISMATCH' }))),
  fc.constant(calling('the task itself as a value', (t) => t({ x: t as never }), (n) => ({ workflow: n.workflow, node: n.node, field: 'x', code: 'TYPE_MISMATCH' }))),
  fc
    .constantFrom<[string, (ref: unknown) => unknown]>(['a template string', (ref) => `${String(ref)}!`], ['arithmetic', (ref) => (ref as number) + 1], ['JSON.stringify', (ref) => JSON.stringify(ref)], ['Number()', (ref) => Number(ref)])
    .chain(([how, use]) =>
      fc.constantFrom(
        calling(`a workflow input used in ${how}`, (t, { n }) => t({ x: use(n) as number }), (n) => ({ workflow: n.workflow, field: 'n', code: 'INVALID_SPEC' })),
        calling(`a task output used in ${how}`, (t, { n }) => t({ x: use(t({ x: n as number })) as number }), (n) => ({ workflow: n.workflow, node: n.node, code: 'INVALID_SPEC' })),
      ),
    ),
  // Overrides.
  settingMistake.map((mistake) =>
    calling(
      `withOverrides: ${mistake.label}`,
      (t, { n }) => {
        const overrides: { [key: string]: unknown } = {};
        mistake.apply(overrides);
        return t({ x: n as number }).withOverrides(overrides);
      },
      (n) => ({ workflow: n.workflow, node: n.node, field: mistake.field, ...(mistake.code === undefined ? {} : { code: mistake.code }) }),
    ),
  ),
  fc.constantFrom<unknown>(null, 5, 'cache', [], 5n, true).map((overrides) =>
    calling(`withOverrides(${show(overrides)})`, (t, { n }) => t({ x: n as number }).withOverrides(overrides as never), (n) => ({ workflow: n.workflow, node: n.node, field: 'overrides' })),
  ),
  // Two tasks, one name; a workflow that calls itself.
  fc.constant<Case>({
    what: 'two different tasks under one name',
    build: (names) => {
      const [one, two] = [makeTask(names), makeTask(names)];
      return { define: () => workflow({ name: names.workflow, inputs: {} }, () => ({ a: one({ x: 1 }), b: two({ x: 2 }) })), refused: { workflow: names.workflow, node: names.task, field: 'name', code: 'DUPLICATE_TASK_NAME' } };
    },
  }),
  fc.integer({ min: 1, max: 4 }).map((length): Case => ({
    what: `a cycle of ${length} workflow(s) calling each other`,
    build: (names) => {
      const ring: AnyWorkflow[] = [];
      const ringNames = Array.from({ length }, (_, i) => `${names.workflow}.r${i}`);
      for (const [i, name] of ringNames.entries()) {
        ring.push(workflow({ name, inputs: {} }, () => ({ next: (ring[(i + 1) % length] as unknown as (inputs: object) => unknown)({}) as never })));
      }
      // Traced from the first: the last one calls it back.
      return { define: () => ring[0] as AnyWorkflow, refused: { workflow: ringNames[length - 1] as string, code: 'CYCLE_IN_WORKFLOW', says: new RegExp(`'${ringNames[0] as string}'`) } };
    },
  })),
);

/** Registers the property on a connection the caller opens (api.fuzz.test.ts shares one). */
export function fuzzWorkflowDefinitions(t: { readonly mf: Memoflow }): void {
  it('each is refused before anything runs, naming the workflow, node and field', async () => {
    const runsBefore = (await t.mf.runs.list({ limit: 10_000 })).length;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const { define, refused } = c.build(freshNames());
        const error = await within(
          caught(async () => {
            const defined = define();
            await (await t.mf.run(defined, { n: 1, s: 'a' })).result();
          }),
          10_000,
          c.what,
        );
        expectNamesItsSubject(error, refused);
      }),
      fuzzParameters(300),
    );
    expect(await t.mf.runs.list({ limit: 10_000 })).toHaveLength(runsBefore);
  }, 120_000);
}
