/**
 * Results reach the controller that dispatched their attempt (its inbox), with the shared stream as
 * the fallback: for jobs and workers of an earlier release, for controllers that are gone, and for
 * what a gone controller left in its inbox. Real Redis, a fresh prefix per test.
 */
import type { AttemptResult } from '@memoflow/engine';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { makeAttempt, taskOf, waitFor } from '../testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../testing/redis.js';
import { BullMqTaskDispatcher } from './bullmq-task-dispatcher.js';
import { ControllerRegistry } from './controller-registry.js';
import { taskQueueName } from './queue-names.js';
import { controllersKey, ResultPublisher, RESULTS_GROUP, resultsInboxKey, resultsStreamKey } from './results-stream.js';
import { startWorker } from './start-worker.js';

describe('BullMQ results routing', () => {
  let prefix = '';
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await cleanUpPrefix(prefix);
  });

  function dispatcher(options: { address?: string; resultClaimIdleMs?: number } = {}): BullMqTaskDispatcher {
    const d = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger, ...options });
    closers.push(() => d.close());
    return d;
  }

  /** A dispatcher whose handler records what it took. */
  function controller(options: { address?: string; resultClaimIdleMs?: number } = {}): { d: BullMqTaskDispatcher; took: AttemptResult[] } {
    const d = dispatcher(options);
    const took: AttemptResult[] = [];
    d.onResults((results) => results.map(async (r) => void took.push(r)));
    return { d, took };
  }

  async function pool(): Promise<void> {
    const p = await startWorker({ tasks: [taskOf('echo', ({ v }) => v ?? null)], redisUrl: REDIS_URL, prefix, logger: silentLogger });
    closers.push(() => p.close());
  }

  function probe(): Redis {
    const redis = new Redis(REDIS_URL, { connectionName: `${prefix}.probe` });
    closers.push(async () => void (await redis.quit()));
    return redis;
  }

  /** Until the controller counts as live (its consumer's first heartbeat). */
  async function live(d: BullMqTaskDispatcher): Promise<void> {
    const redis = probe();
    await expectEventually(async () => (await redis.zscore(controllersKey(prefix), d.address)) !== null);
  }

  it('each result goes back to the controller that dispatched its attempt, never to another one', async () => {
    prefix = testPrefix();
    await pool();
    const a = controller();
    const b = controller();
    await Promise.all([live(a.d), live(b.d)]);
    const fromA = Array.from({ length: 20 }, (_, i) => makeAttempt({ task: 'echo', runId: 'ra', inputs: { v: i } }));
    const fromB = Array.from({ length: 20 }, (_, i) => makeAttempt({ task: 'echo', runId: 'rb', inputs: { v: i } }));
    await Promise.all([a.d.dispatch(fromA), b.d.dispatch(fromB)]);
    await waitFor(() => a.took.length === 20 && b.took.length === 20, 20_000, 'every result');
    expect(new Set(a.took.map((r) => r.runId))).toEqual(new Set(['ra']));
    expect(new Set(b.took.map((r) => r.runId))).toEqual(new Set(['rb']));
    expect(await probe().xlen(resultsStreamKey(prefix))).toBe(0); // nothing went the shared way
  });

  it('a job queued by a controller of an earlier release (no replyTo) and a result from a worker of one reach a controller through the shared stream', async () => {
    prefix = testPrefix();
    await pool();
    const c = controller();
    await live(c.d);
    const old = makeAttempt({ task: 'echo', inputs: { v: 'old job' } });
    const queue = new Queue(taskQueueName('echo'), { connection: { host: '127.0.0.1', port: 6379, connectionName: `${prefix}.probe-queue` }, prefix });
    closers.push(() => queue.close());
    await queue.add('echo', old, { jobId: old.id }); // the attempt as is: no replyTo
    // An earlier release's worker publishes with no address at all.
    await new ResultPublisher(probe(), prefix, 60_000).publish(okResult('rold-n9-1', 'old worker'));
    await waitFor(() => c.took.length === 2, 20_000, 'both results');
    expect(c.took.map((r) => r.attemptId).sort()).toEqual([old.id, 'rold-n9-1'].sort());
  });

  it('route() hands a result to a live controller\'s inbox, and refuses one whose controller is gone', async () => {
    prefix = testPrefix();
    const owner = controller();
    const other = controller();
    await Promise.all([live(owner.d), live(other.d)]);
    await other.d.route(okResult('rx-n1-1', 'routed'), owner.d.address);
    await waitFor(() => owner.took.length === 1, 10_000, 'the routed result');
    expect(owner.took[0]).toMatchObject({ attemptId: 'rx-n1-1', output: 'routed' });
    expect(other.took).toEqual([]);
    await expect(other.d.route(okResult('rx-n2-1', 'lost'), 'nobody-here')).rejects.toMatchObject({ code: 'CONTROLLER_GONE', retryable: true });
    await owner.d.close();
    await expect(other.d.route(okResult('rx-n3-1', 'too late'), owner.d.address)).rejects.toMatchObject({ code: 'CONTROLLER_GONE' });
  });

  it('a controller that dies with results in its inbox (read and never acknowledged, or never read) has them moved to the shared stream for the others', async () => {
    prefix = testPrefix();
    const redis = probe();
    // The dead controller: live for 300 ms after its last heartbeat, never again.
    const dead = new ControllerRegistry(redis, prefix, 'dead-controller', 300);
    await dead.heartbeat();
    const inbox = resultsInboxKey(prefix, 'dead-controller');
    await redis.xgroup('CREATE', inbox, RESULTS_GROUP, '0', 'MKSTREAM');
    const publisher = new ResultPublisher(redis, prefix, 60_000);
    for (const i of [1, 2, 3, 4]) await publisher.publish(okResult(`rd-n${i}-1`, i), [], 'dead-controller');
    expect(await redis.xlen(inbox)).toBe(4);
    await redis.xreadgroup('GROUP', RESULTS_GROUP, 'dead-controller', 'COUNT', 2, 'STREAMS', inbox, '>'); // two read, never acked
    const survivor = controller({ resultClaimIdleMs: 300 });
    await waitFor(() => survivor.took.length === 4, 10_000, 'the dead controller\'s results');
    expect(survivor.took.map((r) => r.attemptId).sort()).toEqual(['rd-n1-1', 'rd-n2-1', 'rd-n3-1', 'rd-n4-1']);
    // Its inbox and its address are gone; a late result for it goes the shared way.
    await expectEventually(async () => (await redis.exists(inbox)) === 0 && (await redis.zscore(controllersKey(prefix), 'dead-controller')) === null);
    await publisher.publish(okResult('rd-n5-1', 5), [], 'dead-controller');
    await waitFor(() => survivor.took.length === 5, 10_000, 'the late result');
    expect(await redis.exists(inbox)).toBe(0);
  });

  it('takeOverFrom() hands on the inbox of a controller whose leases expired at once, though it still counts as live', async () => {
    prefix = testPrefix();
    const redis = probe();
    const stalled = new ControllerRegistry(redis, prefix, 'stalled-controller', 60_000); // live for another minute
    await stalled.heartbeat();
    const inbox = resultsInboxKey(prefix, 'stalled-controller');
    await redis.xgroup('CREATE', inbox, RESULTS_GROUP, '0', 'MKSTREAM');
    const publisher = new ResultPublisher(redis, prefix, 60_000);
    for (const i of [1, 2, 3]) await publisher.publish(okResult(`rs-n${i}-1`, i), [], 'stalled-controller');
    const survivor = controller({ resultClaimIdleMs: 60_000 }); // its own heartbeat would not empty a live inbox
    await live(survivor.d);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(survivor.took).toEqual([]);
    await Promise.all([survivor.d.takeOverFrom('stalled-controller'), survivor.d.takeOverFrom('stalled-controller')]);
    await waitFor(() => survivor.took.length === 3, 10_000, 'the handed-on results');
    expect(survivor.took.map((r) => r.attemptId).sort()).toEqual(['rs-n1-1', 'rs-n2-1', 'rs-n3-1']);
    expect(await redis.exists(inbox)).toBe(0);
    expect(await redis.zscore(controllersKey(prefix), 'stalled-controller')).toBeNull();
  });

  it('close() hands what is left in the inbox to the shared stream: a result its handler kept refusing reaches another controller', async () => {
    prefix = testPrefix();
    await pool();
    const refusing = dispatcher();
    let refused = 0;
    refusing.onResults((results) =>
      results.map(async () => {
        refused += 1;
        throw Object.assign(new Error('not now'), { retryAfterMs: 60_000 });
      }),
    );
    await live(refusing);
    await refusing.dispatch([makeAttempt({ task: 'echo', runId: 'rc', inputs: { v: 'handed on' } })]);
    await waitFor(() => refused === 1, 10_000, 'the refusal');
    const other = controller();
    await refusing.close();
    await waitFor(() => other.took.length === 1, 10_000, 'the handed-on result');
    expect(other.took[0]).toMatchObject({ runId: 'rc', output: 'handed on' });
    expect(refused).toBe(1); // retryAfterMs held it back: no redelivery within the minute
  });

  it('a handler\'s retryAfterMs decides when a refused result comes again', async () => {
    prefix = testPrefix();
    await pool();
    const d = dispatcher();
    const at: number[] = [];
    d.onResults((results) =>
      results.map(async () => {
        at.push(Date.now());
        if (at.length === 1) throw Object.assign(new Error('leased elsewhere'), { retryAfterMs: 120 });
      }),
    );
    await d.dispatch([makeAttempt({ task: 'echo', inputs: { v: 1 } })]);
    await waitFor(() => at.length === 2, 10_000, 'the second delivery');
    const gap = (at[1] as number) - (at[0] as number);
    expect(gap).toBeGreaterThanOrEqual(110);
    expect(gap).toBeLessThan(450); // the default backoff would be 500 ms
  });
});

function okResult(attemptId: string, output: string | number): AttemptResult {
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
