import { NonRetryableError } from '@memoflow/engine';
import type { AttemptResult, TaskDispatcher, TaskImplementation } from '@memoflow/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { deferred, makeAttempt, taskOf, waitFor } from './fixtures.js';

/**
 * What every TaskDispatcher must do, run against each implementation so the in-process one is a
 * verified fake of the BullMQ one. `create` gets the tasks the "workers" know and returns the
 * dispatcher plus a cleanup that stops whatever runs them.
 */
export interface DispatcherUnderTest {
  dispatcher: TaskDispatcher;
  /** Closes workers and the dispatcher (if still open) and frees the namespace. */
  cleanup(): Promise<void>;
}

export function describeTaskDispatcherContract(
  name: string,
  create: (tasks: TaskImplementation[]) => Promise<DispatcherUnderTest>,
): void {
  describe(`TaskDispatcher contract: ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    async function setUp(tasks: TaskImplementation[]) {
      const subject = await create(tasks);
      cleanups.push(subject.cleanup);
      const results: AttemptResult[] = [];
      subject.dispatcher.onResult(async (result) => {
        results.push(result);
      });
      return { dispatcher: subject.dispatcher, results };
    }

    it('runs a dispatched attempt and delivers its result', async () => {
      const { dispatcher, results } = await setUp([taskOf('math.double', ({ x }) => (x as number) * 2)]);
      const attempt = makeAttempt({ task: 'math.double', inputs: { x: 21 } });
      await dispatcher.dispatch([attempt]);
      await waitFor(() => results.length === 1, 10_000, 'the result');
      expect(results[0]).toMatchObject({
        attemptId: attempt.id,
        runId: attempt.runId,
        nodeId: attempt.nodeId,
        attempt: 1,
        ok: true,
        output: 42,
        outputHash: null,
      });
      expect(results[0]?.startedAt).toBeInstanceOf(Date);
      expect(results[0]?.finishedAt).toBeInstanceOf(Date);
    });

    it('runs an attempt id at most once, however often it is dispatched', async () => {
      let runs = 0;
      const gate = deferred();
      const { dispatcher, results } = await setUp([
        taskOf('count', async () => {
          runs += 1;
          await gate.promise;
          return runs;
        }),
      ]);
      const attempt = makeAttempt({ task: 'count' });
      await dispatcher.dispatch([attempt, attempt]);
      await dispatcher.dispatch([attempt]);
      gate.resolve();
      await waitFor(() => results.length === 1, 10_000, 'the result');
      await dispatcher.dispatch([attempt]); // after it finished, too
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(runs).toBe(1);
      expect(results).toHaveLength(1);
    });

    it('reports thrown errors, retryable unless marked NonRetryableError', async () => {
      const { dispatcher, results } = await setUp([
        taskOf('flaky', () => {
          throw new Error('try again');
        }),
        taskOf('fatal', () => {
          throw new NonRetryableError('give up');
        }),
      ]);
      const flaky = makeAttempt({ task: 'flaky' });
      const fatal = makeAttempt({ task: 'fatal' });
      await dispatcher.dispatch([flaky, fatal]);
      await waitFor(() => results.length === 2, 10_000, 'two results');
      const byId = new Map(results.map((r) => [r.attemptId, r]));
      expect(byId.get(flaky.id)).toMatchObject({ ok: false, error: { message: 'try again', retryable: true } });
      expect(byId.get(fatal.id)).toMatchObject({ ok: false, error: { message: 'give up', retryable: false } });
    });

    it('fails an attempt that outlives its timeout with a retryable TASK_TIMEOUT', async () => {
      const { dispatcher, results } = await setUp([
        taskOf(
          'sleepy',
          (_inputs, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(null))),
        ),
      ]);
      await dispatcher.dispatch([makeAttempt({ task: 'sleepy', timeoutMs: 50 })]);
      await waitFor(() => results.length === 1, 10_000, 'the result');
      expect(results[0]).toMatchObject({ ok: false, error: { code: 'TASK_TIMEOUT', retryable: true } });
    });

    it('fails an attempt for a task nobody runs, not retryable, naming the task', async () => {
      const { dispatcher, results } = await setUp([taskOf('known', () => null)]);
      await dispatcher.dispatch([makeAttempt({ task: 'ghost.task' })]);
      await waitFor(() => results.length === 1, 10_000, 'the result');
      const [result] = results;
      expect(result?.ok).toBe(false);
      if (result === undefined || result.ok) return;
      expect(['UNKNOWN_TASK', 'NO_WORKER_FOR_TASK']).toContain(result.error.code);
      expect(result.error.retryable).toBe(false);
      expect(result.error.message).toContain('ghost.task');
    });
  });
}
