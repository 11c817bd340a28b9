// Regression: a workflow whose nodes form a chain of a few thousand steps could not run at all:
// validateSpec ordered the nodes with @dagrejs/graphlib's topsort, whose walk recurses once per
// node along a path, and a chain of 5,000 nodes failed with a raw "Maximum call stack size
// exceeded" (2,000 passed). The order now comes from an iterative walk that gives graphlib's
// order exactly (a property test in packages/engine/src/spec/topological-order.test.ts compares
// them), so stored specs and sub-workflow keys are unchanged.
import { describe, expect, it } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, validateSpec } from '@memoflow/engine';
import { task, workflow, z } from '@memoflow/sdk';
import { InProcessTaskDispatcher, toTaskRegistry } from '@memoflow/worker';

const LENGTH = 20_000;
const inc = task({ name: 'regression.chain_inc', inputs: { x: z.number() }, output: z.number(), cache: false }, ({ x }) => x + 1);
const chain = workflow({ name: 'regression.long_chain', inputs: {} }, () => {
  let value = inc({ x: 0 });
  for (let i = 1; i < LENGTH; i++) value = inc({ x: value });
  return { out: value };
});

describe('regression: a long chain of nodes overflowed the stack', () => {
  it(`validates a chain of ${LENGTH} nodes, in dependency order`, () => {
    const spec = validateSpec(chain.spec);
    expect(spec.nodes).toHaveLength(LENGTH);
    const position = new Map(spec.nodes.map((node, i) => [node.id, i]));
    for (const node of spec.nodes) {
      const input = node.inputs['x'];
      if (input?.kind === 'output') expect(position.get(input.node)).toBeLessThan(position.get(node.id) ?? -1);
    }
  });

  it(`runs a chain of ${LENGTH} nodes to its end`, async () => {
    const controller = new Controller({
      catalog: new InMemoryCacheCatalog(),
      runStore: new InMemoryRunStore(),
      dispatcher: new InProcessTaskDispatcher({ tasks: toTaskRegistry([inc.implementation]) }),
    });
    try {
      const id = await controller.submit({ spec: chain.spec, inputs: {}, project: 'p', domain: 'd' });
      const state = await controller.wait(id);
      expect(state.run.status).toBe('succeeded');
      expect(state.run.outputs).toEqual({ out: LENGTH });
    } finally {
      await controller.close();
    }
  }, 60_000);
});
