import { NonRetryableError } from '@memoflow/engine';
import type { AttemptResult, TaskDispatcher, TaskImplementation } from '@memoflow/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { deferred, makeAttempt, taskOf, waitFor, type Deferred } from './fixtures.js';

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

    /** The dispatcher with a handler that saves every result at once, recording what it got in which batch. */
    async function setUp(tasks: TaskImplementation[], options: { listen?: boolean } = {}) {
      const subject = await create(tasks);
      cleanups.push(subject.cleanup);
      const results: AttemptResult[] = [];
      const batches: AttemptResult[][] = [];
      const listen = () =>
        subject.dispatcher.onResults((batch) => {
          batches.push([...batch]);
          results.push(...batch);
          return batch.map(() => Promise.resolve());
        });
      if (options.listen !== false) listen();
      return { dispatcher: subject.dispatcher, results, batches, listen };
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

    it('hands results that wait together over in one batch, never an empty one', async () => {
      let ran = 0;
      const { dispatcher, batches, listen } = await setUp([taskOf('tally', () => ++ran)], { listen: false });
      const attempts = Array.from({ length: 6 }, () => makeAttempt({ task: 'tally' }));
      await dispatcher.dispatch(attempts);
      await waitFor(() => ran === 6, 10_000, 'the attempts to run');
      await new Promise((resolve) => setTimeout(resolve, 300)); // their results reach the transport
      listen();
      await waitFor(() => batches.flat().length === 6, 10_000, 'the results');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(batches.map((batch) => batch.length)).toEqual([6]);
      expect(batches[0]?.map((r) => r.attemptId).sort()).toEqual(attempts.map((a) => a.id).sort());
    });

    it('hands over the next batch once the previous one is saved, with everything that finished meanwhile', async () => {
      const gates = new Map<string, Deferred<void>>();
      const gate = (label: string) => {
        let found = gates.get(label);
        if (found === undefined) gates.set(label, (found = deferred()));
        return found;
      };
      let finished = 0;
      const subject = await create([
        taskOf('gated', async ({ label }) => {
          await gate(label as string).promise;
          finished += 1;
          return label as string;
        }),
      ]);
      cleanups.push(subject.cleanup);
      const batches: string[][] = [];
      const saved: Deferred<void>[] = [];
      subject.dispatcher.onResults((batch) => {
        batches.push(batch.map((r) => (r.ok ? (r.output as string) : '!')).sort());
        const save = deferred();
        saved.push(save);
        return batch.map(() => save.promise);
      });
      await subject.dispatcher.dispatch(['a', 'b', 'c', 'd'].map((label) => makeAttempt({ task: 'gated', inputs: { label } })));
      gate('a').resolve();
      await waitFor(() => batches.length === 1, 10_000, 'the first batch');
      for (const label of ['b', 'c', 'd']) gate(label).resolve();
      await waitFor(() => finished === 4, 10_000, 'b, c and d to finish');
      await new Promise((resolve) => setTimeout(resolve, 200)); // their results reach the transport, while a is being saved
      expect(batches).toEqual([['a']]);
      saved[0]?.resolve();
      await waitFor(() => batches.length === 2, 10_000, 'the next batch');
      expect(batches).toEqual([['a'], ['b', 'c', 'd']]);
      saved[1]?.resolve();
    });

    it('acknowledges each result on its own: one whose save failed does not bring the others back', async () => {
      const subject = await create([taskOf('echo', ({ v }) => v ?? null)]);
      cleanups.push(subject.cleanup);
      const deliveries = new Map<string, number>();
      let failed = false;
      const attempts = [1, 2, 3, 4].map((v) => makeAttempt({ task: 'echo', inputs: { v } }));
      const unlucky = attempts[1]?.id;
      subject.dispatcher.onResults((batch) =>
        batch.map((result) => {
          deliveries.set(result.attemptId, (deliveries.get(result.attemptId) ?? 0) + 1);
          if (result.attemptId !== unlucky || failed) return Promise.resolve();
          failed = true;
          return Promise.reject(new Error('save failed'));
        }),
      );
      await subject.dispatcher.dispatch(attempts);
      await waitFor(() => attempts.every((a) => deliveries.has(a.id)), 10_000, 'every result');
      await new Promise((resolve) => setTimeout(resolve, 800)); // past a redelivery's backoff (500 ms)
      for (const attempt of attempts) if (attempt.id !== unlucky) expect(deliveries.get(attempt.id)).toBe(1);
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
    it('cancel aborts a running attempt\'s signal with ATTEMPT_CANCELLED; its result, if any, says so', async () => {
      const started = deferred();
      let reason: unknown;
      const { dispatcher, results } = await setUp([
        taskOf('cancel.long', (_inputs, { signal }) => {
          started.resolve();
          return new Promise<number>((_resolve, reject) => {
            signal.addEventListener('abort', () => {
              reason = signal.reason;
              reject(signal.reason as Error);
            });
          });
        }),
      ]);
      const attempt = makeAttempt({ task: 'cancel.long' });
      await dispatcher.dispatch([attempt]);
      await started.promise;
      const asked = Date.now();
      await dispatcher.cancel([{ id: attempt.id, task: attempt.task }]);
      await waitFor(() => results.length === 1, 10_000, 'the cancelled attempt\'s result');
      expect(Date.now() - asked).toBeLessThan(2_000);
      expect((reason as { code?: unknown }).code).toBe('ATTEMPT_CANCELLED');
      expect(results[0]).toMatchObject({ attemptId: attempt.id, ok: false, error: { code: 'ATTEMPT_CANCELLED', retryable: false } });
    });

    it('an attempt cancelled before it is dispatched never runs its body; unknown ids are ignored', async () => {
      let runs = 0;
      const { dispatcher, results } = await setUp([
        taskOf('cancel.early', () => {
          runs += 1;
          return 1;
        }),
      ]);
      const cancelled = makeAttempt({ task: 'cancel.early' });
      const other = makeAttempt({ task: 'cancel.early' });
      await dispatcher.cancel([{ id: cancelled.id, task: cancelled.task }, { id: 'never-dispatched-1', task: 'cancel.early' }]);
      await dispatcher.dispatch([cancelled, other]);
      await waitFor(() => results.some((r) => r.attemptId === other.id), 10_000, 'the other attempt\'s result');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(runs).toBe(1);
      for (const result of results.filter((r) => r.attemptId === cancelled.id)) expect(result).toMatchObject({ ok: false, error: { code: 'ATTEMPT_CANCELLED' } });
    });
    it('a queued attempt that is cancelled never runs, while the attempts around it do', async () => {
      const gate = deferred();
      const ran: string[] = [];
      const { dispatcher, results } = await setUp([
        taskOf('cancel.queued', async ({ label }) => {
          ran.push(label as string);
          await gate.promise;
          return label as string;
        }),
      ]);
      // More blockers than any default concurrency, so the victim waits behind them.
      const blockers = Array.from({ length: 10 }, (_, i) => makeAttempt({ task: 'cancel.queued', inputs: { label: `b${i}` } }));
      const victim = makeAttempt({ task: 'cancel.queued', inputs: { label: 'victim' } });
      await dispatcher.dispatch([...blockers, victim]);
      await waitFor(() => ran.length >= 1, 10_000, 'the first blocker to start');
      await dispatcher.cancel([{ id: victim.id, task: victim.task }]);
      gate.resolve();
      await waitFor(() => blockers.every((b) => results.some((r) => r.attemptId === b.id)), 10_000, 'every blocker\'s result');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(ran).not.toContain('victim');
      expect(ran).toHaveLength(10);
    });
  });
}
