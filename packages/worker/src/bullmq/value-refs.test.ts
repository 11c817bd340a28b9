import type { AttemptResult, Json, TaskImplementation } from '@memoflow/engine';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { deferred, makeAttempt, taskOf, waitFor } from '../testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../testing/redis.js';
import { BullMqTaskDispatcher } from './bullmq-task-dispatcher.js';
import { taskQueueName } from './queue-names.js';
import { OUTPUT_REF_FIELD, RESULT_FIELD, RESULT_WITH_REF_FIELD, ResultPublisher, resultsStreamKey } from './results-stream.js';
import { startWorker } from './start-worker.js';
import { contentHash, valueKey, valueRefOptions } from './value-refs.js';

/** Values of at least this many bytes go by reference in these tests. */
const THRESHOLD = 100;
const big = (seed: string | number, length = 1_000): string => `${String(seed)}:`.padEnd(length, 'x');

describe('values by reference (BullMQ)', () => {
  let prefix = '';
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await cleanUpPrefix(prefix);
  });

  function dispatcher(): { dispatcher: BullMqTaskDispatcher; results: AttemptResult[] } {
    const d = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, noWorkerCheckIntervalMs: 100, valueRefThresholdBytes: THRESHOLD, logger: silentLogger });
    closers.push(() => d.close());
    const results: AttemptResult[] = [];
    d.onResults((batch) => batch.map(async (r) => void results.push(r)));
    return { dispatcher: d, results };
  }

  async function pool(tasks: TaskImplementation[]): Promise<void> {
    const p = await startWorker({ tasks, redisUrl: REDIS_URL, prefix, valueRefThresholdBytes: THRESHOLD, logger: silentLogger });
    closers.push(() => p.close());
  }

  function probe(): Redis {
    const redis = new Redis(REDIS_URL, { connectionName: `${prefix}.probe` });
    closers.push(async () => void (await redis.quit()));
    return redis;
  }

  async function valueKeys(redis: Redis): Promise<string[]> {
    return redis.keys(`${prefix}:values:*`);
  }

  it('stores an input shared by many attempts once, and deletes it once the last of them has published', async () => {
    prefix = testPrefix();
    const redis = probe();
    const gate = deferred();
    await pool([
      taskOf('measure', async ({ s, i }) => {
        await gate.promise;
        return (s as string).length + (i as number);
      }),
    ]);
    const { dispatcher: d, results } = dispatcher();
    const shared = big('shared');
    const attempts = Array.from({ length: 50 }, (_, i) => makeAttempt({ task: 'measure', inputs: { s: shared, i } }));
    await d.dispatch(attempts);

    const keys = await valueKeys(redis);
    expect(keys).toEqual([valueKey(prefix, contentHash(JSON.stringify(shared)))]);
    expect(await redis.hlen(keys[0] as string)).toBe(51); // the text and one holder per job
    const data = await redis.hget(`${prefix}:${taskQueueName('measure')}:${attempts[0]?.id ?? ''}`, 'data');
    expect(data).not.toContain(shared); // the job carries the hash, not the value
    const job = JSON.parse(data ?? '{}') as Record<string, unknown>;
    expect(job).toMatchObject({ inlineInputs: { s: null, i: 0 }, inputRefs: { s: contentHash(JSON.stringify(shared)) } });
    expect(job).not.toHaveProperty('inputs'); // a worker of the previous release refuses it instead of running it with s = null

    gate.resolve();
    await waitFor(() => results.length === 50, 10_000, 'all results');
    expect(new Map(results.map((r) => [r.attemptId, r.ok ? r.output : null]))).toEqual(new Map(attempts.map((a, i) => [a.id, shared.length + i])));
    await expectEventually(async () => (await valueKeys(redis)).length === 0);
  });

  it('passes a large output by reference: the entry carries the hash, the handler gets the value, and the value goes with the acknowledgement', async () => {
    prefix = testPrefix();
    const redis = probe();
    const publisher = new ResultPublisher(redis, prefix, 60_000, valueRefOptions({ valueRefThresholdBytes: THRESHOLD }));
    const output: Json = { rows: big('rows'), n: 3 };
    const attempt = makeAttempt({ task: 'produce' });
    const now = new Date();
    await publisher.publish({ attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: 1, startedAt: now, finishedAt: now, ok: true, output, outputHash: null });

    const [[, fields] = ['', []]] = await redis.xrange(resultsStreamKey(prefix), '-', '+');
    const hash = contentHash(JSON.stringify(output));
    expect(fields[fields.indexOf(OUTPUT_REF_FIELD) + 1]).toBe(hash);
    expect(fields[fields.indexOf(RESULT_WITH_REF_FIELD) + 1]).not.toContain('rows:');
    expect(fields).not.toContain(RESULT_FIELD); // a controller of the previous release finds no result here, rather than a null output
    expect(await redis.hget(valueKey(prefix, hash), 'v')).toBe(JSON.stringify(output));

    const { results } = dispatcher();
    await waitFor(() => results.length === 1, 10_000, 'the result');
    expect(results[0]).toEqual({ attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: 1, startedAt: now, finishedAt: now, ok: true, output, outputHash: null });
    await expectEventually(async () => (await valueKeys(redis)).length === 0 && (await redis.xlen(resultsStreamKey(prefix))) === 0);
  });

  it("keeps one copy of a value that is both a producer's unacknowledged output and a consumer's input", async () => {
    prefix = testPrefix();
    const redis = probe();
    const publisher = new ResultPublisher(redis, prefix, 60_000, valueRefOptions({ valueRefThresholdBytes: THRESHOLD }));
    const value = big('both');
    const now = new Date();
    await publisher.publish({ attemptId: 'r-p-1', runId: 'r', nodeId: 'p', attempt: 1, startedAt: now, finishedAt: now, ok: true, output: value, outputHash: null });
    const d = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, valueRefThresholdBytes: THRESHOLD, logger: silentLogger });
    closers.push(() => d.close());
    const consumer = makeAttempt({ task: 'consume', inputs: { s: value } });
    await d.dispatch([consumer]);
    const keys = await valueKeys(redis);
    expect(keys).toHaveLength(1);
    const fields = await redis.hkeys(keys[0] as string);
    expect(fields).toHaveLength(3);
    expect(fields).toEqual(expect.arrayContaining(['v', `in:${consumer.id}`, expect.stringMatching(/^out:\d+-\d+$/)]));
  });

  it('fails an attempt whose input by reference is gone with VALUE_MISSING (retryable), without running the body', async () => {
    prefix = testPrefix();
    const redis = probe();
    const { dispatcher: d, results } = dispatcher();
    const attempt = makeAttempt({ task: 'count', inputs: { s: big('lost') } });
    await d.dispatch([attempt]); // no pool yet: the job waits
    for (const key of await valueKeys(redis)) await redis.del(key);
    let runs = 0;
    await pool([taskOf('count', () => ++runs)]);
    await waitFor(() => results.length === 1, 10_000, 'the result');
    expect(results[0]).toMatchObject({ attemptId: attempt.id, ok: false, error: { code: 'VALUE_MISSING', retryable: true, message: expect.stringContaining("input 's'") } });
    expect(runs).toBe(0);
  });

  it('hands over a result whose output by reference is gone as a failed VALUE_MISSING result, not as data', async () => {
    prefix = testPrefix();
    const redis = probe();
    const publisher = new ResultPublisher(redis, prefix, 60_000, valueRefOptions({ valueRefThresholdBytes: THRESHOLD }));
    const now = new Date();
    await publisher.publish({ attemptId: 'r-gone-1', runId: 'r', nodeId: 'gone', attempt: 1, startedAt: now, finishedAt: now, ok: true, output: big('gone'), outputHash: null });
    for (const key of await valueKeys(redis)) await redis.del(key);
    const { results } = dispatcher();
    await waitFor(() => results.length === 1, 10_000, 'the result');
    expect(results[0]).toMatchObject({ attemptId: 'r-gone-1', ok: false, error: { code: 'VALUE_MISSING', retryable: true } });
  });

  it('sends values below the threshold inline, and everything inline when the threshold is null', async () => {
    prefix = testPrefix();
    const redis = probe();
    const small = 'x'.repeat(THRESHOLD - 3); // its JSON text is THRESHOLD - 1 bytes
    const d = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, valueRefThresholdBytes: null, logger: silentLogger });
    closers.push(() => d.close());
    await d.dispatch([makeAttempt({ task: 'inline', inputs: { s: big('inline') } })]);
    const refs = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, valueRefThresholdBytes: THRESHOLD, logger: silentLogger });
    closers.push(() => refs.close());
    await refs.dispatch([makeAttempt({ task: 'inline', inputs: { s: small } })]);
    expect(await valueKeys(redis)).toEqual([]);
    expect(() => new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, valueRefThresholdBytes: -1 })).toThrow(/valueRefThresholdBytes/);
  });
});

async function expectEventually(predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
