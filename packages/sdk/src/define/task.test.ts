import { describe, expect, it } from 'vitest';
import { signatureDigest } from '@memoflow/engine';
import { z } from 'zod';
import { childrenDigest, dynamic } from './dynamic.js';
import { task } from './task.js';
import { workflow } from './workflow.js';

describe('task definitions and the version attempts carry', () => {
  it("the implementation declares the definition's version and signature digest", () => {
    const pinned = task({ name: 'v.pinned', inputs: { x: z.number() }, output: z.number(), cache: { version: '7' } }, ({ x }) => x);
    expect(pinned.implementation).toMatchObject({ name: 'v.pinned', version: '7', signature: signatureDigest(pinned.signature) });
    const uncached = task({ name: 'v.uncached', inputs: { x: z.number() }, output: z.number() }, ({ x }) => x + 1);
    expect(uncached.definitionVersion).toBe(uncached.sourceVersion);
    expect(uncached.implementation.version).toBe(uncached.sourceVersion);
    expect(uncached.sourceVersion).toMatch(/^src-[0-9a-f]{12}$/);
  });

  it("the spec records the definition's version, not a per-call override's", () => {
    const t = task({ name: 'v.t', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, ({ x }) => x);
    const flow = workflow({ name: 'v.flow', inputs: { x: z.number() } }, ({ x }) => ({ a: t({ x }), b: t({ x }).withOverrides({ cache: { version: '2' } }) }));
    expect(flow.spec.nodes.map((node) => [node.id, node.cache?.version, node.taskVersion])).toEqual([
      ['t', '1', '1'],
      ['t-2', '2', '1'],
    ]);
  });

  it("a dynamic's implementation carries its version; its key changes when a declared child's body does", () => {
    const make = (factor: number) => task({ name: 'v.child', inputs: { i: z.number() }, output: z.number() }, factor === 1 ? ({ i }) => i : ({ i }) => i * 2);
    const first = make(1);
    const second = make(2);
    expect(first.definitionVersion).not.toBe(second.definitionVersion);
    expect(childrenDigest(new Map([['v.child', first]]))).not.toBe(childrenDigest(new Map([['v.child', second]])));
    const d = dynamic({ name: 'v.dyn', inputs: { n: z.number() }, output: z.array(z.number()), tasks: [first], cache: { version: '3' } }, ({ n }) =>
      Array.from({ length: n }, (_, i) => first({ i })),
    );
    expect(d.implementation).toMatchObject({ version: '3', signature: signatureDigest(d.signature) });
  });
});

describe('task inputs as a worker receives them', () => {
  const context = { runId: 'r', nodeId: 'n', attempt: 1, signal: new AbortController().signal };

  it('a __proto__ key in an input (from a queue or an old store) is refused, not dropped by the schema', async () => {
    const t = task({ name: 'v.inputs', inputs: { m: z.record(z.string(), z.number()) }, output: z.number() }, ({ m }) => Object.keys(m).length);
    const m = JSON.parse('{"__proto__": 1, "a": 2}') as { [key: string]: number };
    await expect(t.implementation.execute({ m }, context)).rejects.toThrow("node 'n', field 'm.__proto__'");
    await expect(t.implementation.execute({ m: { a: 2 } }, context)).resolves.toEqual({ output: 1, outputHash: null });
  });
});
