import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dynamic, task, workflow, z } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

/**
 * A fan-out: one `train` per shard inside a dynamic node, then `best` picks the lowest loss.
 * `failing` names shards whose training throws (a NonRetryable failure, so one run fails fast).
 */
function fanOut(options: { trainVersion?: string } = {}) {
  const calls = { body: 0, train: new Map<number, number>(), best: 0 };
  const failing = new Set<number>();
  const train = task(
    { name: 'fan.train', inputs: { shard: z.number().int() }, output: z.object({ shard: z.number(), loss: z.number() }), cache: { version: options.trainVersion ?? '1' } },
    async ({ shard }) => {
      calls.train.set(shard, (calls.train.get(shard) ?? 0) + 1);
      if (failing.has(shard)) throw new Error(`shard ${shard} ran out of memory`);
      return { shard, loss: Math.abs(shard - 2) + 0.5 };
    },
  );
  const trainAll = dynamic(
    { name: 'fan.train_all', inputs: { shards: z.number().int() }, output: z.array(z.object({ shard: z.number(), loss: z.number() })), cache: { version: '1' }, tasks: [train] },
    ({ shards }) => {
      calls.body++;
      return Array.from({ length: shards }, (_, shard) => train({ shard }));
    },
  );
  const best = task(
    { name: 'fan.best', inputs: { models: z.array(z.object({ shard: z.number(), loss: z.number() })) }, output: z.number(), cache: { version: '1' } },
    async ({ models }) => {
      calls.best++;
      return [...models].sort((a, b) => a.loss - b.loss)[0]?.shard ?? -1;
    },
  );
  const main = workflow({ name: 'fan.main', inputs: { shards: z.number().int() } }, ({ shards }) => ({ best: best({ models: trainAll({ shards }) }) }));
  const trainCalls = () => [...calls.train.values()].reduce((a, b) => a + b, 0);
  return { calls, failing, train, trainAll, best, main, trainCalls };
}

describe.each(MODES)('dynamic nodes and sub-workflows ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('runs a dynamic fan-out and resolves its output for downstream nodes', async () => {
    const f = fanOut();
    const run = await t.mf.run(f.main, { shards: 4 });
    expect(await run.result()).toEqual({ best: 2 });
    const nodes = await run.nodes();
    // Children are listed right after their container, with their own statuses.
    expect(nodes.map((n) => [n.id, n.parent, n.cacheStatus])).toEqual([
      ['train_all', null, 'POPULATED'],
      ['train_all.train', 'train_all', 'POPULATED'],
      ['train_all.train-2', 'train_all', 'POPULATED'],
      ['train_all.train-3', 'train_all', 'POPULATED'],
      ['train_all.train-4', 'train_all', 'POPULATED'],
      ['best', null, 'SKIPPED'],
    ]);
    expect(nodes[0]).toMatchObject({ status: 'succeeded', output: [0, 1, 2, 3].map((shard) => ({ shard, loss: Math.abs(shard - 2) + 0.5 })) });
    expect((await t.mf.runs.show(run.id)).nodes).toHaveLength(6);
    expect(f.calls.body).toBe(1);
    expect(f.trainCalls()).toBe(4);
  });

  it('a retry after a failed child reads the future back: the body does not run, succeeded children hit, only the failed one executes', async () => {
    const f = fanOut();
    f.failing.add(2);
    const first = await t.mf.run(f.main, { shards: 4 });
    await expect(first.result()).rejects.toThrow(/train_all.*child node 'train_all.train-3' \(fan.train\) failed: shard 2 ran out of memory/s);
    expect(f.calls.body).toBe(1);
    expect(f.trainCalls()).toBe(4);

    f.failing.clear();
    f.calls.train.clear();
    const second = await t.mf.run(f.main, { shards: 4 });
    expect(await second.result()).toEqual({ best: 2 });
    expect(f.calls.body).toBe(1); // not run again: FUTURE_HIT
    expect([...f.calls.train.keys()]).toEqual([2]);
    const dyn = t.events.find((e) => e.runId === second.id && e.nodeId === 'train_all' && e.type === 'node:expanded');
    expect(dyn?.cacheStatus).toBe('FUTURE_HIT');
    const children = t.events.filter((e) => e.runId === second.id && e.nodeId?.startsWith('train_all.') && (e.type === 'node:cache-hit' || e.type === 'node:started'));
    expect(children.map((e) => [e.nodeId, e.cacheStatus]).sort()).toEqual([
      ['train_all.train', 'HIT'],
      ['train_all.train-2', 'HIT'],
      ['train_all.train-3', 'MISS'],
      ['train_all.train-4', 'HIT'],
    ]);
    expect((await second.nodes()).find((n) => n.id === 'train_all')?.cacheStatus).toBe('FUTURE_HIT');

    // Third run: the dynamic node's output is cached as a whole; nothing runs, nothing expands.
    f.calls.train.clear();
    const bestCalls = f.calls.best;
    const third = await t.mf.run(f.main, { shards: 4 });
    expect(await third.result()).toEqual({ best: 2 });
    expect([f.calls.body, f.trainCalls(), f.calls.best - bestCalls]).toEqual([1, 0, 0]);
    expect((await third.nodes()).map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT']);
    expect(t.events.some((e) => e.runId === third.id && e.type === 'node:expanded')).toBe(false);
  });

  it('a changed child task definition invalidates the future', async () => {
    const v1 = fanOut({ trainVersion: '1' });
    v1.failing.add(1);
    await expect((await t.mf.run(v1.main, { shards: 2 })).result()).rejects.toThrow(/shard 1/);
    const v2 = fanOut({ trainVersion: '2' });
    const mf = await t.reopen();
    const run = await mf.run(v2.main, { shards: 2 });
    expect(await run.result()).toEqual({ best: 1 });
    expect(v2.calls.body).toBe(1); // a different key: the body compiled a fresh sub-workflow
    expect((await run.nodes()).find((n) => n.id === 'train_all')?.cacheStatus).toBe('POPULATED');
    expect(v2.trainCalls()).toBe(2);
  });

  it('overwriteCache skips the future and replaces it', async () => {
    const f = fanOut();
    f.failing.add(0);
    await expect((await t.mf.run(f.main, { shards: 2 })).result()).rejects.toThrow(/shard 0/);
    f.failing.clear();
    const forced = await t.mf.run(f.main, { shards: 2 }, { overwriteCache: true });
    await forced.result();
    expect(f.calls.body).toBe(2);
    expect((await forced.nodes())[0]).toMatchObject({ cacheStatus: 'SKIPPED', cacheReason: 'overwrite' });
  });

  it('nested dynamics expand level by level and replay from their futures', async () => {
    let outerBodies = 0;
    let innerBodies = 0;
    const square = task({ name: 'nest.square', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x * x);
    const row = dynamic(
      { name: 'nest.row', inputs: { i: z.number().int(), n: z.number().int() }, output: z.array(z.number()), cache: { version: '1' }, tasks: [square] },
      ({ i, n }) => {
        innerBodies++;
        return Array.from({ length: n }, (_, j) => square({ x: i * n + j }));
      },
    );
    const grid = dynamic(
      { name: 'nest.grid', inputs: { n: z.number().int() }, output: z.array(z.array(z.number())), cache: { version: '1' }, tasks: [row] },
      ({ n }) => {
        outerBodies++;
        return Array.from({ length: n }, (_, i) => row({ i, n }));
      },
    );
    const wf = workflow({ name: 'nest.main', inputs: { n: z.number().int() } }, ({ n }) => ({ grid: grid({ n }) }));
    const first = await t.mf.run(wf, { n: 3 });
    expect(await first.result()).toEqual({ grid: [[0, 1, 4], [9, 16, 25], [36, 49, 64]] });
    expect([outerBodies, innerBodies]).toEqual([1, 3]);
    const report = await t.mf.runs.show(first.id);
    expect(report.nodes.map((n) => n.id)).toEqual(['grid', 'grid.row', 'grid.row.square', 'grid.row.square-2', 'grid.row.square-3', 'grid.row-2', 'grid.row-2.square', 'grid.row-2.square-2', 'grid.row-2.square-3', 'grid.row-3', 'grid.row-3.square', 'grid.row-3.square-2', 'grid.row-3.square-3']);
    const second = await t.mf.run(wf, { n: 3 });
    await second.result();
    expect([outerBodies, innerBodies]).toEqual([1, 3]);
  });

  it('a dynamic body that returns the wrong shape, or calls an undeclared task, fails the node with a clear error', async () => {
    const label = task({ name: 'shape.label', inputs: { x: z.number() }, output: z.string() }, async ({ x }) => `#${x}`);
    const wrong = dynamic(
      { name: 'shape.numbers', inputs: { n: z.number().int() }, output: z.array(z.number()), tasks: [label] },
      ({ n }) => label({ x: n }) as never,
    );
    const wf = workflow({ name: 'shape.main', inputs: { n: z.number().int() } }, ({ n }) => ({ out: wrong({ n }) }));
    await expect((await t.mf.run(wf, { n: 1 })).result()).rejects.toThrow(/node 'numbers'.*returned the output of node 'label'.*expects array but is given string/s);

    const sneaky = dynamic(
      { name: 'shape.sneaky', inputs: { n: z.number().int() }, output: z.string(), tasks: [] },
      ({ n }) => label({ x: n }),
    );
    const wf2 = workflow({ name: 'shape.main2', inputs: { n: z.number().int() } }, ({ n }) => ({ out: sneaky({ n }) }));
    await expect((await t.mf.run(wf2, { n: 1 })).result()).rejects.toThrow(/called 'shape.label', which its definition does not declare/);
  });

  it('sub-workflows: inner nodes are cached individually; with a cache override the call is cached as a whole', async () => {
    const runs = { clean: 0, total: 0 };
    const clean = task({ name: 'sub.clean', inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' } }, async ({ rows }) => {
      runs.clean++;
      return rows.filter((r) => r >= 0);
    });
    const total = task({ name: 'sub.total', inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ rows }) => {
      runs.total++;
      return rows.reduce((a, b) => a + b, 0);
    });
    const etl = workflow({ name: 'sub.etl', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ total: total({ rows: clean({ rows }) }) }));
    const double = task({ name: 'sub.double', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x * 2);

    const plain = workflow({ name: 'sub.plain', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ out: double({ x: etl({ rows }).total }) }));
    const first = await t.mf.run(plain, { rows: [1, -2, 3] });
    expect(await first.result()).toEqual({ out: 8 });
    const second = await t.mf.run(plain, { rows: [1, -2, 3] });
    expect(await second.result()).toEqual({ out: 8 });
    expect(runs).toEqual({ clean: 1, total: 1 });
    // No node-level cache: the call expands and each inner node hits; nothing reran, so `double` hits too.
    const inner = t.events.filter((e) => e.runId === second.id && e.type === 'node:cache-hit').map((e) => e.nodeId);
    expect(inner.sort()).toEqual(['double', 'etl.clean', 'etl.total']);

    const cached = workflow({ name: 'sub.cached', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({
      out: double({ x: etl({ rows }).withOverrides({ cache: { version: '1' } }).total }),
    }));
    await (await t.mf.run(cached, { rows: [5, 5] })).result();
    const again = await t.mf.run(cached, { rows: [5, 5] });
    expect(await again.result()).toEqual({ out: 20 });
    const hits = t.events.filter((e) => e.runId === again.id && e.type === 'node:cache-hit').map((e) => e.nodeId);
    expect(hits.sort()).toEqual(['double', 'etl']); // the call as a whole; it did not expand
    expect(t.events.some((e) => e.runId === again.id && e.type === 'node:expanded')).toBe(false);
  });

  it('per-node overrides: retries, cache and timeout on one call', async () => {
    let attempts = 0;
    const flaky = task({ name: 'ovr.flaky', inputs: { x: z.number() }, output: z.number() }, async ({ x }) => {
      attempts++;
      if (attempts < 3) throw new Error('flaky');
      return x;
    });
    const slow = task({ name: 'ovr.slow', inputs: { ms: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ ms }, { signal }) => {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new Error('aborted'));
        });
      });
      return ms;
    });
    const wf = workflow({ name: 'ovr.main', inputs: { x: z.number() } }, ({ x }) => ({
      a: flaky({ x }).withOverrides({ retries: 2 }),
      b: slow({ ms: 1 }).withOverrides({ cache: false }),
    }));
    const run = await t.mf.run(wf, { x: 7 });
    expect(await run.result()).toEqual({ a: 7, b: 1 });
    const nodes = await run.nodes();
    expect(nodes.map((n) => [n.id, n.attempts, n.cacheStatus])).toEqual([
      ['flaky', 3, 'DISABLED'],
      ['slow', 1, 'DISABLED'],
    ]);
    const timed = workflow({ name: 'ovr.timed', inputs: {} }, () => ({ b: slow({ ms: 5_000 }).withOverrides({ timeout: '200ms' }) }));
    await expect((await t.mf.run(timed, {})).result()).rejects.toThrow(/node 'slow'/);
  });
});
