/**
 * Regression: a cyclic value, or one nested 20,000 deep, ended in `RangeError: Maximum call stack
 * size exceeded` from whichever walker met it first (toJsonValue, zod, canonical hashing). Now
 * every entry point checks values first and refuses them with a MemoflowError naming the workflow,
 * node and field; nesting is limited to MAX_JSON_DEPTH (1,000) levels.
 */
import { describe, expect, it } from 'vitest';
import { MemoflowError } from '@memoflow/engine';
import { dynamic, task, workflow, z } from '@memoflow/sdk';
import { uniqueName, useEmbedded } from '../support/modes.js';

const MAX_JSON_DEPTH = 1000;

function cyclic(): unknown {
  const row: { [key: string]: unknown } = { id: 1 };
  row['self'] = { back: row };
  return { rows: [row] };
}

/** `levels` arrays inside each other, around 'leaf'. */
function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

type Tree = string | Tree[];
const TreeSchema: z.ZodType<Tree> = z.lazy(() => z.union([z.string(), z.array(TreeSchema)]));

async function rejection(promise: Promise<unknown>): Promise<MemoflowError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(MemoflowError);
  expect(String((error as Error).message)).not.toMatch(/call stack/);
  return error as MemoflowError;
}

describe('cyclic and very deep values get a clear error', () => {
  const t = useEmbedded();

  const echo = () => task({ name: uniqueName('reg.cyc.echo'), inputs: { v: z.any() }, output: z.any(), cache: { version: '1' } }, ({ v }) => v);

  it.each([
    ['a cyclic value under z.any()', z.any(), cyclic(), 'v.rows[0].self.back', /cyclic/],
    ['a 20,000-deep value under z.any()', z.any(), nested(20_000), undefined, /deeper than 1000 levels/],
    ['a 20,000-deep value under a recursive schema', TreeSchema, nested(20_000), undefined, /deeper than 1000 levels/],
  ])('run input: %s', async (_label, schema, value, field, message) => {
    const name = uniqueName('reg.cyc');
    const flow = workflow({ name, inputs: { v: schema } }, ({ v }) => ({ out: echo()({ v }) }));
    const error = await rejection(t.mf.run(flow, { v: value }));
    expect(error.location.workflow).toBe(name);
    if (field !== undefined) expect(error.location.field).toBe(field);
    else expect(error.location.field?.startsWith('v[0][0]')).toBe(true);
    expect(error.message).toMatch(message);
  });

  it.each([
    ['cyclic', cyclic, /cyclic/],
    ['20,000 deep', () => nested(20_000), /deeper than 1000 levels/],
  ])('task output %s: the node fails with a clear error naming node and field, nothing cached', async (_label, make, message) => {
    const bad = task({ name: uniqueName('reg.cyc.out'), inputs: {}, output: z.any(), cache: { version: '1' } }, () => make());
    const flow = workflow({ name: uniqueName('reg.cyc'), inputs: {} }, () => ({ out: bad({}) }));
    const run = await t.mf.run(flow, {});
    await expect(run.result()).rejects.toThrow();
    const [node] = await run.nodes();
    expect(node?.status).toBe('failed');
    expect(node?.error?.name).toBe('MemoflowError');
    expect(node?.error?.message).toMatch(message);
    expect(node?.error?.message).toContain("node 'out");
    expect(node?.error?.message).toContain("field 'output");
    expect(await t.mf.cache.list({ task: bad.taskName })).toEqual([]);
  });

  it('a cyclic literal in a workflow body is refused when traced, naming workflow, node and field', () => {
    const name = uniqueName('reg.cyc');
    const target = echo();
    const flow = workflow({ name, inputs: {} }, () => ({ out: target({ v: cyclic() }) }));
    let error: unknown;
    try {
      void flow.spec;
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).location).toEqual({ workflow: name, node: target.taskName.split('.').pop(), field: 'v.rows[0].self.back' });
  });

  it('a cyclic literal among a workflow\'s outputs is refused when traced, naming the output', () => {
    const name = uniqueName('reg.cyc');
    const flow = workflow({ name, inputs: {} }, () => ({ out: cyclic() as never }));
    expect(() => flow.spec).toThrow(MemoflowError);
    expect(() => flow.spec).toThrow(`field 'outputs.out.rows[0].self.back'`);
  });

  it('a dynamic body returning a cyclic value fails its node with a clear error', async () => {
    const child = task({ name: uniqueName('reg.cyc.child'), inputs: { i: z.number() }, output: z.number() }, ({ i }) => i);
    const name = uniqueName('reg.cyc.dyn');
    const fan = dynamic({ name, inputs: { n: z.number() }, output: z.any(), tasks: [child] }, ({ n }) => {
      const value: { [key: string]: unknown } = { first: child({ i: n }) };
      value['again'] = [value];
      return value as never;
    });
    const flow = workflow({ name: uniqueName('reg.cyc'), inputs: { n: z.number() } }, ({ n }) => ({ out: fan({ n }) }));
    const run = await t.mf.run(flow, { n: 1 });
    await expect(run.result()).rejects.toThrow();
    const node = (await run.nodes()).find((n) => n.task === name);
    expect(node?.error?.message).toMatch(/cyclic/);
    expect(node?.error?.message).toContain("field 'output.again[0]'");
    expect(node?.error?.message).not.toMatch(/call stack/);
  });

  it('a shared (not cyclic) value is fine, and a value just inside the limit arrives whole', async () => {
    const shared = { x: 1 };
    const flow = workflow({ name: uniqueName('reg.cyc'), inputs: { v: z.any() } }, ({ v }) => ({ out: echo()({ v }) }));
    expect(await (await t.mf.run(flow, { v: [shared, shared] })).result()).toEqual({ out: [{ x: 1 }, { x: 1 }] });
    // The value is an object with the nested arrays inside: MAX_JSON_DEPTH - 1 levels below the top.
    const deep = nested(MAX_JSON_DEPTH - 1);
    expect(await (await t.mf.run(flow, { v: deep })).result()).toEqual({ out: deep });
  });
});
