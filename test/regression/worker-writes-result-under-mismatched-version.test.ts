/**
 * Regression: an attempt carried no version or signature, so during a rolling deploy a worker still
 * running the previous definition of a task executed attempts traced from the new one, and its
 * result was cached under the new version's key for 28 days. Now every attempt carries the task
 * definition's version and signature digest, and a worker whose registered task differs refuses it
 * (non-retryable TASK_VERSION_MISMATCH naming both), so nothing is cached; in both modes.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type TaskImplementation, type WorkflowSpec } from '@memoflow/engine';
import { connect, task, workflow, z, type Memoflow } from '@memoflow/sdk';
import { InProcessTaskDispatcher, silentLogger, startWorker, toTaskRegistry, type WorkerPool } from '@memoflow/worker';
import { REDIS_URL, cleanUpPrefix } from '../../packages/worker/src/testing/redis.js';
import { TEST_DATABASE_URL, dropSchema, uniqueName } from '../support/modes.js';

/** One task name, two deployments of it: what a rolling deploy has running side by side. */
function deployments(name: string, executed: string[]) {
  const v1 = task({ name, inputs: { x: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ x }) => {
    executed.push('v1');
    return x * 20;
  });
  const v2 = task({ name, inputs: { x: z.number() }, output: z.number(), cache: { version: '2' } }, async ({ x }) => {
    executed.push('v2');
    return x * 30;
  });
  /** Same version, another interface (the output became a string). */
  const v2Signature = task({ name, inputs: { x: z.number() }, output: z.string(), cache: { version: '2' } }, async ({ x }) => {
    executed.push('v2-signature');
    return String(x);
  });
  const flow = (t: typeof v2) => workflow({ name: `${name}.flow`, inputs: { x: z.number() } }, ({ x }) => ({ y: t({ x }) }));
  return { v1, v2, v2Signature, flow };
}

describe('distributed: a BullMQ worker running another definition refuses the attempt', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open(): Promise<{ mf: Memoflow; serve: (impl: TaskImplementation) => Promise<WorkerPool> }> {
    const schema = `mf_reg_${randomBytes(6).toString('hex')}`;
    const prefix = `mf-reg-${randomBytes(5).toString('hex')}`;
    const pools: WorkerPool[] = [];
    const mf = await connect({ databaseUrl: TEST_DATABASE_URL, schema, redisUrl: REDIS_URL, prefix, log: 'silent' });
    cleanups.push(async () => {
      await mf.close();
      for (const pool of pools) await pool.close();
      await cleanUpPrefix(prefix);
      await dropSchema(schema);
    });
    const serve = async (impl: TaskImplementation) => {
      const pool = await startWorker({ tasks: [impl], redisUrl: REDIS_URL, prefix, concurrency: 2, logger: silentLogger });
      pools.push(pool);
      return pool;
    };
    return { mf, serve };
  }

  it('an attempt for version 2 reaching a worker registered with version 1 fails TASK_VERSION_MISMATCH, runs nothing, caches nothing', async () => {
    const executed: string[] = [];
    const name = uniqueName('reg.deploy');
    const { v1, v2, flow } = deployments(name, executed);
    const { mf, serve } = await open();
    const old = await serve(v1.implementation);

    const run = await mf.run(flow(v2), { x: 1 });
    await expect(run.result()).rejects.toThrow(/TASK_VERSION_MISMATCH|another definition/);
    const [node] = await run.nodes();
    expect(node).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'TASK_VERSION_MISMATCH', retryable: false } });
    expect(node?.error?.message).toContain("attempt has version '2'");
    expect(node?.error?.message).toContain("worker has version '1'");
    expect(executed).toEqual([]);
    expect(await mf.cache.list({ task: name })).toEqual([]);

    // Once the new code is deployed, the same run succeeds and its result is cached under its own key.
    await old.close();
    await serve(v2.implementation);
    const again = await mf.run(flow(v2), { x: 1 });
    expect(await again.result()).toEqual({ y: 30 });
    expect(executed).toEqual(['v2']);
    expect((await again.nodes())[0]).toMatchObject({ cacheStatus: 'POPULATED' });
    expect(await mf.cache.list({ task: name })).toHaveLength(1);
  });

  it('a worker whose task has the same version but another signature refuses too', async () => {
    const executed: string[] = [];
    const name = uniqueName('reg.deploy');
    const { v2, v2Signature, flow } = deployments(name, executed);
    const { mf, serve } = await open();
    await serve(v2Signature.implementation);
    const run = await mf.run(flow(v2), { x: 1 });
    await expect(run.result()).rejects.toThrow();
    const [node] = await run.nodes();
    expect(node?.error).toMatchObject({ code: 'TASK_VERSION_MISMATCH', retryable: false });
    expect(executed).toEqual([]);
    expect(await mf.cache.list({ task: name })).toEqual([]);
  });
});

describe('embedded: the in-process dispatcher refuses an attempt traced from another definition', () => {
  async function runWith(spec: WorkflowSpec, registered: TaskImplementation) {
    const catalog = new InMemoryCacheCatalog();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([registered]), logger: silentLogger });
    const controller = new Controller({ catalog, runStore: new InMemoryRunStore(), dispatcher });
    try {
      const runId = await controller.submit({ spec, inputs: { x: { value: 1 } }, project: 'p', domain: 'd' });
      const state = await controller.wait(runId);
      return { state, node: Object.values(state.nodes)[0], entries: await catalog.list() };
    } finally {
      await controller.close();
      await dispatcher.close();
    }
  }

  it('version 2 traced, version 1 registered: TASK_VERSION_MISMATCH, nothing ran, nothing cached', async () => {
    const executed: string[] = [];
    const { v1, v2, flow } = deployments(uniqueName('reg.embedded'), executed);
    const { state, node, entries } = await runWith(flow(v2).spec, v1.implementation);
    expect(state.run.status).toBe('failed');
    expect(node?.error).toMatchObject({ code: 'TASK_VERSION_MISMATCH', retryable: false });
    expect(executed).toEqual([]);
    expect(entries).toEqual([]);
  });

  it('a spec saved by the previous release (no taskVersion) still runs; only the signature is checked', async () => {
    const executed: string[] = [];
    const { v2, v2Signature, flow } = deployments(uniqueName('reg.embedded'), executed);
    const { taskVersion: _dropped, ...oldNode } = flow(v2).spec.nodes[0]!;
    const oldSpec: WorkflowSpec = { ...flow(v2).spec, nodes: [oldNode] };
    expect(oldSpec.nodes[0]).not.toHaveProperty('taskVersion');

    const same = await runWith(oldSpec, v2.implementation);
    expect(same.state.run.status).toBe('succeeded');
    expect(same.state.run.outputs).toEqual({ y: 30 });
    expect(executed).toEqual(['v2']);

    const otherSignature = await runWith(oldSpec, v2Signature.implementation);
    expect(otherSignature.node?.error).toMatchObject({ code: 'TASK_VERSION_MISMATCH' });
    expect(executed).toEqual(['v2']);
  });
});
