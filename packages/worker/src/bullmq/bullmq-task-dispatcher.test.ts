import type { AttemptResult } from '@memoflow/engine';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { makeAttempt, taskOf, waitFor } from '../testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../testing/redis.js';
import { describeTaskDispatcherContract } from '../testing/task-dispatcher-contract.js';
import { BullMqTaskDispatcher } from './bullmq-task-dispatcher.js';
import { taskQueueName } from './queue-names.js';
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

  function dispatcher(options: { noWorkerGraceMs?: number | null } = {}): BullMqTaskDispatcher {
    const d = new BullMqTaskDispatcher({
      connection: REDIS_URL,
      prefix,
      noWorkerGraceMs: options.noWorkerGraceMs ?? null,
      noWorkerCheckIntervalMs: 100,
      logger: silentLogger,
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
    await first.dispatch([attempt]); // no onResult: this controller "dies" before reading results
    await first.close();
    await pool();
    const results = new Queue('results', { connection: { host: '127.0.0.1', port: 6379, connectionName: `${prefix}.probe` }, prefix });
    closers.push(() => results.close());
    await expectEventually(async () => (await results.getJobCounts('waiting')).waiting === 1);

    const second = dispatcher();
    const received: AttemptResult[] = [];
    second.onResult(async (r) => void received.push(r));
    await waitFor(() => received.length === 1, 10_000, 'the kept result');
    expect(received[0]).toMatchObject({ attemptId: attempt.id, ok: true, output: 'kept' });
  });

  it('redelivers a result whose handler threw (the result job is retried, not dropped)', async () => {
    prefix = testPrefix();
    await pool();
    const d = dispatcher();
    let calls = 0;
    const received: AttemptResult[] = [];
    d.onResult(async (r) => {
      calls += 1;
      if (calls === 1) throw new Error('database down');
      received.push(r);
    });
    await d.dispatch([makeAttempt({ task: 'echo', inputs: { v: 1 } })]);
    await waitFor(() => received.length === 1, 10_000, 'the redelivered result');
    expect(calls).toBe(2);
  });

  it('reports NO_WORKER_FOR_TASK after the grace period and withdraws the job', async () => {
    prefix = testPrefix();
    await pool(); // serves 'echo' only
    const d = dispatcher({ noWorkerGraceMs: 300 });
    const received: AttemptResult[] = [];
    d.onResult(async (r) => void received.push(r));
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
    d.onResult(async (r) => void received.push(r));
    await d.dispatch([makeAttempt({ task: 'echo', inputs: { v: 'late' } })]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await pool();
    await waitFor(() => received.length === 1, 10_000, 'the result');
    expect(received[0]).toMatchObject({ ok: true, output: 'late' });
  });

  it('rejects attempt ids BullMQ cannot store, and dispatch after close', async () => {
    prefix = testPrefix();
    const d = dispatcher();
    await expect(d.dispatch([makeAttempt({ task: 'echo', id: 'r1:n1:1' })])).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await d.close();
    await expect(d.dispatch([makeAttempt({ task: 'echo' })])).rejects.toMatchObject({ code: 'DISPATCHER_CLOSED' });
  });
});

async function expectEventually(predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
