/**
 * Results reach the controller in batches, in both transports (issue 9, item 3): results of one
 * run that finish while the controller is busy with that run cost one round and one save between
 * them, not one each; so do results that wait together for an idle controller (in process:
 * attempts finishing in the same turn; BullMQ: entries one stream read returns). Counted with an
 * in-memory run store whose saves the test can hold.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  Controller,
  InMemoryCacheCatalog,
  InMemoryRunStore,
  type Json,
  type RunSaveRequest,
  type TaskDispatcher,
  type TaskImplementation,
} from '@memoflow/engine';
import { BullMqTaskDispatcher, InProcessTaskDispatcher, silentLogger, startWorker } from '@memoflow/worker';
import { lit, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../../packages/worker/src/testing/redis.js';

const WIDTH = 16;

/** Records every save; while `held` is set, saves wait for it (a slow database). */
class HoldingRunStore extends InMemoryRunStore {
  readonly saves: RunSaveRequest[] = [];
  held: Promise<void> | null = null;
  override async save(request: RunSaveRequest): Promise<boolean> {
    this.saves.push(request);
    if (this.held !== null) await this.held;
    return super.save(request);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Task `gated`: waits for the gate named by its `gate` input. Counts bodies started and finished. */
function gatedTasks() {
  const gates = new Map<string, ReturnType<typeof deferred>>();
  const gate = (name: string) => {
    let found = gates.get(name);
    if (found === undefined) gates.set(name, (found = deferred()));
    return found;
  };
  const counts = { started: 0, finished: 0 };
  const task: TaskImplementation = {
    name: 'gated',
    async execute(inputs) {
      counts.started += 1;
      await gate(inputs['gate'] as string).promise;
      counts.finished += 1;
      return { output: inputs['v'] as Json, outputHash: null };
    },
  };
  return { task, open: (name: string) => gate(name).resolve(), counts };
}

/** `first` behind gate `first`, then WIDTH nodes behind gate `rest`: all ready at once, no caching. */
const spec = workflowSpec('batches.wide', [
  taskNode('first', 'gated', { gate: lit('first'), v: lit(0) }, { cache: null }),
  ...Array.from({ length: WIDTH }, (_, i) => taskNode(`n${i}`, 'gated', { gate: lit('rest'), v: lit(i + 1) }, { cache: null })),
]);

interface Transport {
  dispatcher: TaskDispatcher;
  close(): Promise<void>;
}

const transports: Record<'in-process' | 'bullmq', (task: TaskImplementation) => Promise<Transport>> = {
  'in-process': async (task) => {
    const dispatcher = new InProcessTaskDispatcher({ tasks: new Map([[task.name, task]]), concurrency: WIDTH + 1, logger: silentLogger });
    return { dispatcher, close: () => dispatcher.close() };
  },
  bullmq: async (task) => {
    const prefix = testPrefix();
    const pool = await startWorker({ tasks: [task], redisUrl: REDIS_URL, prefix, concurrency: WIDTH + 1, logger: silentLogger });
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger });
    return {
      dispatcher,
      close: async () => {
        await dispatcher.close();
        await pool.close();
        await cleanUpPrefix(prefix);
      },
    };
  },
};

/** The dispatcher, counting the results it has handed to the controller. */
function counted(dispatcher: TaskDispatcher): { dispatcher: TaskDispatcher; handed: () => number } {
  let handed = 0;
  return {
    handed: () => handed,
    dispatcher: {
      pool: dispatcher.pool,
      dispatch: (attempts) => dispatcher.dispatch(attempts),
      cancel: (attempts) => dispatcher.cancel(attempts),
      onResults: (handler) =>
        dispatcher.onResults((results) => {
          handed += results.length;
          return handler(results);
        }),
      close: () => dispatcher.close(),
    },
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(mode: keyof typeof transports) {
  const tasks = gatedTasks();
  const transport = await transports[mode](tasks.task);
  cleanups.push(() => transport.close());
  const { dispatcher, handed } = counted(transport.dispatcher);
  const store = new HoldingRunStore();
  const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher });
  cleanups.push(() => controller.close());
  const runId = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
  await until('every attempt to start', () => tasks.counts.started === WIDTH + 1);
  return { tasks, store, controller, runId, handed };
}

describe.each(['in-process', 'bullmq'] as const)('results in batches (%s)', (mode) => {
  it(`${WIDTH} results finishing while the run's previous result is being saved cost one round and one save`, async () => {
    const { tasks, store, controller, runId, handed } = await setUp(mode);
    const hold = deferred();
    store.held = hold.promise;
    const before = store.saves.length;
    tasks.open('first');
    await until("first's save to start", () => store.saves.length === before + 1);
    tasks.open('rest');
    // In process the results wait in the dispatcher (its handler is busy); through BullMQ they are
    // read and handed to the run's driver, which queues them behind the round in progress.
    await until('the results to arrive', () => tasks.counts.finished === WIDTH + 1 && (mode === 'in-process' || handed() === WIDTH + 1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    store.held = null;
    hold.resolve();

    const final = await controller.wait(runId);
    expect(final.run.status).toBe('succeeded');
    const saves = store.saves.slice(before);
    expect(saves.map((save) => save.nodes.map((write) => write.node.nodeId).sort())).toEqual([['first'], Array.from({ length: WIDTH }, (_, i) => `n${i}`).sort()]);
    expect(saves[1]?.run.status).toBe('succeeded');
  });
});

describe('results in batches (in-process, from idle)', () => {
  it(`${WIDTH} attempts finishing in one turn cost one round and one save`, async () => {
    const { tasks, store, controller, runId } = await setUp('in-process');
    tasks.open('first');
    await until("first's result to be saved", () => store.saves.some((save) => save.nodes.some((write) => write.node.nodeId === 'first' && write.node.phase === 'succeeded')));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the controller is idle again
    const before = store.saves.length;
    tasks.open('rest');
    const final = await controller.wait(runId);
    expect(final.run.status).toBe('succeeded');
    expect(store.saves.slice(before).map((save) => save.nodes.length)).toEqual([WIDTH]);
  });
});

describe('results in batches (bullmq, waiting in the stream)', () => {
  it(`${WIDTH} results one read returns cost one round and one save`, async () => {
    const tasks = gatedTasks();
    const prefix = testPrefix();
    const pool = await startWorker({ tasks: [tasks.task], redisUrl: REDIS_URL, prefix, concurrency: WIDTH + 1, logger: silentLogger });
    cleanups.push(async () => {
      await pool.close();
      await cleanUpPrefix(prefix);
    });
    const store = new HoldingRunStore();
    const catalog = new InMemoryCacheCatalog();
    const controllerOn = () => {
      const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger });
      const controller = new Controller({ catalog, runStore: store, dispatcher });
      const close = async () => {
        await controller.close();
        await dispatcher.close();
      };
      cleanups.push(close);
      return { controller, close };
    };
    const first = controllerOn();
    const runId = await first.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await until('every attempt to start', () => tasks.counts.started === WIDTH + 1);
    tasks.open('first');
    await until("first's result to be saved", () => store.saves.some((save) => save.nodes.some((write) => write.node.nodeId === 'first' && write.node.phase === 'succeeded')));
    await first.close(); // nobody reads the stream now
    tasks.open('rest');
    await until('the results to be published', () => tasks.counts.finished === WIDTH + 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = store.saves.length;

    const second = controllerOn(); // its first read takes all of them
    const final = await second.controller.wait(runId);
    expect(final.run.status).toBe('succeeded');
    expect(store.saves.slice(before).map((save) => save.nodes.length)).toEqual([WIDTH]);
  });
});
