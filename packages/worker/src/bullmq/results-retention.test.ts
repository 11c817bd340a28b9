import { systemClock } from '@memoflow/engine';
import type { AttemptResult, TaskAttempt } from '@memoflow/engine';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { AttemptCancellations } from '../attempt-cancellations.js';
import { Semaphore } from '../concurrency/semaphore.js';
import { silentLogger } from '../logger.js';
import type { WorkerLogger } from '../logger.js';
import { toTaskRegistry } from '../task-registry.js';
import { makeAttempt, recordingLogger, taskOf, waitFor } from '../testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../testing/redis.js';
import { createAttemptProcessor } from './attempt-processor.js';
import { BullMqTaskDispatcher } from './bullmq-task-dispatcher.js';
import { taskQueueName } from './queue-names.js';
import { ResultPublisher, resultSeenKey, resultsInboxKey, resultsStreamKey } from './results-stream.js';
import { startWorker } from './start-worker.js';
import { valueRefOptions, ValueStore } from './value-refs.js';

describe('retention: Redis keeps of a finished attempt only what recovery needs', () => {
  let prefix = '';
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await cleanUpPrefix(prefix);
  });

  function dispatcher(options: { resultClaimIdleMs?: number; logger?: WorkerLogger } = {}): BullMqTaskDispatcher {
    const d = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, noWorkerCheckIntervalMs: 100, logger: silentLogger, ...options });
    closers.push(() => d.close());
    return d;
  }

  /** A pool of one task `count` that counts the bodies it runs. */
  async function countingPool(): Promise<{ runs: () => number }> {
    let runs = 0;
    const p = await startWorker({ tasks: [taskOf('count', () => ++runs)], redisUrl: REDIS_URL, prefix, logger: silentLogger });
    closers.push(() => p.close());
    return { runs: () => runs };
  }

  function probe(): Redis {
    const redis = new Redis(REDIS_URL, { connectionName: `${prefix}.probe` });
    closers.push(async () => void (await redis.quit()));
    return redis;
  }

  const jobKey = (attempt: TaskAttempt): string => `${prefix}:${taskQueueName(attempt.task)}:${attempt.id}`;

  it('removes finished jobs and acknowledged results, keeping one marker per attempt', async () => {
    prefix = testPrefix();
    const redis = probe();
    await countingPool();
    const d = dispatcher();
    const received: AttemptResult[] = [];
    d.onResults((batch) => batch.map(async (r) => void received.push(r)));
    const attempts = Array.from({ length: 20 }, () => makeAttempt({ task: 'count' }));
    await d.dispatch(attempts);
    await waitFor(() => received.length === 20, 10_000, 'all results');
    await expectEventually(async () => (await redis.xlen(resultsStreamKey(prefix))) === 0);
    for (const attempt of attempts) {
      expect(await redis.exists(jobKey(attempt))).toBe(0);
      expect(await redis.pttl(resultSeenKey(prefix, attempt.id))).toBeGreaterThan(0);
    }
  });

  it('never trims a result that is not recorded: a failing handler keeps it through maintenance passes', async () => {
    prefix = testPrefix();
    const redis = probe();
    await countingPool();
    const d = dispatcher({ resultClaimIdleMs: 200 }); // a maintenance pass (claims, trims) every 100 ms
    let calls = 0;
    d.onResults((batch) =>
      batch.map(async () => {
        calls += 1;
        throw new Error('database down');
      }),
    );
    await d.dispatch([makeAttempt({ task: 'count' })]);
    await waitFor(() => calls >= 1, 10_000, 'the first delivery');
    await new Promise((resolve) => setTimeout(resolve, 700));
    // The result went to its dispatcher's inbox (it is live); both streams are trimmed alike.
    const inbox = resultsInboxKey(prefix, d.address);
    expect(await redis.xlen(inbox)).toBe(1);
    expect(((await redis.xpending(inbox, 'controllers')) as [number])[0]).toBe(1);
  });

  it('does not dispatch again an attempt whose job finished and was removed while its result waits unread', async () => {
    prefix = testPrefix();
    const redis = probe();
    const pool = await countingPool();
    const logger = recordingLogger();
    const first = dispatcher({ logger }); // no onResults: this controller never reads results
    const attempt = makeAttempt({ task: 'count' });
    await first.dispatch([attempt]);
    await expectEventually(async () => (await redis.xlen(resultsStreamKey(prefix))) === 1 && (await redis.exists(jobKey(attempt))) === 0);
    await new Promise((resolve) => setTimeout(resolve, 600)); // six watchdog checks
    await first.dispatch([attempt]); // a recovering controller dispatching it again
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await redis.exists(jobKey(attempt))).toBe(0);
    expect(pool.runs()).toBe(1);
    expect(logger.records.filter((r) => r.level === 'warn')).toEqual([]); // the watchdog did not take it for lost

    const second = dispatcher();
    const received: AttemptResult[] = [];
    second.onResults((batch) => batch.map(async (r) => void received.push(r)));
    await waitFor(() => received.length === 1, 10_000, 'the waiting result');
    expect(received[0]).toMatchObject({ attemptId: attempt.id, ok: true, output: 1 });
  });

  it('dispatches again an attempt whose job and result are both gone (Redis lost them)', async () => {
    prefix = testPrefix();
    const redis = probe();
    const d = dispatcher();
    const received: AttemptResult[] = [];
    d.onResults((batch) => batch.map(async (r) => void received.push(r)));
    const attempt = makeAttempt({ task: 'count' });
    await d.dispatch([attempt]); // no pool yet: the job waits
    for (const key of await redis.keys(`${prefix}:${taskQueueName('count')}:*`)) await redis.del(key);
    const pool = await countingPool();
    await waitFor(() => received.length === 1, 10_000, 'the result of the re-dispatched attempt');
    expect(received[0]).toMatchObject({ attemptId: attempt.id, ok: true });
    expect(pool.runs()).toBe(1);
  });

  it('completes a job run again after its result was published without running the body again', async () => {
    prefix = testPrefix();
    const redis = probe();
    const results = new ResultPublisher(redis, prefix, 60_000);
    let runs = 0;
    const processor = createAttemptProcessor({
      registry: toTaskRegistry([taskOf('count', () => ++runs)]),
      clock: systemClock,
      slots: new Semaphore(1),
      cancellations: new AttemptCancellations(),
      results,
      values: new ValueStore(redis, prefix, valueRefOptions({})),
      logger: silentLogger,
    });
    const attempt = makeAttempt({ task: 'count' });
    const job = (attemptsStarted: number) => ({ id: attempt.id, queueName: taskQueueName('count'), data: attempt, attemptsStarted, progress: 0 }) as unknown as Job;
    expect(await processor(job(1), undefined, undefined)).toEqual({ ok: true }); // publishes, then "dies" before completing
    expect(await processor(job(2), undefined, undefined)).toEqual({ ok: true }); // the stalled job, taken again
    expect(runs).toBe(1);
    expect(await redis.xlen(resultsStreamKey(prefix))).toBe(1);
  });
});

async function expectEventually(predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
