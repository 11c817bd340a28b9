import { afterEach, describe, expect, test } from 'vitest';
import type { Json } from '../../json.js';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { NodeField, NodeWrite, RunSaveRequest } from '../../ports/run-store.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { InlineDispatcher } from '../../testing/inline-dispatcher.js';
import { ref, taskNode, wfInput, workflowSpec, lit } from '../../testing/spec-builders.js';
import { Controller } from './controller.js';

// Lean saves (issue 9, item 4): a save writes of each node only what changed since the store last
// had it, so a node's inputs, key, key parts, output and sub-workflow go out once.

/** Records every save request; `loseEvery`: every n-th save first loses a race (another writer bumps the version). */
class RecordingRunStore extends InMemoryRunStore {
  readonly saves: RunSaveRequest[] = [];
  constructor(private readonly loseEvery = 0) {
    super();
  }
  override async save(request: RunSaveRequest): Promise<boolean> {
    this.saves.push(request);
    if (this.loseEvery > 0 && this.saves.length % this.loseEvery === 0) {
      const current = await super.load(request.run.id);
      if (current !== undefined) await super.save({ run: current.run, nodes: [], expectedVersion: current.run.version });
    }
    return super.save(request);
  }
}

/** Every `every`-th save lands, then throws as if its connection dropped before the reply (an ambiguous commit). */
class AmbiguousRunStore extends RecordingRunStore {
  constructor(private readonly every: number) {
    super();
  }
  override async save(request: RunSaveRequest): Promise<boolean> {
    const saved = await super.save(request);
    if (this.saves.length % this.every === 0) throw new Error('connection closed after COMMIT');
    return saved;
  }
}

/** Runs each attempt id once, however often it is dispatched (BullMQ's job ids and finished-attempt markers). */
class JobIdDispatcher extends InlineDispatcher {
  readonly #seen = new Set<string>();
  override async dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    const fresh = attempts.filter((a) => !this.#seen.has(a.id));
    for (const a of fresh) this.#seen.add(a.id);
    return super.dispatch(fresh);
  }
}

const tasks = {
  'n.add': ({ v }: { [name: string]: Json }) => (typeof v === 'number' ? v : 0) + 1,
  // Fails its first attempt (retryable), then succeeds.
  'n.flaky': ({ v }: { [name: string]: Json }, attempt: TaskAttempt) => {
    if (attempt.attempt === 1) throw new Error('first attempt fails');
    return typeof v === 'number' ? v * 10 : 0;
  },
};

const inner = workflowSpec('wf.inner', [taskNode('x', 'n.add', { v: wfInput('v') }), taskNode('y', 'n.add', { v: ref('x') })], { inputs: { v: true }, outputs: { y: ref('y') } });

/** A chain with a retried node and a sub-workflow (whose children a save creates): a → flaky → sub(x → y) → z. */
const workflow: WorkflowSpec = workflowSpec(
  'wf.lean',
  [
    taskNode('a', 'n.add', { v: lit(1) }),
    taskNode('flaky', 'n.flaky', { v: ref('a') }, { retries: 1 }),
    { ...taskNode('sub', 'wf.inner', { v: ref('flaky') }, { cache: null }), kind: 'subworkflow', workflow: inner },
    taskNode('z', 'n.add', { v: ref('sub', 'y') }),
  ],
  { outputs: { z: ref('z') } },
);

const open: Controller[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((controller) => controller.close()));
});

async function run(store: RecordingRunStore, catalog = new InMemoryCacheCatalog(), spec = workflow): Promise<RunState> {
  const controller = new Controller({ catalog, runStore: store, dispatcher: new InlineDispatcher(tasks) });
  open.push(controller);
  const id = await controller.submit({ spec, inputs: {}, project: 'demo', domain: 'dev' });
  const decided = await controller.wait(id);
  const stored = await store.load(id);
  if (stored === undefined) throw new Error('run not stored');
  // What the store holds is what the controller decided (wait() resolves with its in-memory state).
  expect(Object.values(stored.nodes).map(comparable)).toEqual(Object.values(decided.nodes).map(comparable));
  return stored;
}

/** What a write puts in the store for `field`: its value if the write names it (a whole write names every field). */
function written(write: NodeWrite, field: NodeField): { value: unknown } | undefined {
  return write.changed === undefined || write.changed.includes(field) ? { value: write.node[field] } : undefined;
}

const WRITE_ONCE: NodeField[] = ['inputs', 'cacheKey', 'cacheKeyParts', 'output', 'subWorkflow'];

describe('lean saves', () => {
  test("each node's inputs, key, key parts, output and sub-workflow go out in one save; later saves name only what moved", async () => {
    const store = new RecordingRunStore();
    const state = await run(store);
    expect(state.run.status).toBe('succeeded');
    expect(state.run.outputs).toEqual({ z: 23 });
    const writes = store.saves.flatMap((save) => save.nodes);
    for (const node of Object.values(state.nodes)) {
      const mine = writes.filter((w) => w.node.nodeId === node.nodeId);
      for (const field of WRITE_ONCE) {
        const values = mine.map((w) => written(w, field)).filter((w) => w !== undefined && w.value !== null);
        expect(values.length, `${node.nodeId}.${field} written ${values.length} times`).toBeLessThanOrEqual(1);
      }
      // A node's record only changes after the store has it, so only a container's children are written whole.
      const whole = mine.filter((w) => w.changed === undefined).length;
      expect(whole, node.nodeId).toBe(node.nodeId.startsWith('sub.') ? 1 : 0);
    }
    // Nothing of it was lost: every field the run set is in the store.
    expect(state.nodes['flaky']).toMatchObject({ phase: 'succeeded', attempts: 2, output: { value: 20 }, error: null, cacheStatus: 'SKIPPED', inputs: { v: { value: 2 } } });
    expect(state.nodes['sub']?.subWorkflow).toEqual(inner);
    expect(state.nodes['sub.y']).toMatchObject({ phase: 'succeeded', output: { value: 22 }, inputs: { v: { value: 21 } } });
    for (const node of Object.values(state.nodes)) {
      expect(node.inputs, node.nodeId).not.toBeNull();
      if (node.nodeId !== 'sub') expect(node.cacheKey, node.nodeId).not.toBeNull();
    }
  });

  test('a run whose saves lose races (and re-read) leaves the same records as one whose saves do not', async () => {
    const lean = await run(new RecordingRunStore());
    const racing = await run(new RecordingRunStore(2));
    const fields = (state: RunState) => Object.values(state.nodes).map((node) => comparable(node));
    expect(fields(racing)).toEqual(fields(lean));
  });

  test('saves that land but report an error (ambiguous commits) lose none of their effects: same records, each body once', async () => {
    // Regression (test/regression/save-that-committed-but-failed-hangs-run): the retried round
    // found its events stale and decided nothing, so the committed decision's dispatch never happened.
    const calm = await run(new RecordingRunStore());
    for (const every of [2, 3]) {
      const dispatcher = new JobIdDispatcher(tasks);
      const store = new AmbiguousRunStore(every);
      const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher });
      open.push(controller);
      const id = await controller.submit({ spec: workflow, inputs: {}, project: 'demo', domain: 'dev' });
      const state = await controller.wait(id);
      expect(state.run.status, `every ${every}`).toBe('succeeded');
      expect(Object.values(state.nodes).map(comparable), `every ${every}`).toEqual(Object.values(calm.nodes).map(comparable));
      // Each attempt ran once (the repeats were dropped as BullMQ drops a job id it has seen), and the
      // lost effect was repeated: more dispatches than attempts.
      expect(dispatcher.executed.length, `every ${every}`).toBe(new Set(dispatcher.executed).size);
      expect(dispatcher.executed.sort(), `every ${every}`).toEqual(Object.values(calm.nodes).flatMap((n) => Array.from({ length: n.attempts }, (_, i) => `${id}-${n.nodeId}-${i + 1}`)).sort());
    }
  }, 60_000);

  test('nodes served from the catalog in lookup-only rounds are saved with their inputs, key and output when a later round saves', async () => {
    // A cached chain whose last node misses: the hits are decided in rounds that are not saved, so
    // the save that dispatches the miss must send the hits' changes since the store last had them.
    const chain = workflowSpec('wf.chain', [taskNode('c1', 'n.add', { v: lit(0) }), taskNode('c2', 'n.add', { v: ref('c1') }), taskNode('c3', 'n.add', { v: ref('c2') })], { outputs: { v: ref('c3') } });
    const catalog = new InMemoryCacheCatalog();
    const first = await run(new RecordingRunStore(), catalog, chain);
    await catalog.evict({ keys: [first.nodes['c3']?.cacheKey ?? ''] });
    const store = new RecordingRunStore();
    const state = await run(store, catalog, chain);
    expect(Object.values(state.nodes).map((n) => n.cacheStatus)).toEqual(['HIT', 'HIT', 'POPULATED']);
    for (const id of ['c1', 'c2']) {
      expect(state.nodes[id]).toMatchObject({ phase: 'succeeded', inputs: first.nodes[id]?.inputs, cacheKey: first.nodes[id]?.cacheKey, output: first.nodes[id]?.output });
      expect(state.nodes[id]?.cacheKeyParts).toEqual(first.nodes[id]?.cacheKeyParts);
    }
    expect(state.run.outputs).toEqual({ v: 3 });
  });
});

/** A node's fields but run id and times (two runs differ in those), in a fixed order. */
/**
 * A node's record without what differs between two runs of one workflow by the clock alone: its
 * times, and the durations measured from them (computeMs, savedMs: 0 ms in one run, 1 ms in the
 * other, as CI once drew), kept as whether they are there.
 */
function comparable(node: NodeExecution): unknown {
  const { runId: _run, startedAt, finishedAt, computeMs, savedMs, cacheReason, cacheWriteRetry, ...rest } = node;
  return {
    ...rest,
    cacheReason: cacheReason?.replace(/run \S+/, 'run ?') ?? null,
    cacheWriteRetry: cacheWriteRetry ?? null,
    started: startedAt !== null,
    finished: finishedAt !== null,
    computed: computeMs !== null && computeMs !== undefined,
    saved: savedMs !== null && savedMs !== undefined,
  };
}
