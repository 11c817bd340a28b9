import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { AttemptResult, AttemptResultsHandler, AttemptToCancel, TaskAttempt, TaskDispatcher } from '../../ports/task-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { Controller } from './controller.js';
import type { EngineEvent } from '../vocabulary/commands.js';

/**
 * A transport the test drives: it keeps what is dispatched and cancelled, and hands results over
 * when the test says (so a result can arrive after the cancel).
 */
class HeldDispatcher implements TaskDispatcher {
  readonly dispatched: TaskAttempt[] = [];
  readonly cancelled: string[] = [];
  private handler: AttemptResultsHandler | undefined;
  constructor(readonly pool: string) {}
  dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    this.dispatched.push(...attempts);
    return Promise.resolve();
  }
  cancel(attempts: readonly AttemptToCancel[]): Promise<void> {
    this.cancelled.push(...attempts.map((a) => a.id));
    return Promise.resolve();
  }
  onResults(handler: AttemptResultsHandler): void {
    this.handler = handler;
  }
  handOver(result: AttemptResult): Promise<void> {
    const settled = this.handler?.([result])[0];
    if (settled === undefined) throw new Error('no handler');
    return settled;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

let counter = 0;
function controllerOn(store: InMemoryRunStore, catalog: InMemoryCacheCatalog, dispatcher: HeldDispatcher, events: EngineEvent[] = []): Controller {
  const controller = new Controller({ catalog, runStore: store, dispatcher, newRunId: () => `cx${++counter}`, onEvent: (e) => events.push(e), cancelPollMs: 20 });
  open.push(controller);
  return controller;
}

/** a (cached) feeds b: a runs until the test finishes it. */
const spec = workflowSpec('wf.cancel', [taskNode('a', 't.a', { x: lit(1) }), taskNode('b', 't.b', { x: ref('a') })], { outputs: { b: ref('b') } });

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function resultOf(attempt: TaskAttempt, output: number): AttemptResult {
  return { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: new Date(), finishedAt: new Date(), ok: true, output, outputHash: null };
}

describe('Controller.cancel', () => {
  test('a run driven here ends cancelled at once; its attempt is cancelled; a late result is acknowledged and not cached', async () => {
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const dispatcher = new HeldDispatcher('pool-1');
    const events: EngineEvent[] = [];
    const controller = controllerOn(store, catalog, dispatcher, events);
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until(() => dispatcher.dispatched.length === 1, 'a to be dispatched');
    const ended = controller.wait(id);

    expect(await controller.cancel(id)).toEqual({ kind: 'requested' });
    const state = await ended;
    expect(state.run.status).toBe('cancelled');
    expect(state.run.error?.code).toBe('RUN_CANCELLED');
    expect(state.nodes['a']?.phase).toBe('cancelled');
    expect(state.nodes['b']?.phase).toBe('cancelled');
    // a's attempt, and b's first: a controller holding a's result may have sent b-1 beside a save
    // that never landed, and nothing records it (core/cancel.ts, cancelUnrecorded).
    await until(() => dispatcher.cancelled.length === 2, 'the attempt to be cancelled');
    expect(dispatcher.cancelled.sort()).toEqual([dispatcher.dispatched[0]?.id, `${id}-b-1`].sort());
    expect(events.filter((e) => e.type === 'run:cancelled')).toHaveLength(1);

    // The attempt finished anyway: its result is acknowledged (the promise resolves) and dropped.
    await dispatcher.handOver(resultOf(dispatcher.dispatched[0] as TaskAttempt, 5));
    expect(await catalog.list()).toEqual([]);
    expect((await store.load(id))?.nodes['a']?.phase).toBe('cancelled');
    // b never started (a's attempt may be dispatched twice: wait() recovers an idle run, idempotently).
    expect(new Set(dispatcher.dispatched.map((a) => a.id))).toEqual(new Set([dispatcher.dispatched[0]?.id]));

    // Cancelling it again is a no-op that says why.
    expect(await controller.cancel(id)).toEqual({ kind: 'finished', status: 'cancelled' });
    await expect(controller.cancel('nope')).resolves.toEqual({ kind: 'missing' });
  });

  test('a cancel asked by another controller that cannot drive the run reaches its owner through the poll', async () => {
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const owner = new HeldDispatcher('pool-owner');
    const driving = controllerOn(store, catalog, owner);
    // Another pool (an in-process controller of another process): it may not drive the run.
    const elsewhere = controllerOn(store, catalog, new HeldDispatcher('pool-elsewhere'));
    const id = await driving.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until(() => owner.dispatched.length === 1, 'a to be dispatched');

    expect(await elsewhere.cancel(id, 'stopped from the CLI')).toEqual({ kind: 'requested' });
    expect(await store.status(id)).toBe('running'); // recorded, not applied: the owner applies it
    const state = await driving.wait(id);
    expect(state.run.status).toBe('cancelled');
    expect(state.run.error?.message).toBe('stopped from the CLI');
    await until(() => owner.cancelled.length === 2, 'the owner to cancel the attempt (and b-1, which may have gone out unrecorded)');
  });

  test('a run of a pool this controller reaches, with no live driver, is cancelled by the canceller itself', async () => {
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const pool = new HeldDispatcher('pool-shared');
    const first = controllerOn(store, catalog, pool);
    const id = await first.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until(() => pool.dispatched.length === 1, 'a to be dispatched');
    await first.close(); // its controller is gone; the attempt still runs on the pool

    const second = controllerOn(store, catalog, pool);
    expect(await second.cancel(id)).toEqual({ kind: 'requested' });
    expect((await second.wait(id)).run.status).toBe('cancelled');
    await until(() => pool.cancelled.length === 2, 'the attempt to be cancelled (and b-1, which may have gone out unrecorded)');
    expect(pool.dispatched).toHaveLength(1); // taking it over to cancel it dispatched nothing again
  });
});
