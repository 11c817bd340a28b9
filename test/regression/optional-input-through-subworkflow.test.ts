import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dynamic, task, workflow, z } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

/**
 * `inner({ name })`, where `inner` is a workflow with an optional `title`, failed with
 * UNBOUND_INPUT 'title' (the call's signature does not list a workflow's optional inputs), and a
 * container input left out reached the children as a literal null (which `z.string().optional()`
 * refuses). Left out, it now stays out: the task sees undefined and its key does not contain it,
 * as for a top-level optional workflow input.
 */
function greeting(prefix: string) {
  const seen: Array<{ keys: string[]; title: unknown }> = [];
  const greet = task(
    { name: `${prefix}.greet`, inputs: { name: z.string(), title: z.string().optional() }, output: z.string(), cache: { version: '1' } },
    async (inputs) => {
      seen.push({ keys: Object.keys(inputs).filter((key) => (inputs as { [key: string]: unknown })[key] !== undefined), title: inputs.title });
      return `hello ${inputs.title === undefined ? '' : `${inputs.title} `}${inputs.name}`;
    },
  );
  return { seen, greet };
}

describe.each(MODES)('optional inputs through sub-workflows and dynamics ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it("a sub-workflow called without its optional input runs; the inner task sees it unset (not null), and its key leaves it out", async () => {
    const { seen, greet } = greeting('optsub');
    const inner = workflow({ name: 'optsub.inner', inputs: { name: z.string(), title: z.string().optional() } }, ({ name, title }) => ({ text: greet({ name, title }) }));
    const outer = workflow({ name: 'optsub.outer', inputs: { name: z.string() } }, ({ name }) => ({ text: inner({ name }).text }));
    const run = await t.mf.run(outer, { name: 'ada' });
    expect(await run.result()).toEqual({ text: 'hello ada' });
    expect(seen).toEqual([{ keys: ['name'], title: undefined }]);
    const node = (await run.nodes()).find((n) => n.id === 'inner.greet');
    expect(node?.cacheStatus).toBe('POPULATED');

    // Given, it reaches the task; and a run of `inner` at top level without it shares the key.
    const titled = workflow({ name: 'optsub.titled', inputs: { name: z.string() } }, ({ name }) => ({ text: inner({ name, title: 'dr' }).text }));
    expect(await (await t.mf.run(titled, { name: 'ada' })).result()).toEqual({ text: 'hello dr ada' });
    const top = await t.mf.run(inner, { name: 'ada' });
    expect(await top.result()).toEqual({ text: 'hello ada' });
    expect((await top.nodes()).map((n) => [n.id, n.cacheStatus, n.cacheKey])).toEqual([['greet', 'HIT', node?.cacheKey]]);
  });

  it("a dynamic's optional input left out reaches no child as null: the child sees it unset", async () => {
    const { seen, greet } = greeting('optdyn');
    const hello = dynamic(
      { name: 'optdyn.hello', inputs: { name: z.string(), title: z.string().optional() }, output: z.string(), cache: { version: '1' }, tasks: [greet] },
      ({ name, title }) => greet({ name, title }),
    );
    const main = workflow({ name: 'optdyn.main', inputs: { name: z.string(), title: z.string().optional() } }, ({ name, title }) => ({ text: hello({ name, title }) }));
    expect(await (await t.mf.run(main, { name: 'ada' })).result()).toEqual({ text: 'hello ada' });
    expect(seen).toEqual([{ keys: ['name'], title: undefined }]);
    expect(await (await t.mf.run(main, { name: 'ada', title: 'dr' })).result()).toEqual({ text: 'hello dr ada' });
  });

  it('a dynamic body calling a sub-workflow without its optional input', async () => {
    const { seen, greet } = greeting('optdynsub');
    const inner = workflow({ name: 'optdynsub.inner', inputs: { name: z.string(), title: z.string().optional() } }, ({ name, title }) => ({ text: greet({ name, title }) }));
    const each = dynamic(
      { name: 'optdynsub.each', inputs: { names: z.array(z.string()) }, output: z.array(z.string()), tasks: [inner] },
      ({ names }) => names.map((name) => inner({ name }).text),
    );
    const main = workflow({ name: 'optdynsub.main', inputs: { names: z.array(z.string()) } }, ({ names }) => ({ texts: each({ names }) }));
    expect(await (await t.mf.run(main, { names: ['ada', 'bo'] })).result()).toEqual({ texts: ['hello ada', 'hello bo'] });
    expect(seen.map((s) => s.keys)).toEqual([['name'], ['name']]);
  });
});
