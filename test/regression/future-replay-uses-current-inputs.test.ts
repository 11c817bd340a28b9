import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NonRetryableError, dynamic, hashWith, task, workflow, z } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

/**
 * A dynamic node's future used to copy its input values into every child binding, so a FUTURE_HIT
 * (here: run 1 fails in a child, run 2 has the same key) fed children run 1's values for the
 * inputs the key does not see: `cache.ignoreInputs`, and `hashWith` inputs whose raw value differs
 * while the hash is equal. Children now bind the dynamic's inputs by reference (objects, arrays) or,
 * for a primitive that may have been copied, the future is pinned to its value and not replayed
 * when it differs: either way the child gets this run's value.
 */

/** Same content for both paths: a hashWith input that hashes equal while its raw value differs. */
const contents = new Map([
  ['/run-1/data.csv', 'a,b\n1,2'],
  ['/run-2/data.csv', 'a,b\n1,2'],
]);
const contentOf = (path: string) => `sha-of:${contents.get(path) ?? path}`;

/**
 * A dynamic fanning out `n` children that each record the value `pick` gives them; child 1 fails
 * while `failing` is set. The children are not cached, so every child of run 2 executes and shows
 * what it was fed.
 */
function scenario<S extends z.ZodType>(name: string, schema: S, ignored: boolean, pick: (value: z.output<S>) => unknown) {
  const state = { failing: true, bodies: 0, received: [] as unknown[] };
  const child = task({ name: `${name}.child`, inputs: { i: z.number().int(), value: schema }, output: z.number() }, async ({ i, value }) => {
    state.received.push(pick(value));
    if (state.failing && i === 1) throw new NonRetryableError('child 1 fails in run 1');
    return i;
  });
  const fan = dynamic(
    {
      name: `${name}.fan`,
      inputs: { n: z.number().int(), value: schema },
      output: z.array(z.number()),
      cache: ignored ? { version: '1', ignoreInputs: ['value'] } : { version: '1' },
      tasks: [child],
    },
    ({ n, value }) => {
      state.bodies++;
      // `as never`: the schema is a type parameter here, which InputBindings cannot resolve.
      return Array.from({ length: n }, (_, i) => child({ i, value } as never));
    },
  );
  const main = workflow({ name: `${name}.main`, inputs: { value: schema } }, ({ value }) => ({ out: fan({ n: 3, value } as never) }));
  return { state, main };
}

describe.each(MODES)('a replayed future uses this run\'s values ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  /** Run 1 with `a` fails in child 1; run 2 with `b` must feed every child `b`. Returns run 2's dynamic node. */
  async function replay<S extends z.ZodType>(s: ReturnType<typeof scenario<S>>, a: z.input<S>, b: z.input<S>) {
    await expect((await t.mf.run(s.main, { value: a } as never)).result()).rejects.toThrow(/child 1 fails in run 1/);
    s.state.failing = false;
    s.state.received = [];
    const second = await t.mf.run(s.main, { value: b } as never);
    expect(await second.result()).toEqual({ out: [0, 1, 2] });
    return (await second.nodes()).find((node) => node.id === 'fan');
  }

  it('an ignored object input: the future is replayed (FUTURE_HIT) and every child gets this run\'s value', async () => {
    const s = scenario('replay_ignored_object', z.object({ tag: z.string() }), true, (value) => value.tag);
    const dyn = await replay(s, { tag: 'A' }, { tag: 'B' });
    expect(dyn?.cacheStatus).toBe('FUTURE_HIT');
    expect(s.state.bodies).toBe(1);
    expect(s.state.received).toEqual(['B', 'B', 'B']);
  });

  it('an ignored string input: the future may hold it as a literal, so it is not replayed; the body runs again with this run\'s value', async () => {
    const s = scenario('replay_ignored_string', z.string(), true, (value) => value);
    const dyn = await replay(s, 'A', 'B');
    // Looked up, not replayed: the body ran and wrote the entry (POPULATED), saying why.
    expect(dyn).toMatchObject({ cacheStatus: 'POPULATED', cacheReason: expect.stringMatching(/input 'value'.*differs: the body runs again/) });
    expect(s.state.bodies).toBe(2);
    expect(s.state.received).toEqual(['B', 'B', 'B']);
  });

  it('a hashWith object input (a file whose content is equal, at another path): FUTURE_HIT, the children read the new path', async () => {
    const File = hashWith(z.object({ path: z.string() }), (file) => contentOf(file.path));
    const s = scenario('replay_hashed_object', File, false, (file) => file.path);
    const dyn = await replay(s, { path: '/run-1/data.csv' }, { path: '/run-2/data.csv' });
    expect(dyn?.cacheStatus).toBe('FUTURE_HIT');
    expect(s.state.received).toEqual(['/run-2/data.csv', '/run-2/data.csv', '/run-2/data.csv']);
  });

  it('a hashWith string input (a path): the body runs again rather than feed the children the old path', async () => {
    const Path = hashWith(z.string(), contentOf);
    const s = scenario('replay_hashed_string', Path, false, (path) => path);
    const dyn = await replay(s, '/run-1/data.csv', '/run-2/data.csv');
    expect(dyn).toMatchObject({ cacheStatus: 'POPULATED', cacheReason: expect.stringMatching(/input 'value'/) });
    expect(s.state.bodies).toBe(2);
    expect(s.state.received).toEqual(['/run-2/data.csv', '/run-2/data.csv', '/run-2/data.csv']);
  });

  it('with the same values, the future is replayed as before (pins hold)', async () => {
    const s = scenario('replay_same_string', z.string(), true, (value) => value);
    const dyn = await replay(s, 'A', 'A');
    expect(dyn?.cacheStatus).toBe('FUTURE_HIT');
    expect(s.state.bodies).toBe(1);
  });
});
