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
