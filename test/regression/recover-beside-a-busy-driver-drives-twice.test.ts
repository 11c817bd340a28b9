import { afterEach, expect, test } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type TaskAttempt } from '@memoflow/engine';
import { InlineDispatcher } from '../../packages/engine/src/testing/inline-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';

// Regression (found by review): recovering a run this controller drives replaces its driver. A busy driver (a round or its effects
// in flight) was replaced at once and went on beside its replacement: two drivers deciding and
// dispatching one run. The replacement now waits for the old driver to be idle.

/** Holds the first dispatch until `release()` (a slow queue); records every dispatch; runs each attempt id once. */
class SlowFirstDispatch extends InlineDispatcher {
  readonly calls: string[] = [];
  readonly #seen = new Set<string>();
  release: () => void = () => undefined;
  readonly #gate = new Promise<void>((resolve) => (this.release = resolve));
  constructor() {
    super({ 'n.add': ({ v }) => (typeof v === 'number' ? v : 0) + 1 });
  }
  override async dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    this.calls.push(...attempts.map((a) => a.id));
    if (this.calls.length === 1) await this.#gate;
    const fresh = attempts.filter((a) => !this.#seen.has(a.id));
    for (const a of fresh) this.#seen.add(a.id);
    return super.dispatch(fresh);
  }
}

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

const until = async (what: () => boolean) => {
  for (let i = 0; i < 400 && !what(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  return what();
};

test('recovering a run whose driver is busy waits for that driver, so two never drive it at once', async () => {
  const dispatcher = new SlowFirstDispatch();
  const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: new InMemoryRunStore(), dispatcher });
  open.push(controller);
  const spec = workflowSpec('wf.replace', [taskNode('a', 'n.add', { v: lit(1) }), taskNode('b', 'n.add', { v: ref('a') })], { outputs: { b: ref('b') } });
  const id = await controller.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
  expect(await until(() => dispatcher.calls.length === 1)).toBe(true); // a-1 saved, its dispatch held
  const recovered = controller.recover(id);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(dispatcher.calls).toEqual([`${id}-a-1`]); // no second driver dispatching beside the first
  dispatcher.release();
  expect(await recovered).toBe(true);
  const state = await controller.wait(id);
  expect(state.run.outputs).toEqual({ b: 3 });
  // The replacement repeated a-1 (recovery repeats what may be in flight; the transport ran it once).
  expect(dispatcher.executed).toEqual([`${id}-a-1`, `${id}-b-1`]);
});
