import { afterEach, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { DispatchOptions, TaskAttempt } from '../../ports/task-dispatcher.js';
import { InlineDispatcher } from '../../testing/inline-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { Controller } from './controller.js';

// A first dispatch lets the BullMQ dispatcher skip its read for an earlier run of the attempt
// (one round trip fewer per dispatch). Only the first try of a freshly decided dispatch may say so:
// a try that failed may still have queued its attempts, so its repeat must look.

/** Fails the first `failures` dispatch calls (after queuing nothing), recording each call's ids and options. */
class FlakyDispatcher extends InlineDispatcher {
  readonly calls: { ids: string[]; options: DispatchOptions | undefined }[] = [];
  constructor(private failures: number) {
    super({ 'n.add': ({ v }) => (typeof v === 'number' ? v : 0) + 1 });
  }
  override async dispatch(attempts: readonly TaskAttempt[], options?: DispatchOptions): Promise<void> {
    this.calls.push({ ids: attempts.map((a) => a.id), options });
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('queue unreachable');
    }
    return super.dispatch(attempts);
  }
}

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

test('a decided dispatch goes out as a first dispatch once; its retry after a failure does not', async () => {
  const dispatcher = new FlakyDispatcher(1);
  const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: new InMemoryRunStore(), dispatcher });
  open.push(controller);
  const spec = workflowSpec('wf.first', [taskNode('a', 'n.add', { v: lit(1) }), taskNode('b', 'n.add', { v: ref('a') })], { outputs: { b: ref('b') } });
  const id = await controller.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
  const state = await controller.wait(id);
  expect(state.run.outputs).toEqual({ b: 3 });
  expect(dispatcher.calls).toEqual([
    { ids: [`${id}-a-1`], options: { firstDispatch: true } },
    { ids: [`${id}-a-1`], options: undefined }, // the retry: the failed try might have queued it
    { ids: [`${id}-b-1`], options: { firstDispatch: true } },
  ]);
});

test('a dispatch re-derived from the store on recovery is not a first dispatch', async () => {
  const store = new InMemoryRunStore();
  const catalog = new InMemoryCacheCatalog();
  // A controller whose dispatches never arrive leaves the run saved with `a` dispatched.
  const lost = new FlakyDispatcher(Number.POSITIVE_INFINITY);
  const first = new Controller({ catalog, runStore: store, dispatcher: lost });
  const spec = workflowSpec('wf.recover', [taskNode('a', 'n.add', { v: lit(1) })], { outputs: { a: ref('a') } });
  const id = await first.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
  for (let i = 0; i < 100 && lost.calls.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  await first.close();
  expect(lost.calls[0]).toEqual({ ids: [`${id}-a-1`], options: { firstDispatch: true } });

  const dispatcher = new FlakyDispatcher(0);
  const second = new Controller({ catalog, runStore: store, dispatcher });
  open.push(second);
  expect(await second.recover(id)).toBe(true);
  const state = await second.wait(id);
  expect(state.run.outputs).toEqual({ a: 2 });
  expect(dispatcher.calls).toEqual([{ ids: [`${id}-a-1`], options: undefined }]);
});
