import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, task, workflow, z, type Memoflow } from '@memoflow/sdk';
import { startCli } from '../support/cli.js';
import { MODES, TEST_DATABASE_URL, dropSchema, uniqueName, type TestConnection } from '../support/modes.js';

/** Resolves once `check` holds, polling every 10 ms; fails naming `what` after `ms`. */
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * slow (cached) runs until its signal aborts, unless `finish` is set; after (cached) reads it;
 * quick (cached) runs beside them and finishes at once.
 */
function slowPipeline() {
  const seen = { started: 0, aborted: 0, afterRan: 0, finish: false };
  const slow = task({ name: uniqueName('cancel.slow'), inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }, { signal }) => {
    seen.started += 1;
    if (seen.finish) return x * 2;
    return new Promise<number>((_resolve, reject) => {
      signal.addEventListener('abort', () => {
        seen.aborted += 1;
        reject(signal.reason as Error);
      });
    });
  });
  const after = task({ name: uniqueName('cancel.after'), inputs: { y: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ y }) => {
    seen.afterRan += 1;
    return y + 1;
  });
  const quick = task({ name: uniqueName('cancel.quick'), inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x);
  const wf = workflow({ name: uniqueName('cancel.wf'), inputs: { x: z.number() } }, ({ x }) => ({ out: after({ y: slow({ x }) }), side: quick({ x }) }));
  return { seen, slow, after, quick, wf };
}

describe.each(MODES)('cancel ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('ends the run cancelled within two seconds: the running body sees its signal abort, pending nodes never start, nothing unfinished is cached', async () => {
    const { seen, slow, after, quick, wf } = slowPipeline();
    const run = await t.mf.run(wf, { x: 3 });
    await until(async () => seen.started === 1 && (await run.nodes()).find((n) => n.task === quick.taskName)?.status === 'succeeded', 'slow to start and quick to finish');

    const asked = Date.now();
    const result = await run.cancel();
    expect(Date.now() - asked).toBeLessThan(2_000);
    expect(result).toEqual({ cancelled: true, status: 'cancelled', message: `run ${run.id} cancelled (1 running node(s) stopped, 1 never started)` });
    await until(() => seen.aborted === 1, "slow's signal to abort", 2_000);
    await expect(run.result()).rejects.toMatchObject({ code: 'RUN_CANCELLED' });

    const nodes = await run.nodes();
    expect(nodes.map((n) => [n.task, n.status])).toEqual([
      [slow.taskName, 'cancelled'],
      [after.taskName, 'cancelled'],
      [quick.taskName, 'succeeded'],
    ]);
    expect(seen.afterRan).toBe(0);
    expect(t.events.filter((e) => e.runId === run.id && e.type === 'node:cancelled').map((e) => e.task).sort()).toEqual([slow.taskName, after.taskName].sort());
    expect(t.events.filter((e) => e.runId === run.id && e.type === 'run:cancelled')).toHaveLength(1);
    await until(async () => (await t.mf.cache.list({ task: quick.taskName })).length === 1, "quick's entry");
    expect(await t.mf.cache.list({ task: slow.taskName })).toEqual([]);
    expect(await t.mf.cache.list({ task: after.taskName })).toEqual([]);
    expect((await t.mf.runs.list()).find((r) => r.id === run.id)?.status).toBe('cancelled');

    // Cancelling again is a clear no-op; the cancelled work runs again in a later run (a retry).
    expect(await run.cancel()).toEqual({ cancelled: false, status: 'cancelled', message: `run ${run.id} already cancelled; nothing to cancel` });
    seen.finish = true;
    const again = await t.mf.run(wf, { x: 3 });
    expect(await again.result()).toEqual({ out: 7, side: 3 });
    expect((await again.nodes()).map((n) => [n.task, n.cacheStatus])).toEqual([
      [slow.taskName, 'POPULATED'],
      [after.taskName, 'SKIPPED'], // the cascade: its upstream executed
      [quick.taskName, 'HIT'],
    ]);
  });

  it('cancelling a finished run is a no-op that says how it ended', async () => {
    const { seen, wf } = slowPipeline();
    seen.finish = true;
    const run = await t.mf.run(wf, { x: 1 });
    expect(await run.result()).toEqual({ out: 3, side: 1 });
    expect(await run.cancel()).toEqual({ cancelled: false, status: 'succeeded', message: `run ${run.id} already succeeded; nothing to cancel` });
    expect(await run.result()).toEqual({ out: 3, side: 1 });
    await expect(t.mf.getRun('no-such-run').cancel()).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
  });

  it('cancel while results are in flight: results arriving with or after it are dropped, and only finished nodes are cached', async () => {
    const finished: number[] = [];
    let lateResults = 0;
    let cancelled = false;
    // Forty shards finishing one after another; odd ones ignore their signal, so their results
    // arrive after the cancel.
    const shard = task({ name: uniqueName('cancel.shard'), inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ i }, { signal }) => {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 20 + i * 15);
        if (i % 2 === 0) signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason as Error);
        });
      });
      if (cancelled) lateResults += 1;
      finished.push(i);
      return i;
    });
    const sum = task({ name: uniqueName('cancel.sum'), inputs: { xs: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ xs }) => xs.reduce((a, b) => a + b, 0));
    const wf = workflow({ name: uniqueName('cancel.fan'), inputs: {} }, () => ({ total: sum({ xs: Array.from({ length: 40 }, (_, i) => shard({ i })) }) }));
    const run = await t.mf.run(wf, {});
    await until(() => finished.length >= 10, 'ten shards to finish');
    cancelled = true;
    expect((await run.cancel()).status).toBe('cancelled');
    // Let every body that ignored its signal finish and report.
    await new Promise((resolve) => setTimeout(resolve, 20 + 40 * 15 + 300));
    expect(lateResults).toBeGreaterThan(0);

    const nodes = await run.nodes();
    const done = nodes.filter((n) => n.status === 'succeeded');
    const stopped = nodes.filter((n) => n.status === 'cancelled');
    expect(done.length + stopped.length).toBe(nodes.length);
    expect(nodes.find((n) => n.task === sum.taskName)?.status).toBe('cancelled');
    const entries = new Set((await t.mf.cache.list({ task: shard.taskName, limit: 100 })).map((e) => e.key));
    // Nothing of a cancelled node is cached, however late its result came; a POPULATED one is.
    for (const node of stopped) expect(node.cacheKey === null || !entries.has(node.cacheKey)).toBe(true);
    for (const node of done.filter((n) => n.cacheStatus === 'POPULATED')) expect(entries.has(node.cacheKey ?? '')).toBe(true);
    expect(entries.size).toBeLessThanOrEqual(done.length);
    expect(await t.mf.cache.list({ task: sum.taskName })).toEqual([]);
  });
});

describe('memoflow runs cancel, from another process (postgres)', () => {
  let mf: Memoflow;
  let schema: string;
  beforeEach(async () => {
    schema = `mf_e2e_${randomBytes(6).toString('hex')}`;
    mf = await connect({ databaseUrl: TEST_DATABASE_URL, schema, log: 'silent' });
  });
  afterEach(async () => {
    await mf.close();
    await dropSchema(schema);
  });

  it("reaches the run's controller in this process: the body's signal aborts and the run ends cancelled; again is a no-op", async () => {
    const { seen, wf } = slowPipeline();
    const run = await mf.run(wf, { x: 2 });
    await until(() => seen.started === 1, 'slow to start');
    const env = { DATABASE_URL: TEST_DATABASE_URL, MEMOFLOW_SCHEMA: schema };
    const cli = await startCli(['runs', 'cancel', run.id], { env }).exit();
    expect(cli.stderr).toBe('');
    expect(cli.stdout.trim()).toBe(`run ${run.id} cancelled (1 running node(s) stopped, 1 never started)`);
    expect(cli.code).toBe(0);
    expect(seen.aborted).toBe(1);
    await expect(run.result()).rejects.toMatchObject({ code: 'RUN_CANCELLED' });

    const again = await startCli(['runs', 'cancel', run.id], { env }).exit();
    expect(again.stdout.trim()).toBe(`run ${run.id} already cancelled; nothing to cancel`);
    expect(again.code).toBe(0);
    const shown = await startCli(['runs', 'show', run.id], { env }).exit();
    expect(shown.stdout).toMatch(new RegExp(`run ${run.id} .* cancelled`));
    expect(shown.stdout).toContain('error: cancelled with memoflow runs cancel');
  });
});
