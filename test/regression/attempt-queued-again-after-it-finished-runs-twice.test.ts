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
 *
 * Found in review of the fix: such a job (or one whose addBulk added nothing because the finished
 * job was still there) held its inputs passed by reference again after the publish had released
 * them, and nothing released them again: large values stayed in Redis for the 7-day safety expiry.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttemptResult } from '@memoflow/engine';
import { silentLogger, startWorker } from '@memoflow/worker';
import { BullMqTaskDispatcher } from '../../packages/worker/src/bullmq/bullmq-task-dispatcher.js';
import { taskQueueName } from '../../packages/worker/src/bullmq/queue-names.js';
import { ResultPublisher } from '../../packages/worker/src/bullmq/results-stream.js';
import { attemptJobData, inputHolder, valueKey, valueRefOptions, ValueStore } from '../../packages/worker/src/bullmq/value-refs.js';
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

  /**
   * A pool of one task that counts the bodies it runs, a dispatcher collecting results, the task's
   * queue (to add jobs behind the dispatcher's back) and a probe client, all closed after the test.
   */
  async function setup(task: string, valueRefThresholdBytes?: number) {
    prefix = testPrefix();
    let runs = 0;
    const refs = valueRefThresholdBytes === undefined ? {} : { valueRefThresholdBytes };
    const pool = await startWorker({ tasks: [taskOf(task, () => ++runs)], redisUrl: REDIS_URL, prefix, logger: silentLogger, ...refs });
    closers.push(() => pool.close());
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger, ...refs });
    closers.push(() => dispatcher.close());
    const received: AttemptResult[] = [];
    dispatcher.onResults((batch) => batch.map(async (result) => void received.push(result)));
    const queue = new Queue(taskQueueName(task), { connection: toBullMqConnection(toRedisOptions(REDIS_URL, `${prefix}.test-queue`)), prefix });
    closers.push(() => queue.close());
    const redis = new Redis(REDIS_URL);
    closers.push(async () => void (await redis.quit()));
    const jobKey = (id: string): string => `${prefix}:${taskQueueName(task)}:${id}`;
    return { runs: () => runs, dispatcher, received, queue, redis, jobKey };
  }

  it('a job re-added after its attempt published its result completes without running the body', async () => {
    const { runs, dispatcher, received, queue, redis, jobKey } = await setup('count');

    const attempts = Array.from({ length: 5 }, () => makeAttempt({ task: 'count' }));
    await dispatcher.dispatch(attempts);
    await waitFor(() => received.length === attempts.length, 10_000, 'the first results');
    const jobsGone = async (): Promise<boolean> => (await Promise.all(attempts.map((a) => redis.exists(jobKey(a.id))))).every((n) => n === 0);
    await eventually(jobsGone, 'the jobs removed');
    expect(runs()).toBe(attempts.length);

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
    expect(runs()).toBe(attempts.length);
  }, 30_000);

  it('the inputs a re-added job held again are released when it completes unrun', async () => {
    const { runs, dispatcher, received, queue, redis, jobKey } = await setup('big', 16);

    const attempt = makeAttempt({ task: 'big', inputs: { x: 'y'.repeat(100) } });
    await dispatcher.dispatch([attempt]);
    await waitFor(() => received.length === 1, 10_000, 'the result');
    await eventually(async () => (await redis.exists(jobKey(attempt.id))) === 0, 'the job removed');
    const { data, values } = attemptJobData(attempt, 16);
    const [value] = values;
    if (value === undefined) throw new Error('the input should pass by reference');
    const key = valueKey(prefix, value.hash);
    expect(await redis.exists(key)).toBe(0); // released by the publish

    // What a late re-dispatch does: hold the inputs again, then queue the job.
    await new ValueStore(redis, prefix, valueRefOptions({ valueRefThresholdBytes: 16 })).hold([{ value, holder: inputHolder(attempt.id) }]);
    await queue.addBulk([{ name: 'big', data: { ...data, replyTo: dispatcher.address }, opts: { jobId: attempt.id, removeOnComplete: true, removeOnFail: true } }]);
    await eventually(async () => (await redis.exists(jobKey(attempt.id))) === 0, 'the re-added job taken and removed');
    expect(runs()).toBe(1);
    await eventually(async () => (await redis.exists(key)) === 0, 'the value held again to be released');
  }, 30_000);

  it('a re-dispatch whose addBulk adds nothing (the finished job is still there) releases the inputs it held again', async () => {
    prefix = testPrefix();
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger, valueRefThresholdBytes: 16 });
    closers.push(() => dispatcher.close());
    const redis = new Redis(REDIS_URL);
    closers.push(async () => void (await redis.quit()));
    const attempt = makeAttempt({ task: 'big', inputs: { x: 'z'.repeat(100) } });
    await dispatcher.dispatch([attempt]); // no pool: the job waits
    const [value] = attemptJobData(attempt, 16).values;
    if (value === undefined) throw new Error('the input should pass by reference');
    const key = valueKey(prefix, value.hash);
    expect(await redis.exists(key)).toBe(1);
    // The attempt finishes (a pool published its result, releasing its inputs), its job not yet removed.
    await new ResultPublisher(redis, prefix, 60_000, valueRefOptions({ valueRefThresholdBytes: 16 })).publish(
      { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: new Date(), finishedAt: new Date(), ok: true, output: 1, outputHash: null },
      [value.hash],
      null,
    );
    expect(await redis.exists(key)).toBe(0);
    // A re-dispatch whose marker check answered before that publish: it holds again, and its addBulk adds nothing.
    const client = (dispatcher as unknown as { commands(): Redis }).commands();
    const pipeline = client.pipeline.bind(client);
    let stale = true;
    client.pipeline = ((...args: Parameters<Redis['pipeline']>) => {
      const p = pipeline(...args);
      if (stale) {
        stale = false;
        p.exec = () => Promise.resolve([[null, 0]]);
      }
      return p;
    });
    await dispatcher.dispatch([attempt]);
    expect(stale).toBe(false);
    expect(await redis.exists(key)).toBe(0);
  }, 30_000);
});
