import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoflowError, dynamic, hashWith, task, workflow, z, type NodeExplanation } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

/** The DESIGN.md pipeline, with what the tests vary: clean's version and schemas. */
function etlPipeline(options: { cleanVersion?: string; cleanOutput?: z.ZodType<number[]>; cleanRows?: z.ZodType<number[]> } = {}) {
  const clean = task(
    { name: 'etl.clean', inputs: { rows: options.cleanRows ?? z.array(z.number()) }, output: options.cleanOutput ?? z.array(z.number()), cache: { version: options.cleanVersion ?? '1' } },
    async ({ rows }) => rows.filter((r) => r >= 0),
  );
  const total = task({ name: 'etl.total', inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ rows }) => rows.reduce((a, b) => a + b, 0));
  const etl = workflow({ name: 'etl.main', inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ total: total({ rows: clean({ rows }) }) }));
  return { clean, total, etl };
}

/** An explanation without what changes from run to run (ids, keys, dates), for exact comparisons. */
function shape(explanation: NodeExplanation): unknown {
  return {
    node: explanation.node,
    status: explanation.status,
    cacheReason: explanation.cacheReason,
    differences: explanation.differences,
    nearest: explanation.nearest === null ? null : { nodeId: explanation.nearest.nodeId, sameScope: explanation.nearest.sameScope, differing: explanation.nearest.differing },
    upstream: explanation.upstream === undefined ? undefined : shape(explanation.upstream),
  };
}

async function caught(promise: Promise<unknown>): Promise<MemoflowError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MemoflowError) return error;
    throw error;
  }
  throw new Error('expected a MemoflowError');
}

describe.each(MODES)('mf.explain ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('a changed input: the MISS names the input with was → now, and the cascade names clean and why it ran', async () => {
    const { etl } = etlPipeline();
    const first = await t.mf.run(etl, { rows: [1, -2, 3] }, { project: 'demo', domain: 'dev' });
    await first.result();
    const second = await t.mf.run(etl, { rows: [1, -2, 4] }, { project: 'demo', domain: 'dev' });
    await second.result();

    const clean = await t.mf.explain(second.id, 'clean');
    expect(clean).toMatchObject({ node: 'clean', task: 'etl.clean', status: 'POPULATED', runId: second.id });
    expect(clean.key).toMatch(/^[0-9a-f]{64}$/);
    expect(clean.parts).toMatchObject({ project: 'demo', domain: 'dev', task: 'etl.clean', version: '1' });
    expect(clean.nearest).toMatchObject({ runId: first.id, nodeId: 'clean', project: 'demo', domain: 'dev', sameScope: true, differing: 1 });
    expect(clean.differences).toEqual([{ part: 'input', name: 'rows', change: 'changed', was: [1, -2, 3], now: [1, -2, 4] }]);
    expect(clean.reason).toContain(`missed, executed, and wrote its entry: the nearest entry of task 'etl.clean' (written by run ${first.id}, node 'clean'`);
    expect(clean.reason).toContain("differs in input 'rows' ([1,-2,3] → [1,-2,4])");
    // It wrote its entry: the entry it wrote is named, and it was never compared with itself.
    expect(clean.writtenBy).toMatchObject({ runId: second.id, nodeId: 'clean', kind: 'output' });

    const total = await t.mf.explain(second.id, 'total');
    expect(shape(total)).toEqual({
      node: 'total',
      status: 'SKIPPED',
      cacheReason: 'upstream-reran',
      differences: [],
      nearest: null,
      upstream: shape(clean),
    });
    expect(total.upstreamVia).toBe('input');
    expect(total.reason).toContain("upstream node 'clean' executed (POPULATED)");
  });

  it('a version bump, an output schema and an input schema change are each named', async () => {
    // Each definition in a connection of its own, as a later process would run it (one data
    // directory is open in one connection at a time: the previous one closes first).
    let mf = t.mf;
    const runIn = async (pipeline: ReturnType<typeof etlPipeline>) => {
      await mf.close();
      mf = await t.reopen();
      const run = await mf.run(pipeline.etl, { rows: [1, 2] });
      await run.result();
      return run;
    };
    await runIn(etlPipeline());
    const bumped = await runIn(etlPipeline({ cleanVersion: '2' }));
    expect((await mf.explain(bumped.id, 'clean')).differences).toEqual([{ part: 'version', was: '1', now: '2' }]);

    const reshaped = await runIn(etlPipeline({ cleanVersion: '2', cleanOutput: z.array(z.number().min(0)) }));
    const output = await mf.explain(reshaped.id, 'clean');
    expect(output.nearest?.runId).toBe(bumped.id); // the nearest: the same version, newest
    expect(output.differences).toEqual([{ part: 'signature', name: 'output', change: 'changed', was: { type: 'array', items: { type: 'number' } }, now: { type: 'array', items: { type: 'number', minimum: 0 } } }]);
    expect(output.reason).toContain('differs in signature (output schema)');

    const rowsSchema = await runIn(etlPipeline({ cleanVersion: '2', cleanOutput: z.array(z.number().min(0)), cleanRows: z.array(z.number()).max(10) }));
    const input = await mf.explain(rowsSchema.id, 'clean');
    expect(input.nearest?.runId).toBe(reshaped.id);
    expect(input.differences).toEqual([
      { part: 'signature', name: 'inputs.rows', change: 'changed', was: { type: 'array', items: { type: 'number' } }, now: { type: 'array', items: { type: 'number' }, maxItems: 10 } },
    ]);
  });

  it('another project: the nearest entry is found there and the project is the difference; the first run has nothing to compare with', async () => {
    const { etl } = etlPipeline();
    const first = await t.mf.run(etl, { rows: [5] }, { project: 'alpha', domain: 'dev' });
    await first.result();
    const none = await t.mf.explain(first.id, 'clean');
    expect(none.nearest).toBeNull();
    expect(none.differences).toEqual([]);
    expect(none.reason).toContain("the catalog has no entry of task 'etl.clean' to compare with, in any project or domain");

    const other = await t.mf.run(etl, { rows: [5] }, { project: 'beta', domain: 'dev' });
    await other.result();
    const explained = await t.mf.explain(other.id, 'clean');
    expect(explained.nearest).toMatchObject({ runId: first.id, project: 'alpha', domain: 'dev', sameScope: false, differing: 1 });
    expect(explained.differences).toEqual([{ part: 'project', was: 'alpha', now: 'beta' }]);
    expect(explained.reason).toContain("no other entry of task 'etl.clean' in beta/dev; the nearest, in alpha/dev,");
  });

  it('a HIT names the run and node that wrote its entry, and when', async () => {
    const { etl } = etlPipeline();
    const first = await t.mf.run(etl, { rows: [7, 8] });
    await first.result();
    const second = await t.mf.run(etl, { rows: [7, 8] });
    await second.result();
    const hit = await t.mf.explain(second.id, 'total');
    expect(hit).toMatchObject({ status: 'HIT', nearest: null, differences: [], writtenBy: { runId: first.id, nodeId: 'total', kind: 'output' } });
    expect(hit.writtenBy?.createdAt).toBeInstanceOf(Date);
    expect(hit.reason).toContain(`written by run ${first.id}, node 'total', at ${hit.writtenBy?.createdAt.toISOString()}`);
  });

  it('a cascade three levels deep nests each upstream up to the root cause; a hashed output stops it', async () => {
    const step = (name: string) => task({ name, inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => x + 1);
    const [a, b, c] = [step('chain.a'), step('chain.b'), step('chain.c')];
    const chain = workflow({ name: 'chain.main', inputs: { x: z.number() } }, ({ x }) => ({ out: c({ x: b({ x: a({ x }) }) }) }));
    await (await t.mf.run(chain, { x: 1 })).result();
    const second = await t.mf.run(chain, { x: 2 });
    await second.result();
    const explained = await t.mf.explain(second.id, 'c');
    expect([explained.node, explained.upstream?.node, explained.upstream?.upstream?.node, explained.upstream?.upstream?.upstream]).toEqual(['c', 'b', 'a', undefined]);
    expect(explained.upstream?.status).toBe('SKIPPED');
    expect(explained.upstream?.upstream?.differences).toEqual([{ part: 'input', name: 'x', change: 'changed', was: 1, now: 2 }]);

    // Content-hashed output: the reader is looked up, and its explanation is its own (a HIT here).
    const parity = task({ name: 'hash.parity', inputs: { x: z.number() }, output: hashWith(z.number(), (n) => String(n % 2)), cache: { version: '1' } }, async ({ x }) => x % 2);
    const describe = task({ name: 'hash.describe', inputs: { p: z.number() }, output: z.string(), cache: { version: '1' } }, async ({ p }) => (p === 0 ? 'even' : 'odd'));
    const hashed = workflow({ name: 'hash.main', inputs: { x: z.number() } }, ({ x }) => ({ out: describe({ p: parity({ x }) }) }));
    await (await t.mf.run(hashed, { x: 1 })).result();
    const rerun = await t.mf.run(hashed, { x: 3 });
    await rerun.result();
    const reader = await t.mf.explain(rerun.id, 'describe');
    expect(reader.status).toBe('HIT');
    expect(reader.upstream).toBeUndefined();
  });

  it('dynamic children: a new shard misses against a sibling entry, an old one hits', async () => {
    const train = task({ name: 'fan.train', inputs: { shard: z.number().int() }, output: z.number(), cache: { version: '1' } }, async ({ shard }) => shard * 10);
    const trainAll = dynamic(
      { name: 'fan.train_all', inputs: { shards: z.number().int() }, output: z.array(z.number()), cache: { version: '1' }, tasks: [train] },
      ({ shards }) => Array.from({ length: shards }, (_, shard) => train({ shard })),
    );
    const main = workflow({ name: 'fan.main', inputs: { shards: z.number().int() } }, ({ shards }) => ({ all: trainAll({ shards }) }));
    const first = await t.mf.run(main, { shards: 2 });
    await first.result();
    const second = await t.mf.run(main, { shards: 3 });
    await second.result();

    const container = await t.mf.explain(second.id, 'train_all');
    expect(container.differences).toEqual([{ part: 'input', name: 'shards', change: 'changed', was: 2, now: 3 }]);
    const ids = (await second.nodes()).map((n) => n.id);
    expect(ids).toEqual(['train_all', 'train_all.train', 'train_all.train-2', 'train_all.train-3']);
    const fresh = await t.mf.explain(second.id, 'train_all.train-3');
    expect(fresh.status).toBe('POPULATED');
    expect(fresh.nearest?.runId).toBe(first.id);
    const was = fresh.nearest?.nodeId === 'train_all.train' ? 0 : 1;
    expect(fresh.differences).toEqual([{ part: 'input', name: 'shard', change: 'changed', was, now: 2 }]);
    const old = await t.mf.explain(second.id, 'train_all.train-2');
    expect(old).toMatchObject({ status: 'HIT', writtenBy: { runId: first.id, nodeId: 'train_all.train-2' } });
  });

  it('unknown runs and nodes are clear errors; the node error lists the closest ids', async () => {
    const { etl } = etlPipeline();
    const run = await t.mf.run(etl, { rows: [1] });
    await run.result();
    const noRun = await caught(t.mf.explain('no-such-run', 'clean'));
    expect(noRun.code).toBe('RUN_NOT_FOUND');
    expect(noRun.message).toContain("run 'no-such-run' does not exist");
    const noNode = await caught(t.mf.explain(run.id, 'claen'));
    expect(noNode.code).toBe('NODE_NOT_FOUND');
    expect(noNode.message).toContain(`run ${run.id} has no node 'claen' (its nodes: clean, total)`);
    expect(noNode.location).toMatchObject({ workflow: 'etl.main', node: 'claen' });
    const odd = await caught(t.mf.explain(run.id, `x\u0000\n${'y'.repeat(5000)}`));
    expect(odd.code).toBe('NODE_NOT_FOUND');
    expect(odd.message).toContain('x\\u0000\\n');
    expect(odd.message.length).toBeLessThan(600);
    expect((await caught(t.mf.explain('', 'clean'))).code).toBe('RUN_NOT_FOUND');
  });
});
