import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import type { AttemptResult } from '@memoflow/engine';
import { describe, expect, it } from 'vitest';
import { toTaskRegistry } from '../task-registry.js';
import { deferred, eachResult, makeAttempt, recordingLogger, taskOf, waitFor } from '../testing/fixtures.js';
import type { Deferred } from '../testing/fixtures.js';
import { describeTaskDispatcherContract } from '../testing/task-dispatcher-contract.js';
import { InProcessTaskDispatcher } from './in-process-task-dispatcher.js';

describeTaskDispatcherContract('InProcessTaskDispatcher', async (tasks) => {
  const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry(tasks), logger: recordingLogger() });
  return { dispatcher, cleanup: () => dispatcher.close() };
});

/** A task whose every run waits on its own gate, so a test controls when each finishes. */
function gatedTask() {
  const gates: Deferred<void>[] = [];
  let active = 0;
  let maxActive = 0;
  const started: string[] = [];
  const task = taskOf('gated', async ({ label }) => {
    const gate = deferred();
    gates.push(gate);
    started.push(label as string);
    active += 1;
    maxActive = Math.max(maxActive, active);
    await gate.promise;
    active -= 1;
    return label as string;
  });
  return { task, gates, started, stats: () => ({ active, maxActive }) };
}

describe('InProcessTaskDispatcher', () => {
  it('runs at most `concurrency` attempts at once, in FIFO order', async () => {
    const gated = gatedTask();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([gated.task]), concurrency: 2 });
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => void results.push(r)));
    const attempts = ['a', 'b', 'c', 'd', 'e'].map((label) => makeAttempt({ task: 'gated', inputs: { label } }));
    await dispatcher.dispatch(attempts);

    await waitFor(() => gated.started.length === 2);
    expect(dispatcher.runningCount).toBe(2);
    expect(dispatcher.queuedCount).toBe(3);
    for (let released = 0; released < 5; released += 1) {
      gated.gates[released]?.resolve();
      await waitFor(() => results.length === released + 1);
      await waitFor(() => gated.started.length === Math.min(5, released + 3));
    }
    expect(gated.started).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(gated.stats().maxActive).toBe(2);
    await dispatcher.close();
  });

  it('keeps a timed-out attempt\'s slot until its body settles, so its retry never runs beside it', async () => {
    let active = 0;
    let maxActive = 0;
    const task = taskOf('slow', async (_inputs, { signal }) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      // Ignores its abort for 80 ms, well inside the grace period.
      await new Promise((resolve) => setTimeout(resolve, 80));
      active -= 1;
      return signal.aborted ? 'too late' : 'ok';
    });
    const logger = recordingLogger();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([task]), concurrency: 1, logger, timeoutGraceMs: 5_000 });
    const results: { result: AttemptResult; at: number }[] = [];
    dispatcher.onResults(eachResult(async (result) => void results.push({ result, at: Date.now() })));
    const first = makeAttempt({ task: 'slow', timeoutMs: 10 });
    await dispatcher.dispatch([first]);
    await waitFor(() => results.length === 1);
    expect(results[0]?.result).toMatchObject({ ok: false, error: { code: 'TASK_TIMEOUT' } });
    // The result waited for the body: by the time the controller could dispatch a retry, it had ended.
    expect(active).toBe(0);
    await dispatcher.dispatch([makeAttempt({ task: 'slow', timeoutMs: 1_000 })]);
    await waitFor(() => results.length === 2);
    expect(maxActive).toBe(1);
    expect(logger.records.filter((r) => r.level === 'warn')).toEqual([]);
    await dispatcher.close();
  });

  it('releases the slot of a body that ignores its abort past the grace period, with a warning', async () => {
    const releases: (() => void)[] = [];
    const task = taskOf('deaf', () => new Promise((resolve) => releases.push(() => resolve('late'))));
    const logger = recordingLogger();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([task]), concurrency: 1, logger, timeoutGraceMs: 50 });
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (result) => void results.push(result)));
    await dispatcher.dispatch([makeAttempt({ task: 'deaf', timeoutMs: 10 }), makeAttempt({ task: 'deaf', timeoutMs: 10 })]);
    await waitFor(() => results.length === 2);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['TASK_TIMEOUT', 'TASK_TIMEOUT']);
    const warnings = logger.records.filter((r) => r.level === 'warn');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]?.message).toMatch(/still runs 50 ms after its 10 ms timeout.*slot is released/);
    for (const release of releases) release();
    await dispatcher.close();
  });

  it('defaults to a concurrency of 8 and rejects a bad one', async () => {
    const gated = gatedTask();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([gated.task]), logger: recordingLogger() });
    await dispatcher.dispatch(Array.from({ length: 10 }, (_, i) => makeAttempt({ task: 'gated', inputs: { label: `${i}` } })));
    await waitFor(() => gated.started.length === 8);
    expect(dispatcher.queuedCount).toBe(2);
    for (let i = 0; i < 10; i += 1) {
      await waitFor(() => gated.gates.length > i);
      gated.gates[i]?.resolve();
    }
    await dispatcher.close();
    expect(() => new InProcessTaskDispatcher({ tasks: new Map(), concurrency: 0 })).toThrow(/positive integer/);
  });

  it('buffers results until a handler is registered, then hands them over as one batch', async () => {
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([taskOf('id', ({ v }) => v ?? null)]) });
    await dispatcher.dispatch([1, 2, 3].map((v) => makeAttempt({ task: 'id', inputs: { v } })));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const batches: unknown[][] = [];
    dispatcher.onResults((results) => {
      batches.push(results.map((r) => (r.ok ? r.output : null)));
      return results.map(() => Promise.resolve());
    });
    await waitFor(() => batches.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches).toEqual([[1, 2, 3]]);
    expect(() => dispatcher.onResults(eachResult(async () => undefined))).toThrow(/once/);
    await dispatcher.close();
  });

  it('hands attempts that finish in the same turn over as one batch', async () => {
    const gated = gatedTask();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([gated.task]) });
    const batches: string[][] = [];
    dispatcher.onResults((results) => {
      batches.push(results.map((r) => (r.ok ? (r.output as string) : '!')));
      return results.map(() => Promise.resolve());
    });
    await dispatcher.dispatch(['a', 'b', 'c', 'd', 'e'].map((label) => makeAttempt({ task: 'gated', inputs: { label } })));
    await waitFor(() => gated.started.length === 5);
    for (const gate of gated.gates) gate.resolve(); // one event finishes them all
    await waitFor(() => batches.flat().length === 5);
    expect(batches).toEqual([['a', 'b', 'c', 'd', 'e']]);
    await dispatcher.close();
  });

  it('logs and drops a result whose settlement rejects, and only that one; a throwing handler drops its batch', async () => {
    const logger = recordingLogger();
    const gated = gatedTask();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([gated.task]), logger });
    let calls = 0;
    dispatcher.onResults((results) => {
      calls += 1;
      if (calls === 2) throw new Error('controller bug');
      return results.map((r) => (r.ok && r.output === 'bad' ? Promise.reject(new Error('not saved')) : Promise.resolve()));
    });
    const attempts = ['ok', 'bad', 'fine'].map((label) => makeAttempt({ task: 'gated', inputs: { label } }));
    await dispatcher.dispatch(attempts);
    await waitFor(() => gated.started.length === 3);
    for (const gate of gated.gates) gate.resolve();
    await waitFor(() => calls === 1);
    const thrown = makeAttempt({ task: 'gated', inputs: { label: 'later' } });
    await dispatcher.dispatch([thrown]);
    await waitFor(() => gated.gates.length === 4);
    gated.gates[3]?.resolve();
    await waitFor(() => calls === 2);
    await dispatcher.close();
    const errors = logger.records.filter((r) => r.level === 'error');
    expect(errors.map((r) => (r.fields as { attemptId?: string }).attemptId)).toEqual([attempts[1]?.id, thrown.id]);
    expect(errors[0]).toMatchObject({ message: expect.stringContaining('result dropped'), fields: { err: { message: 'not saved' } } });
    expect(errors[1]).toMatchObject({ fields: { err: { message: 'controller bug' } } });
  });

  it('close() waits for running attempts and delivers their results, drops queued ones', async () => {
    const gated = gatedTask();
    const logger = recordingLogger();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([gated.task]), concurrency: 1, logger });
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => {
      await new Promise((resolve) => setTimeout(resolve, 20)); // slow handler: close must wait for it too
      results.push(r);
    }));
    const running = makeAttempt({ task: 'gated', inputs: { label: 'running' } });
    const queued = makeAttempt({ task: 'gated', inputs: { label: 'queued' } });
    await dispatcher.dispatch([running, queued]);
    await waitFor(() => gated.started.length === 1);

    let closed = false;
    const closing = dispatcher.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(closed).toBe(false);
    gated.gates[0]?.resolve();
    await closing;
    expect(results.map((r) => r.attemptId)).toEqual([running.id]);
    expect(gated.started).toEqual(['running']);
    expect(logger.records.some((r) => r.level === 'warn' && r.message.includes('not started'))).toBe(true);
    await expect(dispatcher.dispatch([makeAttempt({ task: 'gated' })])).rejects.toMatchObject({ code: 'DISPATCHER_CLOSED' });
    await dispatcher.close(); // idempotent
  });

  it('is addressed by its pool; a lease held by an in-process controller on this host whose process exited counts as gone', async () => {
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([]) });
    const other = new InProcessTaskDispatcher({ tasks: toTaskRegistry([]) });
    expect(dispatcher.address).toBe(dispatcher.pool);
    const exited = spawnSync(process.execPath, ['-e', '0']).pid; // a process that has come and gone
    expect(dispatcher.isGone(`in-process:${hostname()}:${exited}:0a1b2c3d`)).toBe(true);
    expect(dispatcher.isGone(other.address)).toBe(false); // this very process: alive
    expect(dispatcher.isGone(`in-process:another-host:${exited}:0a1b2c3d`)).toBe(false); // cannot tell: wait for the lease
    expect(dispatcher.isGone('host-123-0a1b2c3d')).toBe(false); // not an in-process controller
    await Promise.all([dispatcher.close(), other.close()]);
  });

  it('reports an unknown task with UNKNOWN_TASK listing the registered tasks', async () => {
    const dispatcher = new InProcessTaskDispatcher({
      tasks: toTaskRegistry([taskOf('etl.clean', () => null), taskOf('etl.total', () => 0)]),
    });
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => void results.push(r)));
    await dispatcher.dispatch([makeAttempt({ task: 'etl.cleen' })]);
    await dispatcher.close();
    expect(results[0]).toMatchObject({
      ok: false,
      error: {
        code: 'UNKNOWN_TASK',
        retryable: false,
        message: "task 'etl.cleen' is not registered with this worker (registered tasks: 'etl.clean', 'etl.total')",
      },
    });
  });
});

describe('InProcessTaskDispatcher: attempts share no memory with the controller', () => {
  it('a body that mutates its inputs changes nothing outside it; the output kept is not what the body still holds', async () => {
    let held: number[] = [];
    const task = taskOf('mutate', ({ xs }) => {
      const list = xs as number[];
      list.sort((a, b) => a - b);
      list.push(99);
      held = [...list];
      return held;
    });
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([task]) });
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => void results.push(r)));
    const inputs = { xs: [3, 1, 2] };
    await dispatcher.dispatch([makeAttempt({ task: 'mutate', inputs })]);
    await waitFor(() => results.length === 1);
    await dispatcher.close();
    expect(inputs).toEqual({ xs: [3, 1, 2] });
    const [result] = results;
    expect(result).toMatchObject({ ok: true, output: [1, 2, 3, 99] });
    held.push(1000); // the body keeps mutating what it returned, after the fact
    expect(result?.ok === true && result.output).toEqual([1, 2, 3, 99]);
  });

  it('an output that cannot be copied (a bare implementation returning a function) fails the attempt', async () => {
    const task = { name: 'fn', execute: async () => ({ output: { f: () => 1 } as never, outputHash: null }) };
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([task]) });
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => void results.push(r)));
    await dispatcher.dispatch([makeAttempt({ task: 'fn' })]);
    await waitFor(() => results.length === 1);
    await dispatcher.close();
    expect(results[0]).toMatchObject({ ok: false, error: { name: 'DataCloneError' } });
  });
});
