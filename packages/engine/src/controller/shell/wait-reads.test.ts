import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { RunListFilter, RunSaveRequest, RunStore } from '../../ports/run-store.js';
import type { RunState } from '../../state/run-state.js';
import { InlineDispatcher } from '../../testing/inline-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { Controller } from './controller.js';

// Issue 9, item 7: wait() does not poll full run loads for runs this controller drives; waiting on
// a run driven elsewhere polls the run's status only (and loads it once more when it is over).
// Before: a wait() on a run driven here whose driver sat idle (its attempts running) recovered the
// run: a full read, its in-flight attempts dispatched again, and a full read per duplicate result
// (3 reads for a two-node chain); a wait() on another's run read it twice before polling.

/** One controller's view of a shared store, counting its reads. */
class CountingView implements RunStore {
  loads = 0;
  statuses = 0;
  constructor(private readonly store: RunStore) {}
  create(state: RunState): Promise<void> {
    return this.store.create(state);
  }
  load(runId: string): Promise<RunState | undefined> {
    this.loads += 1;
    return this.store.load(runId);
  }
  status(runId: string): Promise<RunState['run']['status'] | undefined> {
    this.statuses += 1;
    return this.store.status(runId);
  }
  save(request: RunSaveRequest): Promise<boolean> {
    return this.store.save(request);
  }
  list(filter?: RunListFilter): Promise<Awaited<ReturnType<RunStore['list']>>> {
    return this.store.list(filter);
  }
  acquireLease(...args: Parameters<RunStore['acquireLease']>): ReturnType<RunStore['acquireLease']> {
    return this.store.acquireLease(...args);
  }
  renewLeases(...args: Parameters<RunStore['renewLeases']>): ReturnType<RunStore['renewLeases']> {
    return this.store.renewLeases(...args);
  }
  releaseLeases(...args: Parameters<RunStore['releaseLeases']>): ReturnType<RunStore['releaseLeases']> {
    return this.store.releaseLeases(...args);
  }
  listUnleased(...args: Parameters<RunStore['listUnleased']>): ReturnType<RunStore['listUnleased']> {
    return this.store.listUnleased(...args);
  }
  requestCancel(...args: Parameters<RunStore['requestCancel']>): ReturnType<RunStore['requestCancel']> {
    return this.store.requestCancel(...args);
  }
  cancelRequested(...args: Parameters<RunStore['cancelRequested']>): ReturnType<RunStore['cancelRequested']> {
    return this.store.cancelRequested(...args);
  }
}

const POLL_MS = 5;
const spec = workflowSpec('wf.wait', [taskNode('a', 't.add', { v: lit(1) }, { cache: null }), taskNode('b', 't.add', { v: ref('a') }, { cache: null })], { outputs: { b: ref('b') } });
const tasks = { 't.add': ({ v }: { [name: string]: unknown }) => (typeof v === 'number' ? v : 0) + 1 };

/** A worker pool that runs nothing until `release()`. */
function gated(pool: string) {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { dispatcher: new InlineDispatcher(tasks, { pool, gate: () => opened }), release: () => open() };
}

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((controller) => controller.close()));
});

function controller(runStore: RunStore, dispatcher: InlineDispatcher): Controller {
  const c = new Controller({ catalog: new InMemoryCacheCatalog(), runStore, dispatcher, waitPollMs: POLL_MS });
  open.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Submits the run on `driver` and returns once its first task is dispatched and the driver has nothing else to do. */
async function submitAndSettle(store: RunStore, driver: Controller): Promise<string> {
  const id = await driver.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
  for (let i = 0; i < 200 && (await store.load(id))?.nodes['a']?.phase !== 'dispatched'; i++) await sleep(1);
  await sleep(POLL_MS);
  return id;
}

describe('wait() reads', () => {
  test('on a run this controller drives: one read to see it is current, none while it runs; its attempts are not repeated', async () => {
    const store = new InMemoryRunStore();
    const view = new CountingView(store);
    const pool = gated('here');
    const here = controller(view, pool.dispatcher);
    const id = await submitAndSettle(store, here);
    view.loads = 0;
    const waited = here.wait(id);
    await sleep(20 * POLL_MS);
    pool.release();
    const state = await waited;
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ b: 3 });
    expect(view.loads).toBe(1);
    expect(pool.dispatcher.executed).toEqual([`${id}-a-1`, `${id}-b-1`]);
  });

  test('on a run whose driver here is behind the store (another controller moved it on, then died): takes it over', async () => {
    const store = new InMemoryRunStore();
    const pool = gated('here');
    const here = controller(store, pool.dispatcher);
    const id = await submitAndSettle(store, here);
    // Another controller started a's second attempt and died before dispatching it: only the store
    // knows, and a's first result is now stale. Without a takeover the run would never finish.
    const current = await store.load(id);
    const a = current?.nodes['a'];
    if (current === undefined || a === undefined) throw new Error('run not stored');
    expect(await store.save({ run: current.run, nodes: [{ node: { ...a, attempts: 2 }, changed: ['attempts'] }], expectedVersion: current.run.version })).toBe(true);
    const waited = here.wait(id);
    pool.release();
    const state = await waited;
    expect(state.run.status).toBe('succeeded');
    expect(state.nodes['a']?.attempts).toBe(2);
    expect(pool.dispatcher.executed).toContain(`${id}-a-2`);
  });

  test('on a run driven elsewhere: polls the status only, and loads the run once when it is over', async () => {
    const store = new InMemoryRunStore();
    const pool = gated('there');
    const id = await submitAndSettle(store, controller(store, pool.dispatcher));
    // The waiting controller reaches another pool, so it cannot drive the run: it only waits.
    const view = new CountingView(store);
    const waiter = controller(view, new InlineDispatcher(tasks, { pool: 'elsewhere' }));
    const waited = waiter.wait(id);
    await sleep(20 * POLL_MS);
    const loadsWhileRunning = view.loads;
    expect(view.statuses).toBeGreaterThanOrEqual(5);
    pool.release();
    const state = await waited;
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ b: 3 });
    expect({ loadsWhileRunning, loads: view.loads }).toEqual({ loadsWhileRunning: 1, loads: 2 });
  });
});
