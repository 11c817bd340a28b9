import type { CacheStatus, NodeExecution, NodeField, NodePhase, NodeWrite, RunStore } from '@memoflow/engine';
import { changedFields } from '@memoflow/engine';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonValue } from './json-arbitrary.js';
import { fullNode, runState } from './run-store-fixtures.js';

/**
 * The RunStore contract for node writes (ports/run-store.ts `NodeWrite`): a save writes a node
 * whole, or only its changed fields. Part of `describeRunStoreContract`; `store` is the
 * implementation under test, read per test.
 */
export function describeNodeWriteContract(store: () => RunStore): void {
  describe('node writes: whole records and changed fields', () => {
    it('a partial write changes only the named fields: inputs, key and key parts written once stay as written', async () => {
      const state = runState('w-keep', ['n1', 'n2']);
      await store().create(state);
      const pending = state.nodes['n1'] as NodeExecution;
      const started: NodeExecution = {
        ...pending,
        phase: 'dispatched',
        attempts: 1,
        cacheStatus: 'MISS',
        cacheKey: 'key-n1',
        cacheKeyParts: fullNode('w-keep', 'n1').cacheKeyParts,
        inputs: { zz: { value: { b: 1, a: [{ y: 2, x: 1 }] } }, aa: { value: null } },
        startedAt: new Date('2030-01-01T00:00:01.001Z'),
      };
      expect(await store().save({ run: state.run, nodes: [{ node: started, changed: changedFields(pending, started) }], expectedVersion: 0 })).toBe(true);
      expect(JSON.stringify((await store().load('w-keep'))?.nodes['n1'])).toBe(JSON.stringify(started));

      // What the next save carries for the fields it does not name must not be written.
      const finished: NodeExecution = { ...started, phase: 'succeeded', output: { value: { zebra: 1, ant: [2] } }, finishedAt: new Date('2030-01-01T00:00:02.002Z') };
      const sent: NodeExecution = { ...finished, task: 'other.task', inputs: null, cacheKey: null, cacheKeyParts: null, attempts: 7, startedAt: null };
      expect(await store().save({ run: state.run, nodes: [{ node: sent, changed: ['phase', 'output', 'finishedAt'] }], expectedVersion: 1 })).toBe(true);
      const loaded = await store().load('w-keep');
      expect(JSON.stringify(loaded?.nodes['n1'])).toBe(JSON.stringify(finished));
      expect(loaded?.nodes['n1']?.finishedAt).toBeInstanceOf(Date);
      expect(loaded?.nodes['n2']).toEqual(state.nodes['n2']);
      expect(loaded?.run.version).toBe(2);
    });

    it("a whole write inserts a node the store does not hold (a container's children), beside partial writes of others", async () => {
      const state = runState('w-new', ['n1']);
      await store().create(state);
      const expanded: NodeExecution = { ...(state.nodes['n1'] as NodeExecution), phase: 'expanded', subWorkflow: fullNode('w-new', 'n1').subWorkflow };
      const child = fullNode('w-new', 'n1.train');
      const writes: NodeWrite[] = [{ node: expanded, changed: ['phase', 'subWorkflow'] }, { node: child }];
      expect(await store().save({ run: state.run, nodes: writes, expectedVersion: 0 })).toBe(true);
      const loaded = await store().load('w-new');
      expect(JSON.stringify(loaded?.nodes['n1.train'])).toBe(JSON.stringify(child));
      expect(JSON.stringify(loaded?.nodes['n1'])).toBe(JSON.stringify(expanded));
    });

    it('a field named as changed is written even when null; the fields not named keep their values', async () => {
      const state = runState('w-null', ['n1']);
      const stored: NodeExecution = { ...fullNode('w-null', 'n1'), phase: 'writing', cacheWriteRetry: { failures: 1, lastError: 'reset', retryAtMs: 5, final: false } };
      state.nodes['n1'] = stored;
      await store().create(state);
      const nulled: NodeField[] = ['cacheStatus', 'cacheReason', 'cacheKey', 'cacheKeyParts', 'output', 'error', 'finishedAt', 'subWorkflow', 'cacheWriteRetry'];
      const cleared: NodeExecution = { ...stored, cacheStatus: null, cacheReason: null, cacheKey: null, cacheKeyParts: null, output: null, error: null, finishedAt: null, subWorkflow: null, cacheWriteRetry: null };
      expect(changedFields(stored, cleared).sort()).toEqual([...nulled].sort());
      expect(await store().save({ run: state.run, nodes: [{ node: cleared, changed: nulled }], expectedVersion: 0 })).toBe(true);
      const loaded = (await store().load('w-null'))?.nodes['n1'];
      const { cacheWriteRetry: _retry, ...rest } = cleared;
      expect(loaded).toEqual(rest);
      expect(loaded?.cacheWriteRetry ?? null).toBeNull();
      expect(loaded?.inputs).toEqual(stored.inputs);
    });

    it('a partial write of a node the store does not hold writes nothing for it; the rest of the save lands', async () => {
      const state = runState('w-ghost', ['n1']);
      await store().create(state);
      const moved: NodeExecution = { ...(state.nodes['n1'] as NodeExecution), phase: 'aborted' };
      const ghost: NodeExecution = { ...fullNode('w-ghost', 'ghost'), phase: 'failed' };
      expect(await store().save({ run: state.run, nodes: [{ node: moved, changed: ['phase'] }, { node: ghost, changed: ['phase'] }], expectedVersion: 0 })).toBe(true);
      const loaded = await store().load('w-ghost');
      expect(Object.keys(loaded?.nodes ?? {})).toEqual(['n1']);
      expect(loaded?.nodes['n1']?.phase).toBe('aborted');
    });

    it('partial writes with a stale version write nothing', async () => {
      const state = runState('w-stale', ['n1']);
      await store().create(state);
      const before = await store().load('w-stale');
      const moved: NodeExecution = { ...(state.nodes['n1'] as NodeExecution), phase: 'dispatched', attempts: 1 };
      expect(await store().save({ run: state.run, nodes: [{ node: moved, changed: ['phase', 'attempts'] }], expectedVersion: 3 })).toBe(false);
      expect(await store().load('w-stale')).toEqual(before);
    });

    it('a sequence of partial writes leaves what applying each to the stored record predicts (property)', async () => {
      let runsMade = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(nodeFields, fc.subarray(ALL_FIELDS)), { minLength: 1, maxLength: 4 }), async (steps) => {
          const id = `w-prop-${runsMade++}`;
          const state = runState(id, ['n1']);
          await store().create(state);
          let expected = state.nodes['n1'] as NodeExecution;
          for (const [version, [fields, changed]] of steps.entries()) {
            const next: NodeExecution = { ...expected, ...fields, task: 'ignored.unless.named' };
            const saved = await store().save({ run: state.run, nodes: [{ node: next, changed }], expectedVersion: version });
            if (!saved) throw new Error(`save ${version} lost`);
            expected = { ...expected };
            for (const field of changed) assign(expected, next, field);
          }
          const loaded = (await store().load(id))?.nodes['n1'];
          if (loaded === undefined || fieldsText(loaded) !== fieldsText(expected)) {
            throw new Error(`node came back as ${JSON.stringify(loaded)}, expected ${JSON.stringify(expected)}`);
          }
        }),
        { numRuns: 20 },
      );
    });
  });
}

const ALL_FIELDS: NodeField[] = ['task', 'phase', 'cacheStatus', 'cacheReason', 'cacheKey', 'cacheKeyParts', 'attempts', 'inputs', 'output', 'error', 'startedAt', 'finishedAt', 'subWorkflow', 'cacheWriteRetry', 'computeMs', 'savedMs', 'cutoffHint'];

const date = fc.option(fc.integer({ min: 0, max: 4_000_000_000_000 }).map((ms) => new Date(ms)), { nil: null });

/** New values for a node's fields, each possibly null (where the field may be). */
const nodeFields = fc.record({
  phase: fc.constantFrom<NodePhase[]>('pending', 'looking-up', 'dispatched', 'writing', 'expanded', 'succeeded', 'failed', 'aborted'),
  cacheStatus: fc.constantFrom<(CacheStatus | null)[]>(null, 'HIT', 'MISS', 'POPULATED', 'SKIPPED'),
  cacheReason: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
  cacheKey: fc.option(fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom(...'0123456789abcdef') }), { nil: null }),
  cacheKeyParts: fc.constantFrom(null, fullNode('-', '-').cacheKeyParts),
  attempts: fc.nat({ max: 5 }),
  inputs: fc.option(fc.dictionary(fc.string({ maxLength: 4 }), jsonValue.map((value) => ({ value })), { maxKeys: 3 }), { nil: null }),
  output: fc.option(jsonValue.map((value) => ({ value })), { nil: null }),
  error: fc.option(fc.string({ maxLength: 8 }).map((message) => ({ name: 'Error', message, retryable: false })), { nil: null }),
  startedAt: date,
  finishedAt: date,
  subWorkflow: fc.constantFrom(null, fullNode('-', '-').subWorkflow),
  cacheWriteRetry: fc.constantFrom(null, { failures: 1, lastError: 'x', retryAtMs: null, final: true }),
  computeMs: fc.option(fc.maxSafeNat(), { nil: null }),
  savedMs: fc.option(fc.maxSafeNat(), { nil: null }),
  cutoffHint: fc.option(fc.record({ upstream: fc.string({ maxLength: 6 }), savedMs: fc.option(fc.maxSafeNat(), { nil: null }), entry: fc.record({ runId: fc.string({ maxLength: 6 }), nodeId: fc.string({ maxLength: 6 }) }) }), { nil: null }),
});

function assign<K extends NodeField>(target: NodeExecution, source: NodeExecution, field: K): void {
  target[field] = source[field];
}

/** A record's fields as JSON text in a fixed order (an absent cacheWriteRetry reads as null). */
function fieldsText(node: NodeExecution): string {
  return JSON.stringify(ALL_FIELDS.map((field) => node[field] ?? null));
}
