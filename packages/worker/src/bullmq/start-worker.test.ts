import type { AttemptResult, TaskImplementation } from '@memoflow/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import type { ChildWorker } from '../testing/child-process.js';
import { spawnChildWorker } from '../testing/child-process.js';
import { deferred, eachResult, makeAttempt, recordingLogger, taskOf, waitFor } from '../testing/fixtures.js';
import type { Deferred } from '../testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../testing/redis.js';
import { BullMqTaskDispatcher } from './bullmq-task-dispatcher.js';
import { startWorker } from './start-worker.js';
import type { StartWorkerOptions, WorkerPool } from './start-worker.js';

describe('startWorker (BullMQ worker pool)', () => {
  let prefix = '';
  const closers: (() => Promise<void>)[] = [];
  const children: ChildWorker[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
      await child.exited;
    }
    for (const close of closers.splice(0).reverse()) await close();
    await cleanUpPrefix(prefix);
  });

  async function pool(options: Partial<StartWorkerOptions> & Pick<StartWorkerOptions, 'tasks'>): Promise<WorkerPool> {
    const p = await startWorker({ redisUrl: REDIS_URL, prefix, logger: silentLogger, ...options });
    closers.push(() => p.close());
    return p;
  }

  function dispatcherWithResults() {
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger });
    closers.push(() => dispatcher.close());
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => void results.push(r)));
    return { dispatcher, results };
  }

  async function child(env: Record<string, string> = {}): Promise<ChildWorker> {
    const worker = await spawnChildWorker({ PREFIX: prefix, ...env });
    children.push(worker);
    return worker;
  }

  /** Tasks that block on gates the test opens, counting how many run at once across all of them. */
  function gatedTasks(names: string[]) {
    const gates: Deferred<void>[] = [];
    const stats = { active: 0, max: 0, started: 0 };
    const tasks: TaskImplementation[] = names.map((name) =>
      taskOf(name, async () => {
        const gate = deferred();
        gates.push(gate);
        stats.started += 1;
        stats.active += 1;
        stats.max = Math.max(stats.max, stats.active);
        await gate.promise;
        stats.active -= 1;
        return name;
      }),
    );
    return { tasks, gates, stats };
  }

  it('states the limits of a task body when it starts', async () => {
    prefix = testPrefix();
    const logger = recordingLogger();
    await pool({ tasks: [taskOf('limits', () => null)], lockDurationMs: 12_000, timeoutGraceMs: 3_000, logger });
    const started = logger.records.find((r) => r.message === 'pool:started');
    expect(started?.fields).toMatchObject({ lockDurationMs: 12_000, timeoutGraceMs: 3_000 });
    expect((started?.fields as { limits: string }).limits).toMatch(/synchronous work longer than lockDurationMs \(12000 ms\).*runs again.*at most timeoutGraceMs \(3000 ms\)/);
  });

  it('bounds concurrency across all tasks of the pool', async () => {
    prefix = testPrefix();
    const gated = gatedTasks(['a', 'b', 'c']);
    await pool({ tasks: gated.tasks, concurrency: 2 });
    const { dispatcher, results } = dispatcherWithResults();
    await dispatcher.dispatch(['a', 'b', 'c', 'a', 'b', 'c'].map((task) => makeAttempt({ task })));
    await waitFor(() => gated.stats.started === 2);
    await new Promise((resolve) => setTimeout(resolve, 200)); // give a third one the chance to start wrongly
    expect(gated.stats.active).toBe(2);
    for (let i = 0; i < 6; i += 1) {
      await waitFor(() => gated.gates.length > i, 10_000, `attempt ${i} to start`);
      gated.gates[i]?.resolve();
    }
    await waitFor(() => results.length === 6, 10_000, 'six results');
    expect(gated.stats.max).toBe(2);
  });

  it('close() drains: the running attempt finishes and publishes; a claimed, unstarted one goes back', async () => {
    prefix = testPrefix();
    const gated = gatedTasks(['first', 'second']);
    const p = await startWorker({ tasks: gated.tasks, redisUrl: REDIS_URL, prefix, logger: silentLogger, concurrency: 1 });
    const { dispatcher, results } = dispatcherWithResults();
    const first = makeAttempt({ task: 'first' });
    const second = makeAttempt({ task: 'second' });
    await dispatcher.dispatch([first]);
    await waitFor(() => gated.stats.started === 1);
    await dispatcher.dispatch([second]); // claimed by the 'second' worker, waits for the pool's one slot
    await new Promise((resolve) => setTimeout(resolve, 200));

    let closed = false;
    const closing = p.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(closed).toBe(false);
    gated.gates[0]?.resolve();
    await closing;
    expect(results.map((r) => r.attemptId)).toEqual([first.id]); // published before close resolved
    expect(gated.stats.started).toBe(1);

    const next = gatedTasks(['second']);
    await pool({ tasks: next.tasks });
    await waitFor(() => next.gates.length === 1, 10_000, 'the handed-back attempt to start elsewhere');
    next.gates[0]?.resolve();
    await waitFor(() => results.length === 2, 10_000, 'the second result');
    expect(results[1]).toMatchObject({ attemptId: second.id, ok: true, output: 'second' });
  });

  it('logs each attempt with run, node, task, attempt, short key and duration', async () => {
    prefix = testPrefix();
    const logger = recordingLogger();
    await pool({ tasks: [taskOf('etl.clean', () => [1, 2])], logger });
    const { dispatcher, results } = dispatcherWithResults();
    const attempt = makeAttempt({ task: 'etl.clean', runId: 'rabc', nodeId: 'n1', cacheKey: 'f'.repeat(64) });
    await dispatcher.dispatch([attempt]);
    await waitFor(() => results.length === 1, 10_000, 'the result');
    const line = logger.records.find((r) => r.message === 'attempt:succeeded');
    expect(line?.fields).toMatchObject({
      runId: 'rabc',
      nodeId: 'n1',
      task: 'etl.clean',
      attempt: 1,
      key: 'ffffffffffff',
      durationMs: expect.any(Number),
    });
  });

  it('runs attempts in a worker pool in another process, which drains on SIGTERM', async () => {
    prefix = testPrefix();
    const worker = await child();
    const { dispatcher, results } = dispatcherWithResults();
    await dispatcher.dispatch([makeAttempt({ task: 'slow.echo', inputs: { value: 'hi', ms: 10 } })]);
    await waitFor(() => results.length === 1, 10_000, 'the result');
    expect(results[0]).toMatchObject({ ok: true, output: { value: 'hi', pid: worker.process.pid } });

    const slow = makeAttempt({ task: 'slow.echo', inputs: { value: 'drained', ms: 500 } });
    await dispatcher.dispatch([slow]);
    await worker.waitForLine((line) => line.startsWith('started drained'));
    worker.process.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    await waitFor(() => results.length === 2, 10_000, 'the drained result');
    expect(results[1]).toMatchObject({ attemptId: slow.id, ok: true, output: { value: 'drained' } });
  });

  it('recovers an attempt whose worker was SIGKILLed mid-task: another worker completes it', async () => {
    prefix = testPrefix();
    const timing = { lockDurationMs: 1_000, stalledIntervalMs: 300 };
    const doomed = await child({ LOCK_MS: '1000', STALLED_MS: '300' });
    const { dispatcher, results } = dispatcherWithResults();
    const attempt = makeAttempt({ task: 'slow.echo', inputs: { value: 'survivor', ms: 60_000 } });
    await dispatcher.dispatch([attempt]);
    await doomed.waitForLine((line) => line.startsWith('started survivor'));
    doomed.process.kill('SIGKILL');
    expect(await doomed.exited).toBe('SIGKILL');

    await pool({ tasks: [taskOf('slow.echo', ({ value }) => ({ value: value ?? null, pid: process.pid }))], ...timing });
    await waitFor(() => results.length === 1, 15_000, 'the recovered result');
    expect(results[0]).toMatchObject({ attemptId: attempt.id, ok: true, output: { value: 'survivor', pid: process.pid } });
  });

  it('reports TASK_STALLED when an attempt stalls more often than allowed', async () => {
    prefix = testPrefix();
    const doomed = await child({ LOCK_MS: '1000', STALLED_MS: '300', MAX_STALLED: '0' });
    const { dispatcher, results } = dispatcherWithResults();
    const attempt = makeAttempt({ task: 'slow.echo', inputs: { value: 'crashy', ms: 60_000 } });
    await dispatcher.dispatch([attempt]);
    await doomed.waitForLine((line) => line.startsWith('started crashy'));
    doomed.process.kill('SIGKILL');
    await doomed.exited;

    let ran = false;
    await pool({
      tasks: [taskOf('slow.echo', () => ((ran = true), null))],
      lockDurationMs: 1_000,
      stalledIntervalMs: 300,
      maxStalledCount: 0,
    });
    await waitFor(() => results.length === 1, 15_000, 'the stalled report');
    expect(results[0]).toMatchObject({ attemptId: attempt.id, ok: false, error: { code: 'TASK_STALLED', retryable: true } });
    expect(ran).toBe(false);
  });

  it('refuses an empty task list, a bad concurrency and a missing connection', async () => {
    prefix = testPrefix();
    await expect(startWorker({ tasks: [], redisUrl: REDIS_URL, prefix })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(startWorker({ tasks: [taskOf('x', () => null)], redisUrl: REDIS_URL, prefix, concurrency: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(startWorker({ tasks: [taskOf('x', () => null)], prefix })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
