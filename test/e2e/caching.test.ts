import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { NonRetryableError, hashWith, task, workflow, z } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

/** Counts how often each task body ran, so a test can say "executed nothing". */
function counter() {
  const calls = new Map<string, number>();
  return {
    hit(name: string) {
      calls.set(name, (calls.get(name) ?? 0) + 1);
    },
    get(name: string) {
      return calls.get(name) ?? 0;
    },
    total() {
      return [...calls.values()].reduce((a, b) => a + b, 0);
    },
    reset() {
      calls.clear();
    },
  };
}

/** The ETL pipeline of DESIGN.md, with counters. */
function etlPipeline(options: { cleanVersion?: string; totalOutput?: z.ZodType } = {}) {
  const runs = counter();
  const clean = task(
    { name: 'etl.clean', inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: options.cleanVersion ?? '1' } },
    async ({ rows }) => {
      runs.hit('clean');
      return rows.filter((r) => r >= 0);
    },
  );
  const total = task(
    { name: 'etl.total', inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } },
    async ({ rows }) => {
      runs.hit('total');
      return rows.reduce((a, b) => a + b, 0);
    },
  );
  const etl = workflow({ name: 'etl.main', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ total: total({ rows: clean({ rows }) }) }));
  return { runs, clean, total, etl };
}

describe.each(MODES)('caching end to end ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('runs the DESIGN.md example and reports each node', async () => {
    const { etl } = etlPipeline();
    const run = await t.mf.run(etl, { rows: [1, -2, 3] }, { project: 'demo', domain: 'dev' });
    expect(await run.result()).toEqual({ total: 4 });
    const nodes = await run.nodes();
    expect(nodes.map((n) => [n.id, n.task, n.status, n.cacheStatus, n.attempts])).toEqual([
      ['clean', 'etl.clean', 'succeeded', 'POPULATED', 1],
      // The cascade rule: clean executed, so total runs without a lookup (and repopulates its entry).
      ['total', 'etl.total', 'succeeded', 'SKIPPED', 1],
    ]);
    expect(nodes.every((n) => typeof n.cacheKey === 'string' && n.cacheKey.length === 64)).toBe(true);
  });

  it('a repeat run hits every node and executes nothing', async () => {
    const { etl, runs } = etlPipeline();
    const first = await t.mf.run(etl, { rows: [1, -2, 3] });
    await first.result();
    runs.reset();
    const second = await t.mf.run(etl, { rows: [1, -2, 3] });
    expect(await second.result()).toEqual({ total: 4 });
    expect(runs.total()).toBe(0);
    expect((await second.nodes()).map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT']);
    const hitLines = t.events.filter((e) => e.runId === second.id && e.type === 'node:cache-hit');
    expect(hitLines.map((e) => e.nodeId)).toEqual(['clean', 'total']);
    expect(hitLines.every((e) => e.cacheStatus === 'HIT' && typeof e.cacheKey === 'string')).toBe(true);
  });

  it('the catalog outlives the connection (a later process hits)', async () => {
    const { etl, runs } = etlPipeline();
    await (await t.mf.run(etl, { rows: [5, 6] })).result();
    await t.mf.close();
    runs.reset();
    const later = await t.reopen();
    const again = await later.run(etl, { rows: [5, 6] });
    expect(await again.result()).toEqual({ total: 11 });
    expect(runs.total()).toBe(0);
  });

  it('new inputs miss', async () => {
    const { etl, runs } = etlPipeline();
    await (await t.mf.run(etl, { rows: [1, 2] })).result();
    runs.reset();
    const run = await t.mf.run(etl, { rows: [1, 2, 3] });
    expect(await run.result()).toEqual({ total: 6 });
    expect(runs.get('clean')).toBe(1);
    expect((await run.nodes())[0]?.cacheStatus).toBe('POPULATED');
  });

  it('a version bump misses', async () => {
    const v1 = etlPipeline({ cleanVersion: '1' });
    await (await t.mf.run(v1.etl, { rows: [1, 2] })).result();
    const v2 = etlPipeline({ cleanVersion: '2' });
    const run = await t.reopen().then((mf) => mf.run(v2.etl, { rows: [1, 2] }));
    await run.result();
    expect(v2.runs.get('clean')).toBe(1);
    const nodes = await run.nodes();
    expect(nodes[0]?.cacheStatus).toBe('POPULATED');
    // The cascade rule: clean executed, so total reran without a lookup.
    expect([nodes[1]?.cacheStatus, nodes[1]?.cacheReason]).toEqual(['SKIPPED', 'upstream-reran']);
  });

  it('a signature change misses', async () => {
    const before = task({ name: 'sig.double', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x * 2);
    const wfBefore = workflow({ name: 'sig.main', inputs: { x: z.number() } }, ({ x }) => ({ y: before({ x }) }));
    await (await t.mf.run(wfBefore, { x: 2 })).result();
    let ran = 0;
    const after = task({ name: 'sig.double', inputs: { x: z.number() }, output: z.string(), cache: { version: '1' } }, async ({ x }) => {
      ran++;
      return String(x * 2);
    });
    const wfAfter = workflow({ name: 'sig.main', inputs: { x: z.number() } }, ({ x }) => ({ y: after({ x }) }));
    const mf = await t.reopen();
    expect(await (await mf.run(wfAfter, { x: 2 })).result()).toEqual({ y: '4' });
    expect(ran).toBe(1);
  });

  it('input key order does not change the key', async () => {
    let ran = 0;
    const describeIt = task(
      { name: 'order.describe', inputs: { config: z.object({ a: z.number(), b: z.string() }) }, output: z.string(), cache: { version: '1' } },
      async ({ config }) => {
        ran++;
        return `${config.a}${config.b}`;
      },
    );
    const wf = workflow({ name: 'order.main', inputs: { config: z.object({ a: z.number(), b: z.string() }) } }, ({ config }) => ({ out: describeIt({ config }) }));
    const first = await t.mf.run(wf, { config: { a: 1, b: 'x' } });
    await first.result();
    const second = await t.mf.run(wf, { config: { b: 'x', a: 1 } });
    await second.result();
    expect(ran).toBe(1);
    expect((await second.nodes())[0]?.cacheKey).toBe((await first.nodes())[0]?.cacheKey);
  });

  it('project and domain isolate entries', async () => {
    const { etl, runs } = etlPipeline();
    await (await t.mf.run(etl, { rows: [1] }, { project: 'a', domain: 'dev' })).result();
    runs.reset();
    await (await t.mf.run(etl, { rows: [1] }, { project: 'b', domain: 'dev' })).result();
    expect(runs.total()).toBe(2);
    runs.reset();
    await (await t.mf.run(etl, { rows: [1] }, { project: 'a', domain: 'prod' })).result();
    expect(runs.total()).toBe(2);
    runs.reset();
    await (await t.mf.run(etl, { rows: [1] }, { project: 'a', domain: 'dev' })).result();
    expect(runs.total()).toBe(0);
  });

  it('ignored inputs do not change the key', async () => {
    let ran = 0;
    const scale = task(
      { name: 'ignore.scale', inputs: { x: z.number(), logLevel: z.string() }, output: z.number(), cache: { version: '1', ignoreInputs: ['logLevel'] } },
      async ({ x }) => {
        ran++;
        return x * 10;
      },
    );
    const wf = workflow({ name: 'ignore.main', inputs: { x: z.number(), logLevel: z.string() } }, ({ x, logLevel }) => ({ y: scale({ x, logLevel }) }));
    await (await t.mf.run(wf, { x: 1, logLevel: 'info' })).result();
    const again = await t.mf.run(wf, { x: 1, logLevel: 'debug' });
    expect(await again.result()).toEqual({ y: 10 });
    expect(ran).toBe(1);
    await (await t.mf.run(wf, { x: 2, logLevel: 'debug' })).result();
    expect(ran).toBe(2);
  });

  it('hashWith: downstream of a rerun node with an unchanged content hash is looked up, and hits', async () => {
    const runs = counter();
    const sha = (rows: number[]) => createHash('sha256').update(JSON.stringify(rows)).digest('hex');
    const Rows = hashWith(z.array(z.number()), sha);
    // `load` is not cached, so it reruns every time; its output is content-addressed.
    const load = task({ name: 'hw.load', inputs: { n: z.number() }, output: Rows }, async ({ n }) => {
      runs.hit('load');
      return Array.from({ length: n }, (_, i) => i);
    });
    const sum = task({ name: 'hw.sum', inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ rows }) => {
      runs.hit('sum');
      return rows.reduce((a, b) => a + b, 0);
    });
    const wf = workflow({ name: 'hw.main', inputs: { n: z.number() } }, ({ n }) => ({ sum: sum({ rows: load({ n }) }) }));
    await (await t.mf.run(wf, { n: 4 })).result();
    runs.reset();
    const second = await t.mf.run(wf, { n: 4 });
    expect(await second.result()).toEqual({ sum: 6 });
    expect(runs.get('load')).toBe(1);
    expect(runs.get('sum')).toBe(0);
    const nodes = await second.nodes();
    expect(nodes.map((n) => n.cacheStatus)).toEqual(['DISABLED', 'HIT']);
  });

  it('the cascade rule: a node that executes makes everything downstream execute without a lookup', async () => {
    const runs = counter();
    const a = task({ name: 'cas.a', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => {
      runs.hit('a');
      return x + 1;
    });
    const b = task({ name: 'cas.b', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => {
      runs.hit('b');
      return x * 2;
    });
    const c = task({ name: 'cas.c', inputs: { x: z.number(), y: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x, y }) => {
      runs.hit('c');
      return x + y;
    });
    const wf = workflow({ name: 'cas.main', inputs: { x: z.number(), y: z.number() } }, ({ x, y }) => {
      const first = a({ x });
      const second = b({ x: first });
      const side = b({ x: y });
      return { out: c({ x: second, y: side }) };
    });
    await (await t.mf.run(wf, { x: 1, y: 5 })).result();
    // Evict only a's entry: a misses and executes; b (same input as before) would hit, but must not.
    const firstRunEntries = await t.mf.cache.list({ task: 'cas.a' });
    expect(firstRunEntries).toHaveLength(1);
    await t.mf.cache.evict({ keys: [firstRunEntries[0]?.key ?? ''] });
    runs.reset();
    const run = await t.mf.run(wf, { x: 1, y: 5 });
    expect(await run.result()).toEqual({ out: 14 });
    const byId = Object.fromEntries((await run.nodes()).map((n) => [n.id, [n.cacheStatus, n.cacheReason]]));
    expect(byId).toEqual({
      a: ['POPULATED', null],
      b: ['SKIPPED', 'upstream-reran'],
      'b-2': ['HIT', expect.stringMatching(/^from run /)],
      c: ['SKIPPED', 'upstream-reran'],
    });
    expect([runs.get('a'), runs.get('b'), runs.get('c')]).toEqual([1, 1, 1]);
    // Everything was repopulated: a third run executes nothing.
    runs.reset();
    await (await t.mf.run(wf, { x: 1, y: 5 })).result();
    expect(runs.total()).toBe(0);
  });

  it('a failing attempt is not cached; a successful retry is', async () => {
    let attempts = 0;
    const flaky = task(
      { name: 'retry.flaky', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' }, retries: 2 },
      async ({ x }) => {
        attempts++;
        if (attempts === 1) throw new Error('transient failure');
        return x * 3;
      },
    );
    const wf = workflow({ name: 'retry.main', inputs: { x: z.number() } }, ({ x }) => ({ y: flaky({ x }) }));
    const run = await t.mf.run(wf, { x: 2 });
    expect(await run.result()).toEqual({ y: 6 });
    const [node] = await run.nodes();
    expect([node?.attempts, node?.cacheStatus]).toEqual([2, 'POPULATED']);
    const entries = await t.mf.cache.list({ task: 'retry.flaky' });
    expect(entries).toHaveLength(1);
    const again = await t.mf.run(wf, { x: 2 });
    await again.result();
    expect(attempts).toBe(2);
  });

  it('a node that exhausts its retries fails the run, aborts downstream, and caches nothing', async () => {
    let calls = 0;
    const broken = task({ name: 'fail.broken', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' }, retries: 1 }, async () => {
      calls++;
      throw new Error('always broken');
    });
    const after = task({ name: 'fail.after', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x);
    const wf = workflow({ name: 'fail.main', inputs: { x: z.number() } }, ({ x }) => ({ y: after({ x: broken({ x }) }) }));
    const run = await t.mf.run(wf, { x: 1 });
    await expect(run.result()).rejects.toThrow(/node 'broken'.*always broken/);
    expect(calls).toBe(2);
    const nodes = await run.nodes();
    expect(nodes.map((n) => n.status)).toEqual(['failed', 'aborted']);
    expect(nodes[0]?.error?.message).toBe('always broken');
    expect(await t.mf.cache.list({ task: 'fail.broken' })).toHaveLength(0);
  });

  it('NonRetryableError fails at once, whatever retries says', async () => {
    let calls = 0;
    const strict = task({ name: 'nonretry.strict', inputs: { x: z.number() }, output: z.number(), retries: 3 }, async () => {
      calls++;
      throw new NonRetryableError('bad data, retrying will not help');
    });
    const wf = workflow({ name: 'nonretry.main', inputs: { x: z.number() } }, ({ x }) => ({ y: strict({ x }) }));
    await expect((await t.mf.run(wf, { x: 1 })).result()).rejects.toThrow(/bad data/);
    expect(calls).toBe(1);
  });

  it('overwriteCache executes every node and replaces the entries', async () => {
    let value = 1;
    const read = task({ name: 'ow.read', inputs: { key: z.string() }, output: z.number(), cache: { version: '1' } }, async () => value);
    const wf = workflow({ name: 'ow.main', inputs: { key: z.string() } }, ({ key }) => ({ v: read({ key }) }));
    expect(await (await t.mf.run(wf, { key: 'k' })).result()).toEqual({ v: 1 });
    value = 2;
    expect(await (await t.mf.run(wf, { key: 'k' })).result()).toEqual({ v: 1 });
    const forced = await t.mf.run(wf, { key: 'k' }, { overwriteCache: true });
    expect(await forced.result()).toEqual({ v: 2 });
    expect((await forced.nodes()).map((n) => [n.cacheStatus, n.cacheReason])).toEqual([['SKIPPED', 'overwrite']]);
    value = 3;
    expect(await (await t.mf.run(wf, { key: 'k' })).result()).toEqual({ v: 2 });
    expect(await t.mf.cache.list({ task: 'ow.read' })).toHaveLength(1);
  });

  it('a task without an output is cached like any other', async () => {
    let ran = 0;
    const notify = task({ name: 'void.notify', inputs: { message: z.string() }, cache: { version: '1' } }, async () => {
      ran++;
    });
    const wf = workflow({ name: 'void.main', inputs: { message: z.string() } }, ({ message }) => ({ done: notify({ message }) }));
    expect(await (await t.mf.run(wf, { message: 'hi' })).result()).toEqual({ done: null });
    const again = await t.mf.run(wf, { message: 'hi' });
    await again.result();
    expect(ran).toBe(1);
    expect((await again.nodes())[0]?.cacheStatus).toBe('HIT');
  });

  it('optional inputs may be left out: unset for the task, absent from the key', async () => {
    const seen: (string | undefined)[] = [];
    const greet = task(
      { name: 'opt.greet', inputs: { name: z.string(), greeting: z.string().optional() }, output: z.string(), cache: { version: '1' } },
      async ({ name, greeting }) => {
        seen.push(greeting);
        return `${greeting ?? 'hello'} ${name}`;
      },
    );
    const wf = workflow({ name: 'opt.main', inputs: { name: z.string(), greeting: z.string().optional() } }, ({ name, greeting }) => ({
      plain: greet({ name }),
      passed: greet({ name, greeting }),
    }));
    const run = await t.mf.run(wf, { name: 'ada' });
    expect(await run.result()).toEqual({ plain: 'hello ada', passed: 'hello ada' });
    expect(seen).toEqual([undefined, undefined]);
    const nodes = await run.nodes();
    // Left out in both calls: the same key, so the second node may even hit the first's entry.
    expect(nodes[0]?.cacheKey).toBe(nodes[1]?.cacheKey);
    const hi = await t.mf.run(wf, { name: 'ada', greeting: 'hi' });
    expect(await hi.result()).toEqual({ plain: 'hello ada', passed: 'hi ada' });
  });

  it('fans fifty results into one input and reads fields of object outputs', async () => {
    const square = task({ name: 'fan.square', inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x * x);
    const stats = task(
      { name: 'fan.stats', inputs: { xs: z.array(z.number()) }, output: z.object({ sum: z.number(), count: z.number() }), cache: { version: '1' } },
      async ({ xs }) => ({ sum: xs.reduce((a, b) => a + b, 0), count: xs.length }),
    );
    const half = task({ name: 'fan.half', inputs: { x: z.number() }, output: z.number() }, async ({ x }) => x / 2);
    const wf = workflow({ name: 'fan.main', inputs: {} }, () => {
      const squares = Array.from({ length: 50 }, (_, i) => square({ x: i }));
      const s = stats({ xs: squares });
      return { sum: s.sum, half: half({ x: s.count }) };
    });
    const run = await t.mf.run(wf, {});
    expect(await run.result()).toEqual({ sum: 40425, half: 25 });
    expect(await run.nodes()).toHaveLength(52);
  });

  it('records a run in the run store (runs ls / show)', async () => {
    const { etl } = etlPipeline();
    const run = await t.mf.run(etl, { rows: [2, 2] });
    await run.result();
    const listed = await t.mf.runs.list({ limit: 5 });
    expect(listed[0]).toMatchObject({ id: run.id, workflow: 'etl.main', status: 'succeeded' });
    const report = await t.mf.runs.show(run.id);
    expect(report.outputs).toEqual({ total: 4 });
    expect(report.nodes[1]).toMatchObject({ id: 'total', output: 4, attempts: 1 });
  });
});
