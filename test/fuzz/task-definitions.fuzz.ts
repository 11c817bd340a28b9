/**
 * Fuzz (issue 8, item 16): generated bad `task()` and `dynamic()` definitions: options that are not
 * an object, bad names, inputs and outputs that are not zod or not JSON, bodies that are not
 * functions, retries, timeouts and cache options of every wrong type and value, a dynamic's
 * `tasks` that are not tasks. Each must be refused with a MemoflowError naming the task and the
 * field (never a TypeError from reading the bad value), within a bound. Generated weird-but-valid
 * settings (timeouts past Node's timer limit, huge TTLs, a retries of -0) must run and succeed on
 * the same connection, which must still run a good workflow at the end.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { dynamic, task, workflow, z, type AnyWorkflow, type Memoflow } from '@memoflow/sdk';
import { anyWrongType, definitionMistake, describe as show, settingMistake, type OptionMistake } from './bad-options.js';
import { fuzzParameters, within } from './fuzz-settings.js';
import { caught, expectNamesItsSubject, type Subject } from './names-its-subject.js';

type Kind = 'task' | 'dynamic';
type Options = { [key: string]: unknown };

let serial = 0;
const child = task({ name: 'fuzz.taskdef.child', inputs: { x: z.number() }, output: z.number() }, ({ x }) => x + 1);
const goodBody = ({ x }: { x: number }) => x * 2;
const dynamicBody = ({ x }: { x: number }) => child({ x });

/** Good options of a task (or dynamic) named `name`, with its cache on and pinned. */
function goodOptions(kind: Kind, name: string): Options {
  return { name, inputs: { x: z.number() }, output: z.number(), cache: { version: '1' }, ...(kind === 'dynamic' ? { tasks: [child] } : {}) };
}

function define(kind: Kind, options: unknown, body: unknown): unknown {
  return kind === 'task' ? task(options as never, body as never) : dynamic(options as never, body as never);
}

/** A workflow running the defined task once, so a definition that slips through is run. */
function around(defined: unknown, name: string): AnyWorkflow {
  const node = defined as (inputs: { x: unknown }) => unknown;
  return workflow({ name: `${name}.flow`, inputs: { x: z.number() } }, ({ x }) => ({ y: node({ x }) as never }));
}

interface Case {
  what: string;
  kind: Kind;
  /** Builds the options and body for a task named `name`; the subject its refusal must name. */
  build(name: string): { options: unknown; body: unknown; refused: Subject };
}

const fromMistake = (kind: Kind, mistake: OptionMistake): Case => ({
  what: `${kind}: ${mistake.label}`,
  kind,
  build(name) {
    const options = goodOptions(kind, name);
    mistake.apply(options);
    const subject: Subject = mistake.field === 'name' ? { field: 'name' } : { node: name, field: mistake.field };
    return { options, body: kind === 'task' ? goodBody : dynamicBody, refused: { ...subject, ...(mistake.code === undefined ? {} : { code: mistake.code }) } };
  },
});

const kinds = fc.constantFrom<Kind>('task', 'dynamic');
const badBody = fc.oneof(
  anyWrongType.filter((value) => typeof value !== 'function'),
  fc.constantFrom<unknown>(undefined, 'x => x', class Body {}, class {}),
);
const badTasks = fc.oneof(
  anyWrongType.filter((value) => value !== null && !Array.isArray(value)),
  fc.constantFrom<unknown>(5, 'fuzz.taskdef.child', [5], [null], [{}], ['fuzz.taskdef.child'], [() => 1], [child, undefined], [{ kind: 'task' }]),
);

const cases: fc.Arbitrary<Case> = fc.oneof(
  fc.tuple(kinds, fc.oneof(settingMistake, definitionMistake)).map(([kind, mistake]) => fromMistake(kind, mistake)),
  fc.tuple(kinds, badBody).map(([kind, body]): Case => ({
    what: `${kind}: body ${show(body)}`,
    kind,
    build: (name) => ({ options: goodOptions(kind, name), body, refused: { node: name, field: 'body', code: 'INVALID_SPEC' } }),
  })),
  fc.tuple(kinds, fc.oneof(anyWrongType.filter((value) => !(typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype)), fc.constantFrom<unknown>(undefined, 'fuzz.t', 5))).map(
    ([kind, options]): Case => ({ what: `${kind}(${show(options)}, body)`, kind, build: () => ({ options, body: goodBody, refused: { field: 'options', code: 'INVALID_SPEC' } }) }),
  ),
  badTasks.map((tasks): Case => ({
    what: `dynamic: tasks ${show(tasks)}`,
    kind: 'dynamic',
    build: (name) => ({ options: { ...goodOptions('dynamic', name), tasks }, body: dynamicBody, refused: { node: name, field: 'tasks' } }),
  })),
);

/** Settings that look odd but are valid: they must be kept and the task must run. */
const oddButValid = fc.oneof(
  fc.constantFrom<Options>(
    { timeout: '25d' },
    { timeout: '4w' },
    { timeout: 1e12 },
    { timeout: 2 ** 31 },
    { timeout: ' 5 s ' },
    { timeout: '1.5m' },
    { retries: -0 },
    { retries: 100 },
    { cache: true },
    { cache: false },
    { cache: { enabled: false } },
    { cache: { version: '1', ttl: 1e300 } },
    { cache: { version: '1', ttl: '52w' } },
    { cache: { version: 'v-1.2_3', ignoreInputs: [] } },
    { cache: { version: '1', ignoreInputs: ['x'] } },
  ),
  fc.double({ min: 10_000, max: 1e15, noNaN: true }).map((timeout): Options => ({ timeout })),
  fc.tuple(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom('ms', 's', 'm', 'h', 'd', 'w')).map(([n, unit]): Options => ({ cache: { version: '1', ttl: `${n}${unit}` } })),
);

/** Registers the properties on a connection the caller opens (api.fuzz.test.ts shares one). */
export function fuzzTaskDefinitions(t: { readonly mf: Memoflow }): void {
  it('each is refused when defined, naming the task and the field, never a TypeError', async () => {
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const name = `fuzz.taskdef.t${++serial}`;
        const { options, body, refused } = c.build(name);
        const error = await within(
          caught(async () => {
            const defined = define(c.kind, options, body);
            // Slipped through: running it shows what happens to such a definition.
            await (await t.mf.run(around(defined, name), { x: 1 })).result();
          }),
          10_000,
          c.what,
        );
        expectNamesItsSubject(error, refused);
      }),
      fuzzParameters(300),
    );
  }, 120_000);

  it('odd but valid settings are kept, and the task runs', async () => {
    await fc.assert(
      fc.asyncProperty(kinds, oddButValid, async (kind, settings) => {
        const name = `fuzz.taskdef.ok${++serial}`;
        // A dynamic's body calls `child` from outside itself: caching it needs a pinned version.
        const pinned = kind === 'dynamic' && settings['cache'] === true ? { cache: { version: '1' } } : {};
        const options = { ...goodOptions(kind, name), ...settings, ...pinned };
        const defined = define(kind, options, kind === 'task' ? goodBody : dynamicBody);
        const run = await within(t.mf.run(around(defined, name), { x: 1 }), 10_000, `submitting ${show(settings)}`);
        expect(await within(run.result(), 10_000, `the run with ${show(settings)}`)).toEqual({ y: 2 });
      }),
      fuzzParameters(40),
    );
    const healthy = workflow({ name: 'fuzz.taskdef.healthy', inputs: { x: z.number() } }, ({ x }) => ({ y: child({ x }) }));
    expect(await (await t.mf.run(healthy, { x: 1 })).result()).toEqual({ y: 2 });
  }, 120_000);
}
