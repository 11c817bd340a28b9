/**
 * Results reach the controller in batches (the TaskDispatcher port's `onResults`): a batch is
 * settled per run, each run's results in one round and one save, and one run's trouble holds back
 * only its own results' acknowledgements.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { RunSaveRequest } from '../../ports/run-store.js';
import type { AttemptResult, TaskAttempt } from '../../ports/task-dispatcher.js';
import { HandOverDispatcher } from '../../testing/hand-over-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import { lit, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { Controller } from './controller.js';

/** Counts saves per run; fails a run's saves like an unreachable database while `failing` names it. */
class CountingRunStore extends InMemoryRunStore {
  readonly saves: RunSaveRequest[] = [];
  failing: string | null = null;
  override async save(request: RunSaveRequest): Promise<boolean> {
    if (request.run.id === this.failing) throw new Error('connection terminated unexpectedly');
    this.saves.push(request);
    return super.save(request);
  }
  savesOf(runId: string): RunSaveRequest[] {
    return this.saves.filter((save) => save.run.id === runId);
  }
}

const wide = (width: number): WorkflowSpec =>
  workflowSpec(
    `wf.wide-${width}`,
    Array.from({ length: width }, (_, i) => taskNode(`n${i}`, 't.value', { v: lit(i) }, { cache: null })),
  );

function succeeded(attempt: TaskAttempt): AttemptResult {
  const now = new Date();
  return { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: now, finishedAt: now, ok: true, output: attempt.inputs['v'] ?? null, outputHash: null };
}

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((controller) => controller.close()));
});

let runs = 0;
function setup() {
  const dispatcher = new HandOverDispatcher();
  const store = new CountingRunStore();
  const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher, newRunId: () => `batch${++runs}` });
  open.push(controller);
  return { dispatcher, store, controller };
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Whether each promise settles within `ms`. */
async function settledWithin(promises: readonly Promise<void>[], ms: number): Promise<boolean[]> {
  const flags = promises.map(() => false);
  promises.forEach((p, i) => void p.then(() => (flags[i] = true), () => (flags[i] = true)));
  await new Promise((resolve) => setTimeout(resolve, ms));
  return flags;
}

describe('Controller: results in batches', () => {
  test('a batch of 20 results for one run costs one round and one save', async () => {
    const { dispatcher, store, controller } = setup();
    const runId = await controller.submit({ spec: wide(20), inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.dispatched.length === 20, 'the dispatch');
    // The round that dispatched created the run (a run is created by its first round that saves).
    await eventually(() => controller.drivenRuns === 1, 'the run to be driven');
    expect(store.savesOf(runId)).toHaveLength(0);
    const before = store.saves.length;

    await Promise.all(dispatcher.handOver(dispatcher.dispatched.map(succeeded)));

    const saves = store.saves.slice(before);
    expect(saves).toHaveLength(1);
    expect(saves[0]?.nodes).toHaveLength(20);
    expect(saves[0]?.run.status).toBe('succeeded');
    expect((await controller.wait(runId)).run.status).toBe('succeeded');
  });

  test('a batch spanning runs settles per run: a run whose saves fail holds back only its own results', async () => {
    const { dispatcher, store, controller } = setup();
    const a = await controller.submit({ spec: wide(2), inputs: {}, project: 'demo', domain: 'dev' });
    const b = await controller.submit({ spec: wide(2), inputs: {}, project: 'demo', domain: 'dev' });
    await eventually(() => dispatcher.dispatched.length === 4, 'both dispatches (each its run’s create)');
    const of = (runId: string) => dispatcher.dispatched.filter((attempt) => attempt.runId === runId).map(succeeded);
    const [a0, a1] = of(a) as [AttemptResult, AttemptResult];
    const [b0, b1] = of(b) as [AttemptResult, AttemptResult];
    store.failing = a;

    const settlements = dispatcher.handOver([a0, b0, a1, b1]);

    expect(settlements).toHaveLength(4);
    await Promise.all([settlements[1], settlements[3]]);
    expect(store.savesOf(b)).toHaveLength(1); // both results at once, decided together (the dispatch was the run's create)
    expect(await settledWithin([settlements[0] as Promise<void>, settlements[2] as Promise<void>], 50)).toEqual([false, false]); // retried with backoff, not acknowledged
    store.failing = null;
    await Promise.all(settlements);
    expect(store.savesOf(a)).toHaveLength(1);
    expect((await controller.wait(a)).run.status).toBe('succeeded');
  });

  test('a closed controller rejects every result of a batch, retryable, so the transport redelivers them', async () => {
    const { dispatcher, controller } = setup();
    await controller.close();
    const attempt: TaskAttempt = { id: 'gone-n0-1', runId: 'gone', nodeId: 'n0', task: 't.value', attempt: 1, inputs: {}, timeoutMs: null, cacheKey: null };
    const settlements = dispatcher.handOver([succeeded(attempt), succeeded({ ...attempt, id: 'gone-n1-1', nodeId: 'n1' })]);
    expect(settlements).toHaveLength(2);
    for (const settlement of settlements) await expect(settlement).rejects.toMatchObject({ code: 'STALE_STATE', retryable: true });
  });
});
