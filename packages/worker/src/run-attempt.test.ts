import { NonRetryableError, MemoflowError } from '@memoflow/engine';
import type { Clock, TaskImplementation } from '@memoflow/engine';
import { describe, expect, it } from 'vitest';
import { runAttempt } from './run-attempt.js';
import { toTaskRegistry } from './task-registry.js';
import { makeAttempt, taskOf } from './testing/fixtures.js';

function stepClock(): Clock {
  let t = Date.parse('2025-01-01T00:00:00Z');
  return { now: () => new Date((t += 1000)) };
}

describe('runAttempt', () => {
  it('returns the output with timings from the clock', async () => {
    const registry = toTaskRegistry([taskOf('add', ({ a, b }) => (a as number) + (b as number))]);
    const attempt = makeAttempt({ task: 'add', inputs: { a: 1, b: 2 } });
    const result = await runAttempt(registry, attempt, stepClock());
    expect(result).toEqual({
      attemptId: attempt.id,
      runId: attempt.runId,
      nodeId: attempt.nodeId,
      attempt: 1,
      startedAt: new Date('2025-01-01T00:00:01Z'),
      finishedAt: new Date('2025-01-01T00:00:02Z'),
      ok: true,
      output: 3,
      outputHash: null,
    });
  });

  it('passes run, node, attempt and a signal to the body', async () => {
    let seen: unknown;
    const registry = toTaskRegistry([taskOf('ctx', (_inputs, context) => ((seen = context), null))]);
    await runAttempt(registry, makeAttempt({ task: 'ctx', runId: 'r9', nodeId: 'nx', attempt: 3 }), stepClock());
    expect(seen).toMatchObject({ runId: 'r9', nodeId: 'nx', attempt: 3 });
    expect((seen as { signal: AbortSignal }).signal).toBeInstanceOf(AbortSignal);
  });

  it('classifies a plain thrown error as retryable and NonRetryableError as not', async () => {
    const registry = toTaskRegistry([
      taskOf('boom', () => {
        throw new Error('flaky');
      }),
      taskOf('fatal', () => {
        throw new NonRetryableError('bad data');
      }),
    ]);
    const flaky = await runAttempt(registry, makeAttempt({ task: 'boom' }), stepClock());
    const fatal = await runAttempt(registry, makeAttempt({ task: 'fatal' }), stepClock());
    expect(flaky).toMatchObject({ ok: false, error: { name: 'Error', message: 'flaky', retryable: true } });
    expect(fatal).toMatchObject({ ok: false, error: { name: 'NonRetryableError', message: 'bad data', retryable: false } });
  });

  it('recognises the nonRetryable marker on errors from another copy of the package', async () => {
    const foreign = Object.assign(new Error('other bundle'), { nonRetryable: true });
    const registry = toTaskRegistry([taskOf('f', () => Promise.reject(foreign))]);
    const result = await runAttempt(registry, makeAttempt({ task: 'f' }), stepClock());
    expect(result).toMatchObject({ ok: false, error: { retryable: false } });
  });

  it('keeps the retryable flag and code of engine errors and thrown non-errors', async () => {
    const registry = toTaskRegistry([
      taskOf('engine', () => {
        throw new MemoflowError('CATALOG_ERROR', 'db down', { retryable: true });
      }),
      taskOf('str', () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw 'just a string';
      }),
    ]);
    const engine = await runAttempt(registry, makeAttempt({ task: 'engine' }), stepClock());
    const str = await runAttempt(registry, makeAttempt({ task: 'str' }), stepClock());
    expect(engine).toMatchObject({ ok: false, error: { code: 'CATALOG_ERROR', retryable: true } });
    expect(str).toMatchObject({ ok: false, error: { message: 'just a string', retryable: true } });
  });

  it('turns a synchronous throw from execute into a failed result', async () => {
    const sync: TaskImplementation = {
      name: 'sync',
      execute: () => {
        throw new Error('sync throw');
      },
    };
    const result = await runAttempt(toTaskRegistry([sync]), makeAttempt({ task: 'sync' }), stepClock());
    expect(result).toMatchObject({ ok: false, error: { message: 'sync throw' } });
  });

  it('fails an unknown task, not retryable, naming it and the registered ones', async () => {
    const registry = toTaskRegistry([taskOf('b.two', () => null), taskOf('a.one', () => null)]);
    const result = await runAttempt(registry, makeAttempt({ task: 'nope' }), stepClock());
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ code: 'UNKNOWN_TASK', retryable: false });
    expect(result.error.message).toContain("'nope'");
    expect(result.error.message).toContain("'a.one', 'b.two'");
  });

  it('times out: aborts the signal and fails with a retryable TASK_TIMEOUT', async () => {
    let aborted: unknown = null;
    const registry = toTaskRegistry([
      taskOf(
        'slow',
        (_inputs, { signal }) =>
          new Promise((resolve) => {
            signal.addEventListener('abort', () => {
              aborted = signal.reason;
              resolve('too late');
            });
          }),
      ),
    ]);
    const result = await runAttempt(registry, makeAttempt({ task: 'slow', timeoutMs: 30 }), stepClock());
    expect(result).toMatchObject({ ok: false, error: { code: 'TASK_TIMEOUT', retryable: true } });
    expect(aborted).toMatchObject({ code: 'TASK_TIMEOUT' });
  });

  it('times out a body that ignores its signal, without an unhandled rejection later', async () => {
    const registry = toTaskRegistry([
      taskOf('stubborn', () => new Promise((_resolve, reject) => setTimeout(() => reject(new Error('late')), 60))),
    ]);
    const result = await runAttempt(registry, makeAttempt({ task: 'stubborn', timeoutMs: 10 }), stepClock());
    expect(result).toMatchObject({ ok: false, error: { code: 'TASK_TIMEOUT' } });
    await new Promise((resolve) => setTimeout(resolve, 80)); // vitest fails the run on an unhandled rejection
  });

  it('waits for a timed-out body that honours its abort before failing the attempt', async () => {
    let settledAt = 0;
    const registry = toTaskRegistry([
      taskOf(
        'cleanup',
        (_inputs, { signal }) =>
          new Promise((_resolve, reject) => {
            // Honours the abort, but its clean-up takes 40 ms: the attempt (and its slot) waits for it.
            signal.addEventListener('abort', () => setTimeout(() => ((settledAt = Date.now()), reject(new Error('stopped'))), 40));
          }),
      ),
    ]);
    const ignored: unknown[] = [];
    const result = await runAttempt(registry, makeAttempt({ task: 'cleanup', timeoutMs: 10 }), stepClock(), {
      timeoutGraceMs: 5_000,
      onTimeoutIgnored: (abandoned) => ignored.push(abandoned),
    });
    expect(settledAt).toBeGreaterThan(0);
    expect(Date.now()).toBeGreaterThanOrEqual(settledAt);
    expect(result).toMatchObject({ ok: false, error: { code: 'TASK_TIMEOUT', retryable: true } });
    expect(ignored).toEqual([]);
  });

  it('abandons a timed-out body that ignores its abort after the grace period, and says so', async () => {
    let stop: (() => void) | undefined;
    const registry = toTaskRegistry([taskOf('deaf', () => new Promise((resolve) => (stop = () => resolve('late'))))]);
    const ignored: unknown[] = [];
    const started = Date.now();
    const result = await runAttempt(registry, makeAttempt({ task: 'deaf', id: 'r-n-1', timeoutMs: 10 }), stepClock(), {
      timeoutGraceMs: 60,
      onTimeoutIgnored: (abandoned) => ignored.push(abandoned),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(65);
    expect(result).toMatchObject({ ok: false, error: { code: 'TASK_TIMEOUT' } });
    expect(ignored).toEqual([{ attemptId: 'r-n-1', task: 'deaf', timeoutMs: 10, graceMs: 60 }]);
    stop?.();
  });

  it('does not wait out the grace period for a body that finishes in time', async () => {
    const registry = toTaskRegistry([taskOf('quick', () => 'done')]);
    const started = Date.now();
    const result = await runAttempt(registry, makeAttempt({ task: 'quick', timeoutMs: 1_000 }), stepClock(), { timeoutGraceMs: 60_000 });
    expect(result).toMatchObject({ ok: true, output: 'done' });
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('forwards an outer abort (shutdown) to the task signal', async () => {
    const outer = new AbortController();
    const registry = toTaskRegistry([
      taskOf(
        'waits',
        (_inputs, { signal }) =>
          new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
      ),
    ]);
    const running = runAttempt(registry, makeAttempt({ task: 'waits' }), stepClock(), { signal: outer.signal });
    await new Promise((resolve) => setTimeout(resolve, 5)); // let the body subscribe
    outer.abort();
    await expect(running).resolves.toMatchObject({ ok: false, error: { message: 'aborted' } });
  });

  it('hands the body an already-aborted signal when shutdown came first', async () => {
    const outer = new AbortController();
    outer.abort();
    const registry = toTaskRegistry([taskOf('peek', (_inputs, { signal }) => signal.aborted)]);
    const result = await runAttempt(registry, makeAttempt({ task: 'peek' }), stepClock(), { signal: outer.signal });
    expect(result).toMatchObject({ ok: true, output: true });
  });

  it('normalises a missing output to null and rejects a non-outcome', async () => {
    const registry = toTaskRegistry([
      { name: 'void', execute: async () => ({ output: undefined, outputHash: undefined }) as never },
      { name: 'empty', execute: async () => ({}) as never },
      { name: 'weird', execute: async () => 42 as never },
    ]);
    const none = await runAttempt(registry, makeAttempt({ task: 'void' }), stepClock());
    const empty = await runAttempt(registry, makeAttempt({ task: 'empty' }), stepClock());
    const weird = await runAttempt(registry, makeAttempt({ task: 'weird' }), stepClock());
    expect(none).toMatchObject({ ok: true, output: null, outputHash: null });
    expect(empty).toMatchObject({ ok: false, error: { code: 'INVALID_TASK_OUTCOME', retryable: false } });
    expect(weird).toMatchObject({ ok: false, error: { code: 'INVALID_TASK_OUTCOME', retryable: false } });
  });
});

describe('toTaskRegistry', () => {
  it('rejects duplicate names', () => {
    expect(() => toTaskRegistry([taskOf('x', () => null), taskOf('x', () => null)])).toThrow(/registered twice/);
  });
});

describe('runAttempt: an attempt traced from another definition is refused', () => {
  const versioned = (version: string | undefined, signature: string | undefined, ran: string[]): TaskImplementation => ({
    ...taskOf('t', () => (ran.push('ran'), 1)),
    ...(version === undefined ? {} : { version }),
    ...(signature === undefined ? {} : { signature }),
  });

  it.each([
    { why: 'another version', attempt: { taskVersion: '2', signature: 'sig-a' }, worker: { version: '1', signature: 'sig-a' } },
    { why: 'another signature', attempt: { taskVersion: '1', signature: 'sig-b' }, worker: { version: '1', signature: 'sig-a' } },
    { why: 'both differ', attempt: { taskVersion: '2', signature: 'sig-b' }, worker: { version: '1', signature: 'sig-a' } },
    { why: 'an old attempt without a version, another signature', attempt: { signature: 'sig-b' }, worker: { version: '1', signature: 'sig-a' } },
  ])('$why: TASK_VERSION_MISMATCH, not retryable, naming both sides; the body never runs', async ({ attempt, worker }) => {
    const ran: string[] = [];
    const registry = toTaskRegistry([versioned(worker.version, worker.signature, ran)]);
    const result = await runAttempt(registry, makeAttempt({ task: 't', ...attempt }), stepClock());
    expect(ran).toEqual([]);
    expect(result).toMatchObject({ ok: false, error: { code: 'TASK_VERSION_MISMATCH', retryable: false } });
    const message = result.ok ? '' : result.error.message;
    expect(message).toContain(`attempt has version ${'taskVersion' in attempt ? `'${attempt.taskVersion}'` : '(not sent)'}, signature ${attempt.signature}`);
    expect(message).toContain(`worker has version '${worker.version}', signature ${worker.signature}`);
    expect(message).toContain("task 't'");
  });

  it('two derived versions: the message says source text depends on how the code was loaded', async () => {
    const registry = toTaskRegistry([versioned('src-aaaaaaaaaaaa', 'sig-a', [])]);
    const result = await runAttempt(registry, makeAttempt({ task: 't', taskVersion: 'src-bbbbbbbbbbbb', signature: 'sig-a' }), stepClock());
    expect(result.ok ? '' : result.error.message).toMatch(/derived from the task body's source text.*pin cache.version/);
  });

  it.each([
    { why: 'the same definition', attempt: { taskVersion: '1', signature: 'sig-a' }, worker: { version: '1', signature: 'sig-a' } },
    { why: 'an attempt from a spec saved before versions were sent (signature matches)', attempt: { signature: 'sig-a' }, worker: { version: '1', signature: 'sig-a' } },
    { why: 'a job queued by an older controller (neither sent)', attempt: {}, worker: { version: '1', signature: 'sig-a' } },
    { why: 'a bare implementation declaring neither', attempt: { taskVersion: '2', signature: 'sig-b' }, worker: { version: undefined, signature: undefined } },
  ])('$why: runs', async ({ attempt, worker }) => {
    const ran: string[] = [];
    const registry = toTaskRegistry([versioned(worker.version, worker.signature, ran)]);
    const result = await runAttempt(registry, makeAttempt({ task: 't', ...attempt }), stepClock());
    expect(result).toMatchObject({ ok: true, output: 1 });
    expect(ran).toEqual(['ran']);
  });
});
