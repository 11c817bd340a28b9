import { describe, expect, it } from 'vitest';
import { MemoflowError, hashJson, type Json } from '@memoflow/engine';
import { z } from 'zod';
import { hashWith } from './hash-with.js';
import { task } from './task.js';
import { workflow } from './workflow.js';

const inc = task({ name: 'm.inc', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x + 1);
const pair = task({ name: 'm.pair', inputs: { x: z.number() }, output: z.object({ a: z.number(), b: z.string() }) }, async ({ x }) => ({ a: x, b: String(x) }));
const join = task({ name: 'm.join', inputs: { xs: z.array(z.number()), label: z.string() }, output: z.string() }, async ({ xs, label }) => `${label}${xs.join()}`);

describe('tracing a workflow into a spec', () => {
  it('records nodes, bindings and outputs as plain JSON', () => {
    const wf = workflow({ name: 'm.main', inputs: { x: z.number() } }, ({ x }) => {
      const once = inc({ x });
      const twice = inc({ x: once });
      return { y: twice, label: 'done' };
    });
    const spec = wf.spec;
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
    expect(spec.nodes.map((n) => n.id)).toEqual(['inc', 'inc-2']);
    expect(spec.nodes[0]?.inputs).toEqual({ x: { kind: 'input', name: 'x' } });
    expect(spec.nodes[1]?.inputs).toEqual({ x: { kind: 'output', node: 'inc' } });
    expect(spec.outputs).toEqual({ y: { kind: 'output', node: 'inc-2' }, label: { kind: 'literal', value: 'done' } });
    expect(spec.nodes[0]?.cache).toMatchObject({ enabled: true, version: '1', ignoreInputs: [], serialize: false });
    expect(spec.nodes[0]?.signature).toEqual({ inputs: { x: { type: 'number' } }, output: { type: 'number' }, outputHashed: false });
    expect([...wf.tasks.keys()]).toEqual(['m.inc']);
  });

  it('reads fields of object outputs and collects fan-ins into one binding', () => {
    const wf = workflow({ name: 'm.fields', inputs: {} }, () => {
      const p = pair({ x: 1 });
      return { out: join({ xs: [p.a, 2, inc({ x: p.a })], label: p.b }) };
    });
    const node = wf.spec.nodes.find((n) => n.task === 'm.join');
    expect(node?.inputs).toEqual({
      xs: { kind: 'array', items: [{ kind: 'output', node: 'pair', path: ['a'] }, { kind: 'literal', value: 2 }, { kind: 'output', node: 'inc' }] },
      label: { kind: 'output', node: 'pair', path: ['b'] },
    });
  });

  it('numbers repeated calls of one task in order, for wide fan-outs too', () => {
    const wf = workflow({ name: 'm.wide', inputs: {} }, () => ({ xs: join({ xs: Array.from({ length: 2000 }, (_, i) => inc({ x: i })), label: '' }) }));
    const ids = wf.spec.nodes.map((n) => n.id);
    expect(ids.slice(0, 3)).toEqual(['inc', 'inc-2', 'inc-3']);
    expect(new Set(ids).size).toBe(2001);
    expect(ids).toContain('inc-2000');
  });

  it('keeps node ids as they were (golden): a suffix per base, taken in call order, skipping ids already used', () => {
    const incTwo = task({ name: 'm.inc-2', inputs: { x: z.number() }, output: z.number() }, async ({ x }) => x);
    const wf = workflow({ name: 'm.golden', inputs: { x: z.number() } }, ({ x }) => {
      const a = inc({ x });
      const b = incTwo({ x: a }); // takes 'inc-2' first, so the next inc call skips it
      const c = inc({ x: b });
      const d = pair({ x: c });
      const e = inc({ x: d.a });
      return { out: join({ xs: [a, c, e, inc({ x: 1 })], label: d.b }) };
    });
    const shape = wf.spec.nodes.map((n) => ({ id: n.id, task: n.task, inputs: n.inputs }));
    expect(shape.map((n) => n.id)).toEqual(['inc', 'inc-2', 'inc-3', 'pair', 'inc-4', 'inc-5', 'join']);
    // Ids and bindings feed keys and stored specs: this digest changes only if they do.
    expect(hashJson(shape as unknown as Json)).toBe('3e9c5a8871b5efee27f59e180483b6c04d3dd533a833261dbda50f4504778f2b');
  });

  it('types: required inputs must be bound with the right type; optional ones may be left out', () => {
    const pick = task({ name: 'm.pick', inputs: { a: z.number(), b: z.string().optional() }, output: z.number() }, async ({ a }) => a);
    const wf = workflow({ name: 'm.types', inputs: { n: z.number(), s: z.string() } }, ({ n, s }) => {
      // @ts-expect-error `a` is required
      const missing = () => pick({ b: 'x' });
      // @ts-expect-error `a` takes a number, not a string reference
      const wrongRef = () => pick({ a: s });
      // @ts-expect-error `a` takes a number, not a string literal
      const wrongLiteral = () => pick({ a: 'one' });
      void [missing, wrongRef, wrongLiteral];
      return { ok: pick({ a: n }), also: pick({ a: n, b: s }) };
    });
    expect(wf.spec.nodes.map((node) => Object.keys(node.inputs))).toEqual([['a'], ['a', 'b']]);
  });

  it('collapses arrays and objects of literals into one literal', () => {
    const wf = workflow({ name: 'm.lit', inputs: {} }, () => ({ out: join({ xs: [1, 2, 3], label: 'n' }) }));
    expect(wf.spec.nodes[0]?.inputs['xs']).toEqual({ kind: 'literal', value: [1, 2, 3] });
  });

  it('hashes literals and workflow inputs whose schema declares hashWith', () => {
    const Blob = hashWith(z.string(), (s) => `len-${s.length}`);
    const size = task({ name: 'm.size', inputs: { blob: Blob }, output: z.number() }, async ({ blob }) => blob.length);
    const wf = workflow({ name: 'm.hash', inputs: { blob: Blob } }, ({ blob }) => ({ a: size({ blob }), b: size({ blob: 'abc' }) }));
    expect(wf.spec.nodes[1]?.inputs['blob']).toEqual({ kind: 'literal', value: 'abc', hash: 'len-3' });
    expect(wf.spec.hashedInputs).toEqual(['blob']);
    expect(wf.prepareInputs({ blob: 'hello' })).toEqual({ blob: { value: 'hello', hash: 'len-5' } });
  });

  it('applies withOverrides to one node only', () => {
    const wf = workflow({ name: 'm.ovr', inputs: { x: z.number() } }, ({ x }) => ({
      a: inc({ x }).withOverrides({ cache: { version: '7', ttl: '90s' }, retries: 3, timeout: '2m' }),
      b: inc({ x }).withOverrides({ cache: false }),
      c: inc({ x }),
    }));
    const [a, b, c] = wf.spec.nodes;
    expect([a?.cache?.version, a?.cache?.ttlMs, a?.retries, a?.timeoutMs]).toEqual(['7', 90_000, 3, 120_000]);
    expect(b?.cache).toBeNull();
    expect([c?.cache?.version, c?.retries, c?.timeoutMs]).toEqual(['1', 0, null]);
  });

  it('takes cache.serialize into the node\'s cache settings (its key takes a reservation before executing)', () => {
    const serial = task({ name: 'm.serial', inputs: {}, output: z.number(), cache: { version: '1', serialize: true } }, async () => 1);
    const plain = task({ name: 'm.plain', inputs: {}, output: z.number(), cache: { version: '1' } }, async () => 1);
    const wf = workflow({ name: 'm.serialwf', inputs: {} }, () => ({ a: serial({}), b: plain({}) }));
    const [a, b] = wf.spec.nodes;
    expect([a?.cache?.serialize, b?.cache?.serialize]).toEqual([true, false]);
  });

  it('derives a version from the body when cache is on without one', () => {
    const auto = task({ name: 'm.auto', inputs: {}, output: z.number(), cache: true }, async () => 42);
    const other = task({ name: 'm.auto2', inputs: {}, output: z.number(), cache: true }, async () => 43);
    expect(auto.defaults.cache?.version).toMatch(/^src-[0-9a-f]{12}$/);
    expect(auto.defaults.cache?.version).not.toBe(other.defaults.cache?.version);
  });

  it('refuses to use a reference as a value in the body', () => {
    // Stringifying a reference is the mistake under test.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    const wf = workflow({ name: 'm.peek', inputs: { x: z.number() } }, ({ x }) => ({ y: `${String(inc({ x }))}` }));
    expect(() => wf.spec).toThrow(/reference to a value that exists only when the run gets there/);
  });

  it('refuses an async body, a non-object result, and a task passed uncalled', () => {
    const asyncWf = workflow({ name: 'm.async', inputs: {} }, (async () => ({})) as never);
    expect(() => asyncWf.spec).toThrow(/must be synchronous/);
    const arrayWf = workflow({ name: 'm.arr', inputs: {} }, (() => [1]) as never);
    expect(() => arrayWf.spec).toThrow(/must return an object/);
    const uncalled = workflow({ name: 'm.uncalled', inputs: {} }, () => ({ y: inc({ x: inc as never }) }));
    expect(() => uncalled.spec).toThrow(/call it to use its output/);
  });

  it('a task called outside a workflow body says how to test its body instead', () => {
    expect(() => inc({ x: 1 })).toThrow(MemoflowError);
    expect(() => inc({ x: 1 })).toThrow(/inc\.fn\(inputs, context\)/);
  });

  it('traces once and reuses the spec', () => {
    let traced = 0;
    const wf = workflow({ name: 'm.once', inputs: { x: z.number() } }, ({ x }) => {
      traced++;
      return { y: inc({ x }) };
    });
    expect(wf.spec).toBe(wf.spec);
    expect(traced).toBe(1);
  });
});

describe('task implementations (what workers run)', () => {
  const context = { runId: 'r', nodeId: 'n', attempt: 1, signal: new AbortController().signal };

  it('validates inputs and outputs and hashes hashWith outputs', async () => {
    const Doc = hashWith(z.object({ text: z.string() }), (d) => `h:${d.text}`);
    const make = task({ name: 'm.make', inputs: { text: z.string() }, output: Doc }, async ({ text }) => ({ text }));
    expect(await make.implementation.execute({ text: 'hi' }, context)).toEqual({ output: { text: 'hi' }, outputHash: 'h:hi' });
    await expect(make.implementation.execute({ text: 3 }, context)).rejects.toMatchObject({ nonRetryable: true, message: expect.stringMatching(/input 'text' does not match/) });
    const liar = task({ name: 'm.liar', inputs: {}, output: z.number() }, async () => 'nope' as never);
    await expect(liar.implementation.execute({}, context)).rejects.toThrow(/does not match its output schema/);
  });

  it('rejects outputs JSON would silently change', async () => {
    const dated = task({ name: 'm.dated', inputs: {}, output: z.any() }, async () => ({ at: new Date(0) }));
    await expect(dated.implementation.execute({}, context)).rejects.toThrow(/Date is not plain JSON/);
  });

  it('a task without an output completes with null', async () => {
    const side = task({ name: 'm.side', inputs: {} }, async () => {});
    expect(await side.implementation.execute({}, context)).toEqual({ output: null, outputHash: null });
  });
});
