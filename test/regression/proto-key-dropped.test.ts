/**
 * Regression: a `__proto__` key in a value was dropped without a word: `toJsonValue` built objects
 * with `out[key] = ...` (which sets the prototype instead of a key) and zod's records and objects
 * skip the key. A value must arrive as it was sent or be refused: `__proto__` keys are refused
 * wherever a value enters (run inputs, literals in a workflow body, task outputs), naming the field.
 * (Why refused rather than kept: zod cannot keep them through z.object or z.record, and a task body
 * could not read one, since `value.__proto__` is the prototype; see json-value.ts.)
 */
import { describe, expect, it } from 'vitest';
import { MemoflowError } from '@memoflow/engine';
import { task, workflow, z } from '@memoflow/sdk';
import { uniqueName, useEmbedded } from '../support/modes.js';

/** What JSON.parse (the CLI's --input, a queue, a file) makes of `__proto__`: an own key. */
const withProto = (value: unknown, rest: object = {}) => ({ ...(JSON.parse(`{"__proto__": ${JSON.stringify(value)}}`) as object), ...rest });

describe('__proto__ keys are refused, never dropped', () => {
  const t = useEmbedded();

  it.each([
    ['z.record (zod drops the key)', z.record(z.string(), z.number())],
    ['z.any (toJsonValue used to set the prototype)', z.any()],
    ['z.looseObject', z.looseObject({ a: z.number() })],
  ])('a run input under %s', async (_label, schema) => {
    const echo = task({ name: uniqueName('reg.proto.echo'), inputs: { m: z.any() }, output: z.any(), cache: { version: '1' } }, ({ m }) => m);
    const name = uniqueName('reg.proto');
    const flow = workflow({ name, inputs: { m: schema } }, ({ m }) => ({ out: echo({ m }) }));
    const input = withProto({ x: 1 }, { a: 2 });
    expect(Object.keys(input)).toEqual(['__proto__', 'a']);
    const error = await t.mf.run(flow, { m: input }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).location).toEqual({ workflow: name, field: 'm.__proto__' });
    expect((error as MemoflowError).message).toMatch(/'__proto__' cannot be kept/);
  });

  it('a literal in a workflow body', () => {
    const echo = task({ name: uniqueName('reg.proto.echo'), inputs: { m: z.any() }, output: z.any() }, ({ m }) => m);
    const name = uniqueName('reg.proto');
    const flow = workflow({ name, inputs: {} }, () => ({ out: echo({ m: { nested: [withProto(1)] } }) }));
    let error: unknown;
    try {
      void flow.spec;
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).location).toEqual({ workflow: name, node: echo.taskName.split('.').pop(), field: 'm.nested[0].__proto__' });
  });

  it.each([
    ['z.any()', z.any()],
    ['z.record()', z.record(z.string(), z.any())],
  ])('a task output under %s fails its node, naming the field', async (_label, output) => {
    const leak = task({ name: uniqueName('reg.proto.out'), inputs: {}, output, cache: { version: '1' } }, () => ({ rows: [withProto({ polluted: true }, { ok: 1 })] }));
    const flow = workflow({ name: uniqueName('reg.proto'), inputs: {} }, () => ({ out: leak({}) }));
    const run = await t.mf.run(flow, {});
    await expect(run.result()).rejects.toThrow();
    const [node] = await run.nodes();
    expect(node?.status).toBe('failed');
    expect(node?.error?.message).toContain("field 'output.rows[0].__proto__'");
    expect(await t.mf.cache.list({ task: leak.taskName })).toEqual([]);
  });

  it('values without such keys arrive exactly as sent (unicode keys, "constructor", nested)', async () => {
    const echo = task({ name: uniqueName('reg.proto.echo'), inputs: { m: z.any() }, output: z.any(), cache: { version: '1' } }, ({ m }) => m);
    const flow = workflow({ name: uniqueName('reg.proto'), inputs: { m: z.any() } }, ({ m }) => ({ out: echo({ m }) }));
    const value = { constructor: { prototype: 1 }, '\u{1F600}': ['é', { 'a.b': null }], toString: 'x', __proto_: 2 };
    const run = await t.mf.run(flow, { m: value });
    expect(await run.result()).toEqual({ out: value });
  });
});
