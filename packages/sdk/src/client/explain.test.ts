import { afterEach, describe, expect, test } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type CacheListFilter, type TaskImplementation } from '@memoflow/engine';
import { InProcessTaskDispatcher } from '@memoflow/worker';
import { task } from '../define/task.js';
import { workflow, type AnyWorkflow } from '../define/workflow.js';
import { z } from 'zod';
import { explainRunNode } from './explain.js';

/** An in-memory catalog that counts its round trips, to hold explain to few of them. */
class CountingCatalog extends InMemoryCacheCatalog {
  lists: CacheListFilter[] = [];
  override list(filter: CacheListFilter = {}) {
    this.lists.push(filter);
    return super.list(filter);
  }
}

class CountingRunStore extends InMemoryRunStore {
  loads: string[] = [];
  override load(runId: string) {
    this.loads.push(runId);
    return super.load(runId);
  }
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function setup() {
  const catalog = new CountingCatalog();
  const runStore = new CountingRunStore();
  const registry = new Map<string, TaskImplementation>();
  const dispatcher = new InProcessTaskDispatcher({ tasks: registry });
  const controller = new Controller({ catalog, runStore, dispatcher, onEvent: () => {} });
  closers.push(async () => {
    await controller.close();
    await dispatcher.close();
  });
  return {
    catalog,
    runStore,
    async run(wf: AnyWorkflow, inputs: { [name: string]: unknown }, scope: { project?: string } = {}) {
      for (const t of wf.tasks.values()) registry.set(t.taskName, t.implementation);
      const id = await controller.submit({ spec: wf.spec, inputs: wf.prepareInputs(inputs), project: scope.project ?? 'p', domain: 'd' });
      await controller.wait(id);
      return id;
    },
  };
}

/** a -> b -> c -> d -> e, each adding one. */
function chain() {
  const step = (name: string) => task({ name, inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x + 1);
  const [a, b, c, d, e] = ['ch.a', 'ch.b', 'ch.c', 'ch.d', 'ch.e'].map(step) as [ReturnType<typeof step>, ReturnType<typeof step>, ReturnType<typeof step>, ReturnType<typeof step>, ReturnType<typeof step>];
  return workflow({ name: 'ch.main', inputs: { x: z.number() } }, ({ x }) => ({ out: e({ x: d({ x: c({ x: b({ x: a({ x }) }) }) }) }) }));
}

describe('explainRunNode round trips', () => {
  test('a cascade four nodes deep reads the run once, the catalog twice and the writer run once', async () => {
    const env = setup();
    const wf = chain();
    const first = await env.run(wf, { x: 1 });
    const second = await env.run(wf, { x: 2 });
    env.catalog.lists = [];
    env.runStore.loads = [];
    const explained = await explainRunNode(env, second, 'e');
    const chainOf: string[] = [];
    for (let at: typeof explained | undefined = explained; at !== undefined; at = at.upstream) chainOf.push(`${at.node}:${at.status ?? '-'}`);
    expect(chainOf).toEqual(['e:SKIPPED', 'd:SKIPPED', 'c:SKIPPED', 'b:SKIPPED', 'a:POPULATED']);
    // Only the root cause reads the catalog: its own key, then its task's entries in its scope.
    expect(env.catalog.lists).toEqual([{ keys: [expect.any(String)] }, { task: 'ch.a', project: 'p', domain: 'd', kind: 'output', limit: 1000 }]);
    expect(env.runStore.loads).toEqual([second, first]);
  });

  test('with nothing to compare in its own scope, one more listing looks in every project', async () => {
    const env = setup();
    const wf = chain();
    const first = await env.run(wf, { x: 1 }, { project: 'one' });
    const second = await env.run(wf, { x: 1 }, { project: 'two' });
    env.catalog.lists = [];
    const explained = await explainRunNode(env, second, 'a');
    expect(explained.nearest).toMatchObject({ runId: first, project: 'one', sameScope: false });
    expect(explained.differences).toEqual([{ part: 'project', was: 'one', now: 'two' }]);
    expect(env.catalog.lists.slice(1)).toEqual([
      { task: 'ch.a', project: 'two', domain: 'd', kind: 'output', limit: 1000 },
      { task: 'ch.a', kind: 'output', limit: 1000 },
    ]);
  });
});
