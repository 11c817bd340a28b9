import type { AttemptResult } from '@memoflow/engine';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { eachResult, makeAttempt, taskOf, waitFor } from '../testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../testing/redis.js';
import { describeTaskDispatcherContract } from '../testing/task-dispatcher-contract.js';
import { BullMqTaskDispatcher } from './bullmq-task-dispatcher.js';
import { taskQueueName } from './queue-names.js';
import { RESULT_FIELD, ResultPublisher, RESULTS_GROUP, resultsStreamKey } from './results-stream.js';
import { startWorker } from './start-worker.js';
import type { WorkerPool } from './start-worker.js';

describeTaskDispatcherContract('BullMqTaskDispatcher', async (tasks) => {
  const prefix = testPrefix();
  const pool = await startWorker({ tasks, redisUrl: REDIS_URL, prefix, logger: silentLogger });
  const dispatcher = new BullMqTaskDispatcher({
    connection: REDIS_URL,
    prefix,
    noWorkerGraceMs: 300,
    noWorkerCheckIntervalMs: 100,
    logger: silentLogger,
  });
  return {
    dispatcher,
    cleanup: async () => {
      await dispatcher.close();
      await pool.close();
      await cleanUpPrefix(prefix);
    },
  };
});

describe('BullMqTaskDispatcher', () => {
  let prefix = '';
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await cleanUpPrefix(prefix);
  });

  function dispatcher(options: { noWorkerGraceMs?: number | null; resultClaimIdleMs?: number; resultBatchSize?: number } = {}): BullMqTaskDispatcher {
    const d = new BullMqTaskDispatcher({
      connection: REDIS_URL,
      prefix,
      noWorkerGraceMs: options.noWorkerGraceMs ?? null,
      noWorkerCheckIntervalMs: 100,
      logger: silentLogger,
      ...(options.resultClaimIdleMs === undefined ? {} : { resultClaimIdleMs: options.resultClaimIdleMs }),
      ...(options.resultBatchSize === undefined ? {} : { resultBatchSize: options.resultBatchSize }),
    });
    closers.push(() => d.close());
    return d;
  }

  async function pool(tasks = [taskOf('echo', ({ v }) => v ?? null)]): Promise<WorkerPool> {
    const p = await startWorker({ tasks, redisUrl: REDIS_URL, prefix, logger: silentLogger });
    closers.push(() => p.close());
    return p;
  }

  it('keeps a result in Redis for the next dispatcher when the first closed before consuming it', async () => {
    prefix = testPrefix();
    const first = dispatcher();
    const attempt = makeAttempt({ task: 'echo', inputs: { v: 'kept' } });
    await first.dispatch([attempt]); // no onResults: this controller "dies" before reading results
    await first.close();
    await pool();
    const redis = probe();
    await expectEventually(async () => (await redis.xlen(resultsStreamKey(prefix))) === 1);

    const second = dispatcher();
    const received: AttemptResult[] = [];
    second.onResults(eachResult(async (r) => void received.push(r)));
    await waitFor(() => received.length === 1, 10_000, 'the kept result');
    expect(received[0]).toMatchObject({ attemptId: attempt.id, ok: true, output: 'kept' });
  });

  it('hands results a dead controller read but never acknowledged to another controller', async () => {
    prefix = testPrefix();
    const redis = probe();
    const stream = resultsStreamKey(prefix);
    const publisher = new ResultPublisher(redis, prefix, 60_000);
    const attempts = [1, 2, 3].map((v) => makeAttempt({ task: 'echo', inputs: { v } }));
    for (const [i, attempt] of attempts.entries()) await publisher.publish(okResult(attempt.id, i));
    // The "dead" controller: it read all three through the group and then vanished without acking.
    await redis.xgroup('CREATE', stream, RESULTS_GROUP, '0', 'MKSTREAM');
    const read = (await redis.xreadgroup('GROUP', RESULTS_GROUP, 'dead-controller', 'COUNT', 10, 'STREAMS', stream, '>')) as [string, unknown[]][];
    expect(read[0]?.[1]).toHaveLength(3);

    const started = Date.now();
    const survivor = dispatcher({ resultClaimIdleMs: 400 });
    const received: AttemptResult[] = [];
    survivor.onResults(eachResult(async (r) => void received.push(r)));
    await waitFor(() => received.length === 3, 10_000, 'the claimed results');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300); // not before they went idle
    expect(received.map((r) => r.attemptId).sort()).toEqual(attempts.map((a) => a.id).sort());
    await expectEventually(async () => ((await redis.xpending(stream, RESULTS_GROUP)) as [number])[0] === 0);
  });

  it('does not let a live controller lose the results it holds: a slow handler keeps them', async () => {
    prefix = testPrefix();
    await pool();
    const slow = dispatcher({ resultClaimIdleMs: 300 });
    const other = dispatcher({ resultClaimIdleMs: 300 });
    const seen: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    slow.onResults(eachResult(async (r) => {
      seen.push(`slow ${r.attemptId}`);
      await gate;
    }));
    await slow.dispatch([makeAttempt({ task: 'echo', inputs: { v: 'held' } })]);
    await waitFor(() => seen.length === 1, 10_000, 'the slow handler to start');
    other.onResults(eachResult(async (r) => void seen.push(`other ${r.attemptId}`)));
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // four claim periods
    release();
    expect(seen).toHaveLength(1);
    const redis = probe();
    await expectEventually(async () => ((await redis.xpending(resultsStreamKey(prefix), RESULTS_GROUP)) as [number])[0] === 0);
  });

  it('publishes a result once per attempt: a second publish is a no-op, the first result wins', async () => {
    prefix = testPrefix();
    const redis = probe();
    const publisher = new ResultPublisher(redis, prefix, 60_000);
    await publisher.publish(okResult('r1-n1-1', 'first'));
    await publisher.publish(okResult('r1-n1-1', 'second'));
    const entries = await redis.xrange(resultsStreamKey(prefix), '-', '+');
    expect(entries).toHaveLength(1);
    const fields = entries[0]?.[1] ?? [];
    expect(JSON.parse(fields[fields.indexOf(RESULT_FIELD) + 1] ?? 'null')).toMatchObject({ attemptId: 'r1-n1-1', output: 'first' });
  });

  it('delivers a burst of results in batches of at most resultBatchSize, each exactly once while nothing fails', async () => {
    prefix = testPrefix();
    await pool();
    const d = dispatcher({ resultBatchSize: 32 });
    const received = new Map<string, number>();
    const sizes: number[] = [];
    d.onResults((results) => {
      sizes.push(results.length);
      for (const r of results) received.set(r.attemptId, (received.get(r.attemptId) ?? 0) + 1);
      return results.map(() => Promise.resolve());
    });
    const attempts = Array.from({ length: 300 }, (_, i) => makeAttempt({ task: 'echo', inputs: { v: i } }));
    await d.dispatch(attempts);
    await waitFor(() => received.size === 300, 20_000, 'all results');
    expect([...received.values()].every((n) => n === 1)).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(32);
    expect(sizes.length).toBeLessThan(300); // batched, not one call per result
    const redis = probe();
    await expectEventually(async () => ((await redis.xpending(resultsStreamKey(prefix), RESULTS_GROUP)) as [number])[0] === 0);
  });

  it('queues a dispatch larger than one slice whole, in slices (each attempt once, of two tasks, one already run)', async () => {
    prefix = testPrefix();
    await pool([taskOf('echo', ({ v }) => v ?? null), taskOf('twice', ({ v }) => (typeof v === 'number' ? v * 2 : null))]);
    const d = dispatcher();
    const received = new Map<string, number>();
    d.onResults((results) => results.map(async (r) => void received.set(r.attemptId, (received.get(r.attemptId) ?? 0) + 1)));
    const done = makeAttempt({ task: 'echo', inputs: { v: -1 } });
    await d.dispatch([done]);
    await waitFor(() => received.size === 1, 20_000, 'the first result');
    // 2,500 attempts (three slices of at most 1,000), interleaving two tasks, with the finished one among them.
    const attempts = Array.from({ length: 2_500 }, (_, i) => makeAttempt({ task: i % 2 === 0 ? 'echo' : 'twice', inputs: { v: i } }));
    await d.dispatch([...attempts.slice(0, 1_200), done, ...attempts.slice(1_200)]);
    await waitFor(() => received.size === 2_501, 60_000, 'all results');
    expect([...received.values()].every((n) => n === 1)).toBe(true);
  }, 90_000);

  it('redelivers a result whose save failed (its entry stays pending), and only that one of its batch', async () => {
    prefix = testPrefix();
    await pool();
    const d = dispatcher();
    const redis = probe();
    const batches: string[][] = [];
    let failed = false;
    const attempts = [1, 2, 3].map((v) => makeAttempt({ task: 'echo', inputs: { v } }));
    const unlucky = attempts[1]?.id;
    // Published before the consumer starts, so the first read takes all three in one batch.
    await d.dispatch(attempts);
    await expectEventually(async () => (await redis.xlen(resultsStreamKey(prefix))) === 3);
    d.onResults((results) => {
      batches.push(results.map((r) => r.attemptId));
      return results.map((r) => {
        if (r.attemptId !== unlucky || failed) return Promise.resolve();
        failed = true;
        return Promise.reject(new Error('database down'));
      });
    });
    await waitFor(() => batches.length === 2, 10_000, 'the redelivered result');
    expect(batches[0]?.sort()).toEqual(attempts.map((a) => a.id).sort());
    expect(batches[1]).toEqual([unlucky]);
    await expectEventually(async () => ((await redis.xpending(resultsStreamKey(prefix), RESULTS_GROUP)) as [number])[0] === 0);
  });

  it('a batch that is not saved within a second stops holding back the next read', async () => {
    prefix = testPrefix();
    await pool();
    const d = dispatcher();
    const handed: { id: string; at: number }[] = [];
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => (release = resolve)); // a run whose round keeps retrying
    d.onResults((results) => {
      for (const r of results) handed.push({ id: r.attemptId, at: Date.now() });
      return results.map((_, i) => (handed.length === results.length && i === 0 ? stalled : Promise.resolve()));
    });
    const stuck = makeAttempt({ task: 'echo', inputs: { v: 'stuck' } });
    await d.dispatch([stuck]);
    await waitFor(() => handed.length === 1, 10_000, 'the stuck result');
    const next = makeAttempt({ task: 'echo', inputs: { v: 'next' } });
    await d.dispatch([next]);
    await waitFor(() => handed.length === 2, 10_000, 'the next result');
    const [first, second] = handed as [{ id: string; at: number }, { id: string; at: number }];
    expect(second.id).toBe(next.id);
    expect(second.at - first.at).toBeGreaterThanOrEqual(900); // it waited for the stuck batch first
    expect(second.at - first.at).toBeLessThan(5_000);
    release(); // close() waits for every result handed over to settle
  });

  it('a handler that throws leaves its whole batch pending, to be handed over again', async () => {
    prefix = testPrefix();
    await pool();
    const d = dispatcher();
    const redis = probe();
    const attempts = [1, 2].map((v) => makeAttempt({ task: 'echo', inputs: { v } }));
    await d.dispatch(attempts);
    await expectEventually(async () => (await redis.xlen(resultsStreamKey(prefix))) === 2);
    const batches: string[][] = [];
    d.onResults((results) => {
      batches.push(results.map((r) => r.attemptId).sort());
      if (batches.length === 1) throw new Error('controller bug');
      return results.map(() => Promise.resolve());
    });
    await waitFor(() => batches.length === 2, 10_000, 'the batch again');
    const ids = attempts.map((a) => a.id).sort();
    expect(batches).toEqual([ids, ids]);
    await expectEventually(async () => ((await redis.xpending(resultsStreamKey(prefix), RESULTS_GROUP)) as [number])[0] === 0);
  });

  it('reports NO_WORKER_FOR_TASK after the grace period and withdraws the job', async () => {
    prefix = testPrefix();
    await pool(); // serves 'echo' only
    const d = dispatcher({ noWorkerGraceMs: 300 });
    const received: AttemptResult[] = [];
    d.onResults(eachResult(async (r) => void received.push(r)));
    const orphan = makeAttempt({ task: 'etl.unregistered' });
    const started = Date.now();
    await d.dispatch([orphan]);
    await waitFor(() => received.length === 1, 10_000, 'the no-worker result');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(received[0]).toMatchObject({
      attemptId: orphan.id,
      ok: false,
      error: { code: 'NO_WORKER_FOR_TASK', retryable: false, message: expect.stringContaining("'etl.unregistered'") },
    });
    expect(await d.workerCount('etl.unregistered')).toBe(0);
    expect(await d.workerCount('echo')).toBe(1);
    // withdrawn: a pool started later does not run it
    const queue = new Queue(taskQueueName('etl.unregistered'), { connection: { host: '127.0.0.1', port: 6379, connectionName: `${prefix}.probe` }, prefix });
    closers.push(() => queue.close());
    expect(await queue.getJobState(orphan.id)).toBe('unknown');
  });

  it('does not report an attempt whose worker arrives within the grace period', async () => {
    prefix = testPrefix();
    const d = dispatcher({ noWorkerGraceMs: 1_500 });
    const received: AttemptResult[] = [];
    d.onResults(eachResult(async (r) => void received.push(r)));
    await d.dispatch([makeAttempt({ task: 'echo', inputs: { v: 'late' } })]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await pool();
    await waitFor(() => received.length === 1, 10_000, 'the result');
    expect(received[0]).toMatchObject({ ok: true, output: 'late' });
  });

  /** A plain client for inspecting Redis, named so the leak check knows it; closed after each test. */
  function probe(): Redis {
    const redis = new Redis(REDIS_URL, { connectionName: `${prefix}.probe` });
    closers.push(async () => void (await redis.quit()));
    return redis;
  }

  it('rejects attempt ids BullMQ cannot store, and dispatch after close', async () => {
    prefix = testPrefix();
    const d = dispatcher();
    await expect(d.dispatch([makeAttempt({ task: 'echo', id: 'r1:n1:1' })])).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await d.close();
    await expect(d.dispatch([makeAttempt({ task: 'echo' })])).rejects.toMatchObject({ code: 'DISPATCHER_CLOSED' });
  });
});

function okResult(attemptId: string, output: string | number): Parameters<ResultPublisher['publish']>[0] {
  const [runId = 'r', nodeId = 'n'] = attemptId.split('-');
  const now = new Date();
  return { attemptId, runId, nodeId, attempt: 1, startedAt: now, finishedAt: now, ok: true, output, outputHash: null };
}

async function expectEventually(predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
