import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { outputSchemaProblem } from '@memoflow/engine';
import { task } from './task.js';
import { workflow } from './workflow.js';
import { toJsonSchema, toOutputJsonSchema } from './json-schema.js';

describe('toOutputJsonSchema', () => {
  it('describes what the body returns after transforms and defaults, unlike the signature schema', () => {
    const withDefault = z.object({ n: z.number().default(1) });
    expect(toOutputJsonSchema(withDefault)).toMatchObject({ required: ['n'] });
    expect(toJsonSchema(withDefault)).not.toHaveProperty('required');
    const transformed = z.string().transform((s) => s.length);
    expect(outputSchemaProblem(toOutputJsonSchema(transformed), 5)).toBeUndefined(); // unrepresentable output: anything
    expect(toOutputJsonSchema(z.number())).toEqual({ type: 'number' });
    expect(toOutputJsonSchema(z.number())).not.toHaveProperty('$schema');
  });

  it('is carried on the definition and into every task node of a spec', () => {
    const t = task({ name: 'js.t', inputs: { x: z.number() }, output: z.array(z.number()) }, async ({ x }) => [x]);
    const none = task({ name: 'js.none', inputs: {} }, async () => undefined);
    expect(t.outputSchema).toEqual({ type: 'array', items: { type: 'number' } });
    const wf = workflow({ name: 'js.wf', inputs: { x: z.number() } }, ({ x }) => ({ y: t({ x }), z: none({}) }));
    expect(wf.spec.nodes.map((n) => n.outputSchema)).toEqual([{ type: 'array', items: { type: 'number' } }, { type: 'null' }]);
  });
});

describe('outputSchema accepts every value a task can return (no false corrupt hits)', () => {
  // [schema, what the body returns]; the stored value is the parsed output as JSON, as the worker stores it.
  type Node = { name: string; children: Node[] };
  const tree: z.ZodType<Node> = z.lazy(() => z.object({ name: z.string(), children: z.array(tree) }));
  const cases: [string, z.ZodType, unknown][] = [
    ['number', z.number(), 1.5],
    ['int', z.number().int(), 3],
    ['email (format not validated)', z.string().email(), 'a@b.co'],
    ['regex', z.string().regex(/^\p{L}+$/u), 'äbc'],
    ['enum', z.enum(['a', 'b']), 'b'],
    ['literal', z.literal(7), 7],
    ['nullable', z.number().nullable(), null],
    ['tuple', z.tuple([z.string(), z.number()]), ['x', 1]],
    ['record', z.record(z.string(), z.number()), { a: 1, __proto__x: 2 }],
    ['default', z.object({ n: z.number().default(4) }), {}],
    ['transform', z.string().transform((s) => s.length), 'abc'],
    ['pipe', z.string().pipe(z.coerce.number()), '12'],
    ['discriminated union', z.discriminatedUnion('k', [z.object({ k: z.literal('a'), a: z.number() }), z.object({ k: z.literal('b') })]), { k: 'a', a: 1 }],
    ['intersection', z.intersection(z.object({ a: z.number() }), z.object({ b: z.string() })), { a: 1, b: 'x' }],
    ['recursive', tree, { name: 'r', children: [{ name: 'c', children: [] }] }],
    ['strip unknown keys', z.object({ a: z.number() }), { a: 1, extra: true }],
    ['loose object', z.looseObject({ a: z.number() }), { a: 1, extra: true }],
    ['optional field', z.object({ a: z.number().optional() }), {}],
    ['any', z.any(), { anything: [1, 'x'] }],
    ['unknown', z.unknown(), 'x'],
    ['date as ISO text', z.date().transform((d) => d.toISOString()), new Date(0)],
  ];
  for (const [name, schema, returned] of cases) {
    it(name, () => {
      const parsed = schema.parse(returned);
      const stored = JSON.parse(JSON.stringify(parsed)) as Parameters<typeof outputSchemaProblem>[1];
      expect(outputSchemaProblem(toOutputJsonSchema(schema), stored)).toBeUndefined();
    });
  }
  it('and refuses what the type cannot be', () => {
    expect(outputSchemaProblem(toOutputJsonSchema(z.number()), 'garbage')).toMatch(/must be number/);
    expect(outputSchemaProblem(toOutputJsonSchema(z.object({ a: z.number() })), { a: 'x' })).toMatch(/\/a/);
  });
});
