/**
 * Regression: a controller kept an idle driver for every run whose result it ever handled, and
 * `recoverStale` and `wait()` skipped runs that had one, so with two controllers a run whose owner
 * died after saving "dispatched" hung, and memory grew with every run; and a client that could only
 * read a run "recovered" it with its own dispatcher and failed it.
 *
 * Which controller drives a run: by what the store says, never by what a controller happens to hold
 * in memory (robustness issue, items 4 and 5). A shared in-memory store and catalog stand for
 * Postgres; a shared transport stands for the queue: attempts go to one pool of "workers", and each
 * result goes to whichever controller the transport picks.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type AttemptResult, type AttemptResultsHandler, type TaskAttempt, type TaskDispatcher } from '@memoflow/engine';
import { arr, ref, taskNode, workflowSpec, lit } from '../../packages/engine/src/testing/spec-builders.js';

/** One transport, many controllers' dispatchers: results go to the handler `route` picks. */
class SharedTransport {
  readonly handlers: AttemptResultsHandler[] = [];
  /** Nodes whose next dispatch is swallowed (the controller died before it reached the queue). */
  readonly lose = new Set<string>();
  readonly executed: string[] = [];
  private readonly seen = new Set<string>();
  route: (result: AttemptResult) => number = () => 0;

  dispatcher(pool = 'queue:shared'): TaskDispatcher {
    return {
      pool,
      dispatch: async (attempts: readonly TaskAttempt[]) => {
        for (const attempt of attempts) {
          if (this.lose.delete(attempt.nodeId) || this.seen.has(attempt.id)) continue;
          this.seen.add(attempt.id);
          setImmediate(() => void this.run(attempt));
        }
      },
      onResults: (handler) => void this.handlers.push(handler),
      cancel: async () => undefined,
      close: async () => undefined,
    };
  }

  private async run(attempt: TaskAttempt): Promise<void> {
    this.executed.push(attempt.id);
    const now = new Date();
    const output = attempt.task === 'sum' ? (attempt.inputs['xs'] as number[]).reduce((a, b) => a + b, 0) : (attempt.inputs['x'] as number) * 10;
    const result: AttemptResult = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: now, finishedAt: now, ok: true, output, outputHash: null };
    await this.handlers[this.route(result)]?.([result])[0]?.catch(() => undefined);
  }
}

const spec = workflowSpec('own.wide', [taskNode('a', 'times', { x: lit(1) }, { cache: null }), taskNode('b', 'times', { x: lit(2) }, { cache: null }), taskNode('sum', 'sum', { xs: arr(ref('a'), ref('b')) }, { cache: null })], {
  outputs: { total: ref('sum') },
});

const controllers: Controller[] = [];
afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
});

function controller(transport: SharedTransport, store: InMemoryRunStore, catalog: InMemoryCacheCatalog, pool?: string): Controller {
  const c = new Controller({ catalog, runStore: store, dispatcher: transport.dispatcher(pool), waitPollMs: 20 });
  controllers.push(c);
  return c;
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('controller: run ownership', () => {
  test('a run whose owner died after saving a dispatch is recovered even by a controller holding an idle driver for it', async () => {
    const transport = new SharedTransport();
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const a = controller(transport, store, catalog);
    const b = controller(transport, store, catalog);
    transport.route = () => 1; // every result goes to B
    transport.lose.add('b'); // A saves both attempts as dispatched, but dies before b's reaches the queue
    const runId = await a.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('B to handle a result of the run', () => b.drivenRuns === 1 && transport.executed.length >= 1);
    await a.close(); // A is gone; whatever it had not dispatched is only in the store
    const state = await store.load(runId);
    expect(state?.run.status).toBe('running');

    // Before: B skipped the run because it held a driver for it, so nobody ever recovered it.
    const recovered = await b.recoverStale(0);
    expect(recovered).toContain(runId);
    const final = await b.wait(runId);
    expect(final.run.status).toBe('succeeded');
    expect(final.run.outputs).toEqual({ total: 30 });
  });

  test('idle drivers are dropped: memory follows the runs in flight, not every run ever touched', async () => {
    const transport = new SharedTransport();
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const a = controller(transport, store, catalog);
    const b = controller(transport, store, catalog);
    transport.route = (result) => (result.nodeId === 'a' ? 1 : 0); // B handles one result of each run, A the rest
    const ids = await Promise.all(Array.from({ length: 5 }, () => a.submit({ spec, inputs: {}, project: 'p', domain: 'd' })));
    for (const id of ids) expect((await a.wait(id)).run.status).toBe('succeeded');
    await until('B to be idle', () => b.drivenRuns === 5);
    b.evictIdleDrivers(0);
    expect(b.drivenRuns).toBe(0);
  });

  test('a controller that cannot reach the run\'s worker pool only reads it: waiting never takes it over', async () => {
    const transport = new SharedTransport();
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const owner = controller(transport, store, catalog, 'queue:shared');
    const reader = controller(new SharedTransport(), store, catalog, 'in-process:elsewhere');
    const id = await owner.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    const read = await reader.wait(id);
    expect(read.run.status).toBe('succeeded');
    expect(read.run.outputs).toEqual({ total: 30 });
    expect(reader.drivenRuns).toBe(0);
    expect(await reader.recoverStale(0)).toEqual([]);
  });
});
