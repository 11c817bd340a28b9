/**
 * Regression: the dispatcher's "is this attempt finished?" check (EXISTS of its published-result
 * marker) and its addBulk are two round trips. A recovering controller re-dispatching an attempt
 * that is running at that moment could see no marker, then the worker published the result and its
 * job was removed (removeOnComplete), then the addBulk arrived and queued the attempt afresh: the
 * body ran a second time. The worker only asked for the marker on a job's re-runs
 * (`attemptsStarted > 1`), and a re-added job starts at 1.
 *
 * Here the late addBulk is made directly: once the attempt has finished and its job is gone, the
 * same job (same id, same data, as the dispatcher builds it) is queued again. The body must not run
 * again, and the queue must not keep the job.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttemptResult } from '@memoflow/engine';
import { silentLogger, startWorker } from '@memoflow/worker';
import { BullMqTaskDispatcher } from '../../packages/worker/src/bullmq/bullmq-task-dispatcher.js';
import { taskQueueName } from '../../packages/worker/src/bullmq/queue-names.js';
import { attemptJobData } from '../../packages/worker/src/bullmq/value-refs.js';
import { toBullMqConnection, toRedisOptions } from '../../packages/worker/src/bullmq/redis-connection.js';
import { makeAttempt, taskOf, waitFor } from '../../packages/worker/src/testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../../packages/worker/src/testing/redis.js';

async function eventually(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('regression: an attempt queued again after it finished runs its body again', () => {
  const closers: (() => Promise<void>)[] = [];
  let prefix = '';
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await cleanUpPrefix(prefix);
  });

  it('a job re-added after its attempt published its result completes without running the body', async () => {
    prefix = testPrefix();
    let runs = 0;
    const pool = await startWorker({ tasks: [taskOf('count', () => ++runs)], redisUrl: REDIS_URL, prefix, logger: silentLogger });
    closers.push(() => pool.close());
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger });
    closers.push(() => dispatcher.close());
    const received: AttemptResult[] = [];
    dispatcher.onResults((batch) => batch.map(async (result) => void received.push(result)));
    const queue = new Queue(taskQueueName('count'), { connection: toBullMqConnection(toRedisOptions(REDIS_URL, `${prefix}.test-queue`)), prefix });
    closers.push(() => queue.close());
    const redis = new Redis(REDIS_URL);
    closers.push(async () => void (await redis.quit()));
    const jobKey = (id: string): string => `${prefix}:${taskQueueName('count')}:${id}`;

    const attempts = Array.from({ length: 5 }, () => makeAttempt({ task: 'count' }));
    await dispatcher.dispatch(attempts);
    await waitFor(() => received.length === attempts.length, 10_000, 'the first results');
    const jobsGone = async (): Promise<boolean> => (await Promise.all(attempts.map((a) => redis.exists(jobKey(a.id))))).every((n) => n === 0);
    await eventually(jobsGone, 'the jobs removed');
    expect(runs).toBe(attempts.length);

    // The addBulk that arrived after the job's removal (its EXISTS ran before the result was out).
    await queue.addBulk(
      attempts.map((attempt) => ({
        name: attempt.task,
        data: { ...attemptJobData(attempt, null).data, replyTo: dispatcher.address },
        opts: { jobId: attempt.id, removeOnComplete: true, removeOnFail: true },
      })),
    );
    expect(await queue.getJobCountByTypes('wait', 'active', 'completed')).toBe(attempts.length);
    await eventually(jobsGone, 'the re-added jobs to be taken and removed');
    await new Promise((resolve) => setTimeout(resolve, 200)); // a body that did run would have counted by now
    expect(runs).toBe(attempts.length);
  }, 30_000);
});
