import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import { newRunState } from '../../state/new-run.js';
import { eventually, HandOverDispatcher } from '../../testing/hand-over-dispatcher.js';
import { lit, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { OrphanWatch } from './orphan-watch.js';

const spec = workflowSpec('orphans.wf', [taskNode('a', 't', { x: lit(1) }, { cache: null })]);
const watches: OrphanWatch[] = [];
afterEach(() => {
  for (const watch of watches.splice(0)) watch.stop();
});

/** A watch polling every 5 ms over a fresh store and dispatcher, with the errors it reported. */
function watching() {
  const store = new InMemoryRunStore();
  const dispatcher = new HandOverDispatcher();
  const errors: unknown[] = [];
  const watch = new OrphanWatch({ store, dispatcher, intervalMs: 5, onError: (error) => errors.push(error) });
  watches.push(watch);
  return { store, dispatcher, errors, watch };
}

describe('OrphanWatch', () => {
  test("cancels a stopped driver's unrecorded attempts once their run has ended, and not before", async () => {
    const { store, dispatcher, errors, watch } = watching();
    const state = newRunState({ id: 'r1', spec, inputs: {}, project: 'p', domain: 'd', options: { overwriteCache: false, pool: 'test' }, now: new Date() });
    await store.create(state);
    watch.add('r1', [{ id: 'r1-a-1', task: 't' }, { id: 'r1-a-1', task: 't' }]);
    watch.add('r1', []);
    expect(watch.watched).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 30)); // several polls: the run still runs
    expect(dispatcher.cancelled).toEqual([]);
    expect(await store.save({ run: { ...state.run, status: 'cancelled', finishedAt: new Date() }, nodes: [], expectedVersion: 0 })).toBe(true);
    await eventually(() => dispatcher.cancelled.length > 0, 'the cancel');
    expect(dispatcher.cancelled).toEqual([{ id: 'r1-a-1', task: 't' }]);
    expect(watch.watched).toBe(0);
    expect(errors).toEqual([]);
  });

  test('a status read that fails is tried again at the next poll', async () => {
    const { store, dispatcher, errors, watch } = watching();
    store.failNext('load'); // status() reads as load does
    watch.add('gone', [{ id: 'gone-a-1', task: 't' }]);
    await eventually(() => dispatcher.cancelled.length > 0, 'the cancel of a run the store does not hold');
    expect(errors).toHaveLength(1);
  });
});
