/**
 * Fuzz (issue 8, item 16): generated task behaviours, run for real in the embedded mode. A body
 * returns what cannot be stored (at a generated path), throws what is not an Error (5n, a cycle,
 * an object whose toJSON throws, an Error whose message getter throws...), hangs past its
 * timeout, returns an output its schema refuses, or behaves (at once, late, after failing once).
 * Properties: every run ends within a bound; it ends `failed` or `succeeded` as the behaviour
 * says, with the attempts its retries allow; a failure names the node and its task (and the
 * output's field where there is one) in the node's error, the run's error and `result()`'s
 * rejection; nothing of a failed node is cached; and the connection then runs a good workflow.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { NonRetryableError, hashWith, task, workflow, z, type Memoflow, type TaskContext } from '@memoflow/sdk';
import { badValue } from './bad-values.js';
import { describe as show } from './bad-options.js';
import { fuzzParameters, within } from './fuzz-settings.js';
import { caught, expectNamesItsSubject } from './names-its-subject.js';

type BehaviourBody = (attempt: number, context: TaskContext) => unknown;

interface Behaviour {
  what: string;
  body: BehaviourBody;
  output: z.ZodType;
  retries: number;
  timeoutMs?: number;
  outcome: 'succeeded' | 'failed';
  /** Attempts the node must have made. */
  attempts: number;
  /** What the failure must say. */
  says?: RegExp;
  /** A field the node's error must name. */
  field?: string;
}

const retries = fc.integer({ min: 0, max: 2 });
const sync = fc.boolean();

/** A body doing `act` synchronously or after an await (a thrown value becomes a rejection). */
function timed(isSync: boolean, act: () => unknown): BehaviourBody {
  return isSync ? () => act() : async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return act();
  };
}

const thrown = fc.constantFrom<[string, () => unknown, RegExp]>(
  ['5n', () => 5n, /5n/],
  ['null', () => null, /null/],
  ['undefined', () => undefined, /undefined/],
  ['a string', () => 'plain words', /plain words/],
  ['a symbol', () => Symbol('thrown'), /Symbol\(thrown\)/],
  ['a function', () => () => 1, /a function/],
  ['a cyclic object', () => { const c: { [k: string]: unknown } = {}; c['self'] = c; return c; }, /unserialisable value/],
  ['an object whose toJSON throws', () => ({ toJSON: () => { throw new Error('no JSON'); } }), /unserialisable value/],
  ['an Error whose message getter throws', () => { const e = new Error('x'); Object.defineProperty(e, 'message', { get: () => { throw new Error('getter'); } }); return e; }, /message cannot be read/],
  ['an Error whose name getter throws', () => { const e = new Error('named'); Object.defineProperty(e, 'name', { get: () => { throw new Error('getter'); } }); return e; }, /named/],
  ['an Error whose stack getter throws', () => { const e = new Error('stacked'); Object.defineProperty(e, 'stack', { get: () => { throw new Error('getter'); } }); return e; }, /stacked/],
  ['a revoked proxy', () => { const p = Proxy.revocable({}, {}); p.revoke(); return p.proxy; }, /.+/],
  ['an Error with U+0000 and a lone surrogate', () => new Error(`bad\u0000 ${'😀'.slice(0, 1)}`), /bad\uFFFD \uFFFD/],
  ['an Error with a 1 MB message', () => new Error('m'.repeat(1_000_000)), /m{100}/],
  ['an Error with a BigInt code and a cyclic cause', () => { const e = new Error('odd fields') as Error & { code?: unknown }; e.code = 5n; e.cause = e; return e; }, /odd fields/],
  ['a frozen Error', () => Object.freeze(new Error('frozen')), /frozen/],
);

const behaviours: fc.Arbitrary<Behaviour> = fc.oneof(
  // Returns what no JSON or store keeps: the node fails once (no retry can change it).
  fc.tuple(badValue, sync).map(([bad, isSync]): Behaviour => ({
    what: `returns ${bad.label}`,
    body: timed(isSync, () => bad.value),
    output: z.any(),
    retries: 2,
    outcome: 'failed',
    attempts: 1,
    says: bad.says,
    ...(bad.exact ? { field: `output${bad.path}` } : {}),
  })),
  fc.constant<Behaviour>({ what: 'returns undefined for an output', body: () => undefined, output: z.any(), retries: 1, outcome: 'failed', attempts: 1, says: /undefined is not JSON/, field: 'output' }),
  // Throws what is not an Error (or an Error that fights back): each attempt fails normally.
  fc.tuple(thrown, retries, sync).map(([[label, make, says], r, isSync]): Behaviour => ({
    what: `throws ${label} (retries ${r})`,
    body: timed(isSync, () => {
      throw make();
    }),
    output: z.number(),
    retries: r,
    outcome: 'failed',
    attempts: r + 1,
    says,
  })),
  fc.tuple(retries, sync).map(([r, isSync]): Behaviour => ({
    what: `throws NonRetryableError (retries ${r})`,
    body: timed(isSync, () => {
      throw new NonRetryableError('give up');
    }),
    output: z.number(),
    retries: r,
    outcome: 'failed',
    attempts: 1,
    says: /give up/,
  })),
  // Hangs past its timeout, ignoring or honouring the abort signal.
  fc.tuple(fc.integer({ min: 20, max: 60 }), fc.integer({ min: 0, max: 1 }), fc.boolean()).map(([timeoutMs, r, honours]): Behaviour => ({
    what: `hangs past a ${timeoutMs} ms timeout (${honours ? 'honours' : 'ignores'} the signal, retries ${r})`,
    body: (_attempt, context) =>
      new Promise((_resolve, reject) => {
        if (honours) context.signal.addEventListener('abort', () => reject(new Error('aborted')));
      }),
    output: z.number(),
    retries: r,
    timeoutMs,
    outcome: 'failed',
    attempts: r + 1,
    says: /timed out after/,
  })),
  // Returns an output its schema refuses.
  fc
    .constantFrom<[z.ZodType, unknown]>([z.number(), 'seven'], [z.number(), null], [z.object({ a: z.string() }), { a: 1 }], [z.array(z.number()), [1, 'x']], [z.string().min(3), 'ab'], [z.boolean(), 0])
    .chain(([output, value]) =>
      sync.map((isSync): Behaviour => ({ what: `returns ${show(value)} for its output schema`, body: timed(isSync, () => value), output, retries: 2, outcome: 'failed', attempts: 1, says: /does not match its output schema/ })),
    ),
  // Its output's hashWith function throws or returns no usable hash.
  fc.constantFrom<[string, () => unknown]>(['returns a number', () => 5], ['returns an empty string', () => ''], ['returns a BigInt', () => 5n], ['throws', () => { throw new Error('hash broke'); }]).map(([how, hash]): Behaviour => ({
    what: `has an output whose hashWith function ${how}`,
    body: () => 1,
    output: hashWith(z.number(), hash as () => string),
    retries: 1,
    outcome: 'failed',
    // A hash function that throws is retried as its error would be; a wrong hash is final.
    attempts: how === 'throws' ? 2 : 1,
    says: /hashWith function/,
    field: 'output',
  })),
  // Behaves: at once, after a wait, or after failing its first attempt.
  fc.tuple(fc.jsonValue({ maxDepth: 2 }).filter((value) => !JSON.stringify(value).includes('__proto__')), sync).map(([value, isSync]): Behaviour => ({ what: `returns ${show(value)}`, body: timed(isSync, () => value), output: z.any(), retries: 0, outcome: 'succeeded', attempts: 1 })),
  fc.tuple(thrown, fc.integer({ min: 1, max: 2 })).map(([[label, make], r]): Behaviour => ({
    what: `throws ${label} on its first attempt, then succeeds (retries ${r})`,
    body: (attempt) => {
      if (attempt === 1) throw make();
      return 7;
    },
    output: z.number(),
    retries: r,
    outcome: 'succeeded',
    attempts: 2,
  })),
);

let serial = 0;
const double = task({ name: 'fuzz.behave.double', inputs: { x: z.number() }, output: z.number() }, ({ x }) => x * 2);
const healthy = workflow({ name: 'fuzz.behave.healthy', inputs: { x: z.number() } }, ({ x }) => ({ y: double({ x }) }));

/** Registers the property on a connection the caller opens (api.fuzz.test.ts shares one). */
export function fuzzTaskBehaviours(t: { readonly mf: Memoflow }): void {
  it('every run ends as its task behaves, failures name node, task and field, and the connection stays healthy', async () => {
    await fc.assert(
      fc.asyncProperty(behaviours, async (b) => {
        const n = ++serial;
        const taskName = `fuzz.behave.t${n}`;
        const nodeId = `t${n}`;
        let attempt = 0;
        const subject = task(
          { name: taskName, inputs: { n: z.number() }, output: b.output, retries: b.retries, cache: { version: '1' }, ...(b.timeoutMs === undefined ? {} : { timeout: b.timeoutMs }) },
          (_inputs, context) => b.body(++attempt, context) as never,
        );
        const flowName = `fuzz.behave.w${n}`;
        const flow = workflow({ name: flowName, inputs: { n: z.number() } }, ({ n: input }) => ({ out: subject({ n: input }) }));
        const run = await within(t.mf.run(flow, { n }), 10_000, `submitting a task that ${b.what}`);
        const report = await within(run.wait(), 15_000, `a run whose task ${b.what}`);
        expect(report.status, JSON.stringify(report.error)).toBe(b.outcome);
        const node = report.nodes.find((each) => each.id === nodeId);
        expect(node?.attempts).toBe(b.attempts);
        if (b.outcome === 'failed') {
          expect(node?.status).toBe('failed');
          expect(node?.error?.message).toMatch(b.says ?? /./);
          if (b.field !== undefined) expect(node?.error?.message).toContain(`field '${b.field}'`);
          // The run's error says which node (and task) failed, and result() rejects naming the workflow too.
          expect(report.error?.message).toContain(`node '${nodeId}' (${taskName}) failed: `);
          expect(report.error?.message).not.toMatch(/failed: $/);
          expectNamesItsSubject(await caught(() => run.result()), { workflow: flowName, node: nodeId, code: 'RUN_FAILED' });
          expect(await t.mf.cache.list({ task: taskName })).toEqual([]);
        }
        expect(await within((await t.mf.run(healthy, { x: n })).result(), 10_000, `a good run after a task that ${b.what}`)).toEqual({ y: 2 * n });
      }),
      fuzzParameters(120),
    );
  }, 180_000);
}
