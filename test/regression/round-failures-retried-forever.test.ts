/**
 * Regression: a task output or error the store refused, a result for a run this store does not know
 * (two schemas sharing a Redis prefix), and an exception inside `decide` all made the round fail and
 * be retried every 500 ms forever: the run never ended and, in the distributed mode, the result held
 * a handler slot for good.
 *
 * A failed round is sorted, never simply retried forever (robustness issue, item 1): temporary
 * store failures are retried with backoff and the run completes; results for a run this store does
 * not have are acknowledged and dropped; a decision that throws, or data the store refuses, fails
 * only the node concerned, and the run ends.
 */
import { afterEach, describe, expect, test } from 'vitest';
import {
  Controller,
  InMemoryCacheCatalog,
  InMemoryRunStore,
  type AttemptResult,
  type AttemptResultsHandler,
  type EngineEvent,
  type ErrorInfo,
  type RunSaveRequest,
  type TaskAttempt,
  type TaskDispatcher,
} from '@memoflow/engine';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

/** Runs `double` (x * 2) in process; `poison` makes a node's result malformed or odd. */
class LocalDispatcher implements TaskDispatcher {
  readonly pool = 'test-local';
  handler: AttemptResultsHandler | undefined;
  poison = new Map<string, (result: AttemptResult) => AttemptResult>();
  async dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    for (const attempt of attempts) {
      setImmediate(() => {
        const now = new Date();
        let result: AttemptResult = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: now, finishedAt: now, ok: true, output: (attempt.inputs['x'] as number) * 2, outputHash: null };
        result = this.poison.get(attempt.nodeId)?.(result) ?? result;
        void this.handler?.([result])[0]?.catch(() => undefined);
      });
    }
  }
  onResults(handler: AttemptResultsHandler): void {
    this.handler = handler;
  }
  async cancel(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A run store whose saves fail like Postgres when `fail` says so. */
class FlakyRunStore extends InMemoryRunStore {
  fail: (request: RunSaveRequest) => Error | undefined = () => undefined;
  override async save(request: RunSaveRequest): Promise<boolean> {
    const error = this.fail(request);
    if (error !== undefined) throw error;
    return super.save(request);
  }
}

const spec = workflowSpec('round.chain', [taskNode('a', 'double', { x: lit(1) }, { cache: null }), taskNode('b', 'double', { x: ref('a') }, { cache: null }), taskNode('c', 'double', { x: lit(5) }, { cache: null })], {
  outputs: { b: ref('b'), c: ref('c') },
});

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function setup(store = new FlakyRunStore()) {
  const dispatcher = new LocalDispatcher();
  const events: EngineEvent[] = [];
  const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher, onEvent: (e) => events.push(e), waitPollMs: 20 });
  open.push(controller);
  return { controller, dispatcher, store, events };
}

/** An error as postgres.js raises it: a SQLSTATE in `code`. */
function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('regression: failed rounds are sorted, not retried forever', () => {
  test('a store outage is retried with backoff and the run completes; the warning names the cause and the next try', async () => {
    const { controller, store, events } = setup();
    let outage = 2;
    store.fail = () => (outage-- > 0 ? Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }) : undefined);
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    const final = await controller.wait(id);
    expect(final.run.status).toBe('succeeded');
    const warnings = events.filter((e) => e.type === 'controller:round-failed').map((e) => e.message);
    expect(warnings[0]).toBe('controller round failed: connect ECONNREFUSED 127.0.0.1:5432; retrying in 500 ms (attempt 1)');
    expect(warnings[1]).toContain('retrying in 1000 ms (attempt 2)');
  });

  test('a result for a run this store does not have is acknowledged and dropped, with a warning', async () => {
    const { dispatcher, events } = setup();
    const now = new Date();
    const [delivered] = dispatcher.handler?.([{ attemptId: 'ghost-a-1', runId: 'ghost', nodeId: 'a', attempt: 1, startedAt: now, finishedAt: now, ok: true, output: 1, outputHash: null }]) ?? [];
    await expect(delivered).resolves.toBeUndefined();
    expect(events.find((e) => e.type === 'controller:round-failed')?.message).toMatch(/run 'ghost' is not in this store .*acknowledged and dropped/);
  });

  test('a result that makes the decision throw fails its node only; the run ends, other nodes are unaffected', async () => {
    const { controller, dispatcher, events } = setup();
    // A malformed result (no error info on a failure): the decision cannot apply it.
    dispatcher.poison.set('a', (result) => ({ ...result, ok: false, error: undefined as unknown as ErrorInfo }));
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    const final = await controller.wait(id);
    expect(final.run.status).toBe('failed');
    expect(final.nodes['a']?.error).toMatchObject({ code: 'RESULT_NOT_RECORDED', retryable: false });
    expect(final.nodes['a']?.error?.message).toMatch(/could not be recorded: the decision function threw/);
    expect(final.nodes['b']?.phase).toBe('aborted');
    expect(final.nodes['c']).toMatchObject({ phase: 'succeeded', output: { value: 10 } });
    expect(events.some((e) => e.level === 'error' && /recording it as failed instead/.test(e.message ?? ''))).toBe(true);
  });

  test('data the store refuses (SQLSTATE 22xxx) fails the node whose result carries it, not the run loop', async () => {
    const { controller, dispatcher, store } = setup();
    dispatcher.poison.set('c', (result) => (result.ok ? { ...result, output: 'refused by the store' } : result));
    store.fail = (request) => (request.nodes.some((w) => w.node.output?.value === 'refused by the store') ? pgError('22P05', 'unsupported Unicode escape sequence') : undefined);
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    const final = await controller.wait(id);
    expect(final.nodes['c']?.error?.message).toMatch(/could not be recorded: unsupported Unicode escape sequence/);
    expect(final.nodes['b']).toMatchObject({ phase: 'succeeded', output: { value: 4 } });
    expect(final.run.status).toBe('failed');
  });

});
