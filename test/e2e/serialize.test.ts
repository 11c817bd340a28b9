/**
 * `cache: { serialize: true }` in every mode: two nodes of one run with one key execute once (one
 * WAITS for the other, then HITs), and a serialized dynamic node wanted by concurrent runs runs its
 * body, and its children, once. The cross-run, failure and SIGKILL cases against real worker pools
 * are in test/distributed/serialize.test.ts.
 */
import { dynamic, task, workflow, z } from '@memoflow/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(MODES)('serialized cache keys ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('two nodes of one run with one key: one executes, the other WAITS, then HITs its entry', async () => {
    let calls = 0;
    const slow = task({ name: uniqueName('ser.slow'), inputs: { x: z.number() }, output: z.number(), cache: { version: '1', serialize: true } }, async ({ x }) => {
      calls++;
      await sleep(300);
      return x * 2;
    });
    const twice = workflow({ name: uniqueName('ser.twice'), inputs: { x: z.number() } }, ({ x }) => ({ a: slow({ x }), b: slow({ x }) }));
    const run = await t.mf.run(twice, { x: 21 });
    expect(await run.result()).toEqual({ a: 42, b: 42 });
    expect(calls).toBe(1);
    const nodes = await run.nodes();
    expect(nodes.map((n) => n.cacheStatus).sort()).toEqual(['HIT', 'POPULATED']);
    const waiter = nodes.find((n) => n.cacheStatus === 'HIT');
    const owner = nodes.find((n) => n.cacheStatus === 'POPULATED');
    expect(waiter?.waitedFor).toEqual({ runId: run.id, nodeId: owner?.id });
    const line = t.events.find((e) => e.type === 'node:waiting' && e.runId === run.id);
    expect(line).toMatchObject({ cacheStatus: 'WAITING', nodeId: waiter?.id });
    expect(line?.message).toContain(`node '${owner?.id ?? '?'}' of this run holds the reservation`);
  });

  it('a serialized dynamic node wanted by three concurrent runs: its body and its children run once', async () => {
    const calls = { body: 0, child: 0 };
    const child = task({ name: uniqueName('ser.child'), inputs: { i: z.number() }, output: z.number() }, async ({ i }) => {
      calls.child++;
      await sleep(200);
      return i * i;
    });
    const fan = dynamic(
      { name: uniqueName('ser.fan'), inputs: { n: z.number().int() }, output: z.array(z.number()), cache: { version: '1', serialize: true }, tasks: [child] },
      ({ n }) => {
        calls.body++;
        return Array.from({ length: n }, (_, i) => child({ i }));
      },
    );
    const flow = workflow({ name: uniqueName('ser.flow'), inputs: { n: z.number().int() } }, ({ n }) => ({ squares: fan({ n }) }));
    const runs = await Promise.all([1, 2, 3].map(() => t.mf.run(flow, { n: 3 })));
    expect(await Promise.all(runs.map((run) => run.result()))).toEqual(Array(3).fill({ squares: [0, 1, 4] }));
    expect(calls).toEqual({ body: 1, child: 3 });
    const statuses = await Promise.all(runs.map(async (run) => (await run.nodes()).find((n) => n.parent === null)?.cacheStatus));
    expect(statuses.sort()).toEqual(['HIT', 'HIT', 'POPULATED']);
  });
});
