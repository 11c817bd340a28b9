/**
 * `memoflow controller` and `memoflow worker` stop on SIGTERM with exit code 0 within a few seconds:
 * idle, with a run in flight, and after their Postgres went away, whether stopped (connections cut)
 * or partitioned (a query in flight never answered). Before the bounded shutdown (robustness issue,
 * item 7) a controller whose connection had dropped with a query in flight exited 13 on SIGTERM:
 * its close never finished and Node gave up on the unsettled await. Each test runs on a Redis and a
 * Postgres cluster of the file's own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, DistributedEnv, exitOf, resultWithin, waitFor, type Child } from '../distributed/support.js';
import { startPartitionProxy, type PartitionProxy } from '../support/partition-proxy.js';
import { TestPostgres, TestRedis } from './servers.js';

/** What "a few seconds" means for a process with nothing left to wait for. */
const PROMPT_EXIT_MS = 5_000;
/**
 * With a query that will never be answered: the controller's close is bounded per step (10 s), and
 * the pool's end destroys what is left after 5 s.
 */
const PARTITIONED_EXIT_MS = 20_000;

let redis: TestRedis;
let pg: TestPostgres;
let t: DistributedEnv | undefined;
let proxy: PartitionProxy | undefined;

/** SIGTERM, then the exit code (or signal); fails if the process is still up after `timeoutMs`. */
function terminate(child: Child, timeoutMs: number): Promise<number | NodeJS.Signals | null> {
  child.process.kill('SIGTERM');
  return exitOf(child, timeoutMs);
}

/** The controller's JSON event lines about `runId`. */
function eventsOf(child: Child, runId: string): string[] {
  return child.stdout.filter((line) => line.startsWith('{') && line.includes(runId)).map((line) => String((JSON.parse(line) as { event?: unknown }).event));
}

describe.skipIf(!TestPostgres.available())('faults: `memoflow controller` and `memoflow worker` exit 0 on SIGTERM', () => {
  beforeAll(async () => {
    [redis, pg] = await Promise.all([TestRedis.start({ persistent: false }), TestPostgres.start()]);
  }, 60_000);
  afterAll(async () => {
    await redis.dispose();
    pg.dispose();
  });
  afterEach(async () => {
    await t?.cleanup();
    await proxy?.close();
    t = undefined;
    proxy = undefined;
  }, 30_000);

  it('idle: both exit 0 within a few seconds', async () => {
    t = await DistributedEnv.create({ redisUrl: redis.url, databaseUrl: pg.url });
    const [controller, worker] = await Promise.all([t.startCliController(30_000), t.startCliWorker(2)]);
    const [stoppedController, stoppedWorker] = await Promise.all([terminate(controller, PROMPT_EXIT_MS), terminate(worker, PROMPT_EXIT_MS)]);
    expect(stoppedController, controller.stderr()).toBe(0);
    expect(stoppedWorker, worker.stderr()).toBe(0);
    expect(controller.stdout.some((line) => line.includes('"stopped"'))).toBe(true);
  }, 60_000);

  it('a run in flight: the controller taking its results and the worker running its attempts both exit 0; the run still completes, each body once', async () => {
    t = await DistributedEnv.create({ redisUrl: redis.url, databaseUrl: pg.url });
    const env = t;
    const [controller, worker] = await Promise.all([t.startCliController(30_000), t.startCliWorker(4)]);
    const submitter = await t.connect();
    const salt = Math.floor(Math.random() * 1_000_000);
    // 12 squares of 1 s on 4 slots: three waves, results arriving throughout.
    const submitted = await submitter.run(wide, { salt, ms: 1000 });
    // A run's results go to its owner only (issue 9, run leases): this client hands the run over
    // (closing releases its lease), and the standalone controller's sweep (every lease / 4) takes it.
    await submitter.close();
    await waitFor('the controller to record a result of the run', () => eventsOf(controller, submitted.id).includes('node:succeeded'), 25_000);
    const mf = await t.connect();
    const run = mf.getRun<unknown>(submitted.id);
    const stoppedController = await terminate(controller, PROMPT_EXIT_MS);
    expect(stoppedController, controller.stderr()).toBe(0);

    await waitFor('the worker to be running attempts', () => {
      const lines = env.executions().filter((line) => line.pid === worker.process.pid);
      return countBy(lines, 'start').size > countBy(lines, 'done').size;
    });
    // The pool finishes what it runs (1 s bodies), publishes the results, then exits.
    const stoppedWorker = await terminate(worker, 1000 + PROMPT_EXIT_MS);
    expect(stoppedWorker, worker.stderr()).toBe(0);

    await t.startCliWorker(4); // the rest of the run
    expect(await resultWithin(t, mf, run, 30_000)).toEqual(wideOutputs(salt));
    expect([...countBy(t.executions(), 'done').values()]).toEqual(Array(WIDTH + 1).fill(1));
  }, 90_000);

  it('the controller exits 0 after its Postgres stopped (every connection cut, the sweeper failing)', async () => {
    t = await DistributedEnv.create({ redisUrl: redis.url, databaseUrl: pg.url });
    // --stale-after 1500: the sweeper asks Postgres for stale runs every second.
    const controller = await t.startCliController(1_500);
    pg.stop('fast');
    try {
      await waitFor('the sweeper to fail', () => controller.stdout.some((line) => line.includes('sweeping for unleased runs failed')), 10_000);
      const stopped = await terminate(controller, PROMPT_EXIT_MS);
      expect(stopped, controller.stderr()).toBe(0);
    } finally {
      await pg.start();
    }
  }, 60_000);

  it('the controller exits 0 after Postgres stopped answering (a partition, the sweep query in flight for ever)', async () => {
    proxy = await startPartitionProxy(pg.url);
    t = await DistributedEnv.create({ redisUrl: redis.url, databaseUrl: proxy.url });
    const controller = await t.startCliController(1_500);
    proxy.partition();
    const partitioned = proxy;
    await waitFor('the next sweep (within a second) to send its query into the partition', () => partitioned.droppedBytes() > 0, 10_000);
    const stopped = await terminate(controller, PARTITIONED_EXIT_MS);
    expect(stopped, controller.stderr()).toBe(0);
  }, 60_000);
});
