/**
 * Regression (issue 7, item 2): a sub-workflow or dynamic output mixing a `hashWith` field with a
 * plain field from a node that reran was treated as content-addressed as a whole, so
 * `consume({ both: inner() })` HIT where the same data wired flat is SKIPPED(upstream-reran). And a
 * field read through the container (`inner().hashed`) lost its hash, so it cascaded although it is
 * content-addressed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dynamic, hashWith, task, workflow, z, type Memoflow } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

const Both = z.object({ hashed: z.string(), plain: z.string() });

function definitions() {
  const Blob = hashWith(z.string(), () => 'blob-v1');
  // Both producers run in every run (no cache): the plain one is a rerun node each time.
  const loadHashed = task({ name: uniqueName('reg.load_hashed'), inputs: {}, output: Blob }, async () => 'bytes');
  const loadPlain = task({ name: uniqueName('reg.load_plain'), inputs: {}, output: z.string() }, async () => 'plain data');
  const consume = task({ name: uniqueName('reg.consume'), inputs: { both: Both }, output: z.string(), cache: { version: '1' } }, async ({ both }) => `${both.hashed}+${both.plain}`);
  const consumeFlat = task({ name: uniqueName('reg.consume_flat'), inputs: { both: Both }, output: z.string(), cache: { version: '1' } }, async ({ both }) => `${both.hashed}+${both.plain}`);
  const pick = task({ name: uniqueName('reg.pick'), inputs: { x: z.string() }, output: z.string(), cache: { version: '1' } }, async ({ x }) => x);
  const inner = workflow({ name: uniqueName('reg.inner'), inputs: {} }, () => ({ hashed: loadHashed({}), plain: loadPlain({}) }));
  const innerDynamic = (cache?: { version: string }) =>
    dynamic(
      { name: uniqueName('reg.inner_dynamic'), inputs: {}, output: Both, tasks: [loadHashed, loadPlain], ...(cache === undefined ? {} : { cache }) },
      () => ({ hashed: loadHashed({}), plain: loadPlain({}) }),
    );
  return { loadHashed, loadPlain, consume, consumeFlat, pick, inner, innerDynamic };
}

type Definitions = ReturnType<typeof definitions>;

/** The container's output read whole, its hashed field read alone, and the same data wired flat. */
function outer(d: Definitions, container: () => { hashed: string; plain: string }) {
  return workflow({ name: uniqueName('reg.outer'), inputs: {} }, () => {
    const out = container();
    return {
      both: d.consume({ both: out }),
      x: d.pick({ x: out.hashed }),
      flat: d.consumeFlat({ both: { hashed: d.loadHashed({}), plain: d.loadPlain({}) } }),
    };
  });
}

async function statuses(mf: Memoflow, wf: ReturnType<typeof outer>, d: Definitions) {
  const run = await mf.run(wf, {});
  expect(await run.result()).toEqual({ both: 'bytes+plain data', x: 'bytes', flat: 'bytes+plain data' });
  const nodes = await run.nodes();
  const of = (taskName: string) => {
    const node = nodes.find((n) => n.task === taskName);
    return [node?.cacheStatus, node?.cacheReason, node?.cacheKey];
  };
  return { both: of(d.consume.taskName), x: of(d.pick.taskName), flat: of(d.consumeFlat.taskName) };
}

describe.each(MODES.filter((mode) => mode.name !== 'distributed'))('the cascade sees through container outputs, per field ($name)', (mode) => {
  let t: TestConnection;
  // Opening a connection creates a database: slow on a loaded machine, so more than the default hook timeout.
  beforeEach(async () => {
    t = await mode.open();
  }, 120_000);
  afterEach(async () => {
    await t.cleanup();
  });

  const containers: [string, (d: Definitions) => () => { hashed: string; plain: string }][] = [
    ['a sub-workflow', (d) => () => d.inner({}) as never],
    ['a dynamic', (d) => {
      const dyn = d.innerDynamic();
      return () => dyn({}) as never;
    }],
  ];

  it.each(containers)('through %s: the whole output cascades like flat wiring; the hashed field alone is looked up and hits', async (_, container) => {
    const d = definitions();
    const wf = outer(d, container(d));
    const first = await statuses(t.mf, wf, d);
    const second = await statuses(t.mf, wf, d);
    // The plain producer reran: the whole output is not content-addressed, exactly like the flat object.
    expect(second.flat.slice(0, 2)).toEqual(['SKIPPED', 'upstream-reran']);
    expect(second.both.slice(0, 2)).toEqual(['SKIPPED', 'upstream-reran']);
    // The hashed field is: looked up in both runs, under the key it had (its hash), and served.
    expect(first.x.slice(0, 2)).toEqual(['POPULATED', null]);
    expect(second.x).toEqual(['HIT', expect.stringMatching(/^from run /), first.x[2]]);
  });

  it('a cached dynamic served whole from the catalog keeps its hashed members: readers get the keys an execution gives', async () => {
    const d = definitions();
    const dyn = d.innerDynamic({ version: '1' });
    const wf = outer(d, () => dyn({}) as never);
    const first = await statuses(t.mf, wf, d);
    const second = await statuses(t.mf, wf, d);
    // The dynamic HIT: it did not rerun, so both readers of it are looked up and hit under their first keys.
    expect(second.both).toEqual(['HIT', expect.stringMatching(/^from run /), first.both[2]]);
    expect(second.x).toEqual(['HIT', expect.stringMatching(/^from run /), first.x[2]]);
  });
});
