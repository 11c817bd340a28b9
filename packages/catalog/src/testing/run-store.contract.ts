import { recordInputBinding, resolveBinding, type Binding, type NodeExecution, type NodeValue, type RunRecord, type RunStore } from '@memoflow/engine';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixturePerSuite } from './fixture-per-suite.js';
import { jsonValue, sameJson } from './json-arbitrary.js';
import { describeNodeWriteContract } from './node-writes.contract.js';
import { fullNode, node, runState, spec, whole } from './run-store-fixtures.js';
import { runCancelCases } from './run-cancel.contract.js';

/** What the contract needs from one implementation. */
export interface RunStoreFixture {
  runStore: RunStore;
  /** Empties the store before each test (the contract reads `runStore` again afterwards, so a fixture may swap in a fresh instance). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** The RunStore contract (ports/run-store.ts). Every implementation runs it. */
export function describeRunStoreContract(name: string, open: () => Promise<RunStoreFixture>): void {
  describe(`RunStore contract: ${name}`, () => {
    let store: RunStore;
    fixturePerSuite(() => open(), (opened) => {
      store = opened.runStore;
    });

    it('creates a run at version 0 and loads every field back, with Dates and nested JSON', async () => {
      const state = runState('run-1', ['n1', 'n2']);
      state.run.version = 7; // ignored: a new run starts at 0
      state.nodes['n2'] = fullNode('run-1', 'n2');
      await store.create(state);
      const loaded = await store.load('run-1');
      expect(loaded).toEqual({ run: { ...state.run, version: 0 }, nodes: state.nodes });
      expect(loaded?.run.createdAt).toBeInstanceOf(Date);
      expect(loaded?.nodes['n2']?.startedAt).toBeInstanceOf(Date);
      expect(loaded?.nodes['n2']?.startedAt?.getTime()).toBe(state.nodes['n2']?.startedAt?.getTime());
      expect(loaded?.nodes['n2']?.output).toStrictEqual({ value: '123', hash: 'h' });
    });

    it('round-trips a finished run: outputs, error and finishedAt', async () => {
      const state = runState('run-done', []);
      state.run.status = 'failed';
      state.run.outputs = { total: 4, text: 'true', nothing: null, list: [{ a: [] }] };
      state.run.error = { name: 'MemoflowError', message: 'boom', code: 'RUN_FAILED', retryable: false, stack: 'at x' };
      state.run.finishedAt = new Date('2030-01-01T00:00:09.999Z');
      state.run.options = { overwriteCache: true, resumeFrom: { run: 'run-0', node: 'n1' } };
      await store.create(state);
      expect(await store.load('run-done')).toEqual({ run: { ...state.run, version: 0 }, nodes: {} });
    });

    it('loads nothing for an unknown run', async () => {
      expect(await store.load('missing')).toBeUndefined();
      expect(await store.status('missing')).toBeUndefined();
    });

    it('reads a run status alone, as saves change it', async () => {
      const state = runState('run-status', ['n1']);
      await store.create(state);
      expect(await store.status('run-status')).toBe('running');
      const finished = { ...state.run, status: 'succeeded' as const, outputs: { ok: true }, finishedAt: new Date('2030-01-01T00:00:05.000Z') };
      expect(await store.save({ run: finished, nodes: [], expectedVersion: 0 })).toBe(true);
      expect(await store.status('run-status')).toBe('succeeded');
    });

    it('refuses to create a run whose id exists, and keeps the stored one', async () => {
      const state = runState('dup', ['n1']);
      await store.create(state);
      const again = runState('dup', ['other']);
      again.run.workflow = 'another';
      await expect(store.create(again)).rejects.toMatchObject({ code: 'CATALOG_ERROR' });
      const loaded = await store.load('dup');
      expect(loaded?.run.workflow).toBe('etl.main');
      expect(Object.keys(loaded?.nodes ?? {})).toEqual(['n1']);
    });

    it('saves with the right version: writes the run and the given nodes, bumps the version', async () => {
      const state = runState('run-s', ['n1', 'n2', 'n3']);
      await store.create(state);
      const run: RunRecord = { ...state.run, status: 'succeeded', outputs: { total: 4 }, updatedAt: new Date('2030-01-01T00:01:00.000Z'), finishedAt: new Date('2030-01-01T00:01:00.500Z') };
      const n1 = fullNode('run-s', 'n1');
      const n9 = { ...node('run-s', 'n9'), phase: 'dispatched' as const, attempts: 1 };
      expect(await store.save({ run, nodes: whole(n1, n9), expectedVersion: 0 })).toBe(true);
      const loaded = await store.load('run-s');
      expect(loaded?.run).toEqual({ ...run, version: 1 });
      expect(loaded?.nodes).toEqual({ n1, n2: state.nodes['n2'], n3: state.nodes['n3'], n9 });
      // and again from version 1
      const n2 = { ...node('run-s', 'n2'), phase: 'aborted' as const };
      expect(await store.save({ run: { ...run, status: 'failed' }, nodes: whole(n2), expectedVersion: 1 })).toBe(true);
      const reloaded = await store.load('run-s');
      expect(reloaded?.run.version).toBe(2);
      expect(reloaded?.run.status).toBe('failed');
      expect(reloaded?.nodes['n2']?.phase).toBe('aborted');
      expect(reloaded?.nodes['n1']).toEqual(n1);
    });

    it('saves with zero changed nodes', async () => {
      await store.create(runState('run-z', ['n1']));
      const loaded = await store.load('run-z');
      if (loaded === undefined) throw new Error('not created');
      expect(await store.save({ run: { ...loaded.run, status: 'succeeded' }, nodes: [], expectedVersion: 0 })).toBe(true);
      const saved = await store.load('run-z');
      expect(saved?.run.version).toBe(1);
      expect(saved?.run.status).toBe('succeeded');
      expect(saved?.nodes).toEqual(loaded.nodes);
    });

    it('saves only the changing fields: spec, inputs, options, workflow, project, domain and createdAt stay as created', async () => {
      const state = runState('run-fixed', ['n1']);
      await store.create(state);
      const modified: RunRecord = {
        ...state.run,
        workflow: 'changed.workflow',
        project: 'changed-project',
        domain: 'changed-domain',
        spec: { ...spec(), name: 'changed.workflow', nodes: [] },
        inputs: { rows: { value: ['changed'] } },
        options: { overwriteCache: true },
        createdAt: new Date('2031-06-06T06:06:06.606Z'),
        status: 'succeeded',
        outputs: { total: 4 },
        error: { name: 'Error', message: 'kept', retryable: false },
        updatedAt: new Date('2030-01-01T00:05:00.000Z'),
        finishedAt: new Date('2030-01-01T00:05:00.500Z'),
      };
      expect(await store.save({ run: modified, nodes: [], expectedVersion: 0 })).toBe(true);
      const loaded = await store.load('run-fixed');
      expect(loaded?.run).toEqual({
        ...state.run,
        status: 'succeeded',
        outputs: { total: 4 },
        error: { name: 'Error', message: 'kept', retryable: false },
        updatedAt: modified.updatedAt,
        finishedAt: modified.finishedAt,
        version: 1,
      });
      expect(loaded?.run.spec).toEqual(spec());
      expect((await store.list())[0]).toMatchObject({ workflow: 'etl.main', project: 'demo', domain: 'dev', createdAt: state.run.createdAt });
    });

    it('round-trips object key order exactly: run inputs, outputs, spec, options, error and node inputs/outputs', async () => {
      // jsonb would sort these keys (shorter first, then bytewise); the stores must not.
      const state = runState('run-order', ['n1', 'n2']);
      state.run.inputs = { zeta: { value: { yy: 1, b: [{ z: 1, a: 2 }] } }, alpha: { value: [{ k: 1, c: 2 }], hash: 'h' } };
      state.run.spec = { ...spec(), outputs: { zz: { kind: 'output', node: 'n1', path: [] }, aa: { kind: 'output', node: 'n2', path: [] } } };
      state.run.options = { resumeFrom: { run: 'run-0', node: 'n1' }, overwriteCache: false };
      state.nodes['n1'] = {
        ...fullNode('run-order', 'n1'),
        inputs: { zz: { value: { rmse: 0.1, r2: 0.9, n: 3 } }, aa: { value: [{ y: null, x: { q: 1, p: 2 } }] } },
        output: { value: { rmse: 0.12, r2: 0.98, n: 1000, nested: [{ zz: 1, a: 2 }] }, hash: 'h' },
        cacheKeyParts: { format: 1, project: 'demo', domain: 'dev', task: 'etl.clean', signature: 's', version: '1', inputs: { zz: 'sha256:z', aa: 'sha256:a' } },
      };
      await store.create(state);
      const created = await store.load('run-order');
      expect(JSON.stringify(created?.run)).toBe(JSON.stringify({ ...state.run, version: 0 }));
      expect(JSON.stringify(created?.nodes['n1'])).toBe(JSON.stringify(state.nodes['n1']));

      const run: RunRecord = {
        ...state.run,
        status: 'failed',
        outputs: { zz: { rmse: 0.12, r2: 0.98, n: 1000 }, aa: [{ d: 1, c: 2 }] },
        error: { name: 'Error', message: 'boom', retryable: false, code: 'RUN_FAILED' },
        updatedAt: new Date('2030-01-01T00:01:00.000Z'),
      };
      const n2 = {
        ...fullNode('run-order', 'n2'),
        inputs: { second: { value: { b: 1, a: 2 } }, first: { value: null } },
        output: { value: [{ zebra: 1, ant: 2 }, { m: { z: 0, a: 1 } }] },
        error: { retryable: true, name: 'Error', message: 'first try' },
      };
      expect(await store.save({ run, nodes: whole(n2), expectedVersion: 0 })).toBe(true);
      const saved = await store.load('run-order');
      expect(JSON.stringify(saved?.run)).toBe(JSON.stringify({ ...run, version: 1 }));
      expect(JSON.stringify(saved?.nodes['n2'])).toBe(JSON.stringify(n2));
      expect(JSON.stringify(saved?.nodes['n1'])).toBe(JSON.stringify(state.nodes['n1']));
      expect(JSON.stringify((await store.list())[0]?.options)).toBe(JSON.stringify(state.run.options));
    });

    it('with a stale version returns false and writes nothing', async () => {
      const state = runState('run-stale', ['n1']);
      await store.create(state);
      expect(await store.save({ run: state.run, nodes: [], expectedVersion: 0 })).toBe(true);
      const before = await store.load('run-stale');
      const changed = { ...state.run, status: 'failed' as const, workflow: 'changed' };
      expect(await store.save({ run: changed, nodes: whole(fullNode('run-stale', 'n1'), node('run-stale', 'new')), expectedVersion: 0 })).toBe(false);
      expect(await store.save({ run: changed, nodes: [], expectedVersion: 5 })).toBe(false);
      expect(await store.load('run-stale')).toEqual(before);
    });

    it('rejects a save holding a string the stores refuse (U+0000, lone surrogate), and writes nothing', async () => {
      const state = runState('run-nul', ['n1']);
      await store.create(state);
      const bad = { ...node('run-nul', 'n1'), output: { value: 'nul \u0000' } };
      await expect(store.save({ run: { ...state.run, status: 'failed' }, nodes: whole(bad), expectedVersion: 0 })).rejects.toThrow();
      const loaded = await store.load('run-nul');
      expect(loaded).toEqual({ run: { ...state.run, version: 0 }, nodes: state.nodes });
      await expect(store.create(runState('run-nul-2', []))).resolves.toBeUndefined();
      const badRun = runState('run-nul-3', ['n1']);
      badRun.run.inputs['x'] = { value: 'lone \udc00' };
      await expect(store.create(badRun)).rejects.toThrow();
      expect(await store.load('run-nul-3')).toBeUndefined();
    });

    it('a create refused for the value of its last node creates nothing: not the run, not its other nodes', async () => {
      const state = runState('run-bad-last', ['n1', 'n2', 'n3', 'n4', 'n5']);
      state.nodes['n5'] = { ...node('run-bad-last', 'n5'), output: { value: 'nul \u0000' } };
      await expect(store.create(state)).rejects.toThrow();
      expect(await store.load('run-bad-last')).toBeUndefined();
      await expect(store.create(runState('run-bad-last', ['n1']))).resolves.toBeUndefined(); // the id is free
    });

    it('returns false when saving a run that does not exist', async () => {
      const state = runState('ghost', ['n1']);
      expect(await store.save({ run: state.run, nodes: whole(node('ghost', 'n1')), expectedVersion: 0 })).toBe(false);
      expect(await store.load('ghost')).toBeUndefined();
    });

    it('lets exactly one of several racing saves with the same expected version win', async () => {
      const state = runState('race', ['n1']);
      await store.create(state);
      const contenders = Array.from({ length: 8 }, (_, i) => ({
        run: { ...state.run, outputs: { winner: `winner-${i}` } },
        nodes: whole({ ...node('race', 'n1'), attempts: i + 1 }, node('race', `only-${i}`)),
        expectedVersion: 0,
      }));
      const results = await Promise.all(contenders.map((request) => store.save(request)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      const loaded = await store.load('race');
      expect(loaded?.run.version).toBe(1);
      expect(loaded?.run.outputs).toEqual({ winner: `winner-${winner}` });
      expect(loaded?.nodes['n1']?.attempts).toBe(winner + 1);
      expect(Object.keys(loaded?.nodes ?? {}).sort()).toEqual(['n1', `only-${winner}`]);
    });

    it('keeps a failed cache write being retried with its node, and clears it', async () => {
      const state = runState('run-retry', ['n1']);
      await store.create(state);
      const retrying: NodeExecution = {
        ...fullNode('run-retry', 'n1'),
        phase: 'writing',
        cacheWriteRetry: { failures: 2, lastError: 'connection reset', retryAtMs: 1_900_000_000_123, final: false },
      };
      expect(await store.save({ run: state.run, nodes: whole(retrying), expectedVersion: 0 })).toBe(true);
      expect((await store.load('run-retry'))?.nodes['n1']?.cacheWriteRetry).toEqual(retrying.cacheWriteRetry);
      const inFlight = { ...retrying, cacheWriteRetry: { ...retrying.cacheWriteRetry, retryAtMs: null, final: true } } as NodeExecution;
      expect(await store.save({ run: state.run, nodes: whole(inFlight), expectedVersion: 1 })).toBe(true);
      expect((await store.load('run-retry'))?.nodes['n1']?.cacheWriteRetry).toEqual({ failures: 2, lastError: 'connection reset', retryAtMs: null, final: true });
      const landed: NodeExecution = { ...retrying, phase: 'succeeded', cacheWriteRetry: null };
      expect(await store.save({ run: state.run, nodes: whole(landed), expectedVersion: 2 })).toBe(true);
      expect((await store.load('run-retry'))?.nodes['n1']?.cacheWriteRetry ?? null).toBeNull();
    });

    it('round-trips arbitrary JSON values as run inputs and outputs, node inputs and outputs (property, batched)', async () => {
      let runsMade = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(jsonValue, { minLength: 1, maxLength: 20 }), async (values) => {
          const id = `prop-run-${runsMade++}`;
          const state = runState(id, values.map((_, i) => `n${i}`));
          state.run.inputs = Object.fromEntries(values.map((value, i) => [`in${i}`, i % 2 === 0 ? { value } : { value, hash: `h${i}` }]));
          await store.create(state);
          const nodes = values.map((value, i): NodeExecution => ({ ...fullNode(id, `n${i}`), inputs: { x: { value } }, output: { value } }));
          const outputs = Object.fromEntries(values.map((value, i) => [`out${i}`, value]));
          expect(await store.save({ run: { ...state.run, status: 'succeeded', outputs }, nodes: whole(...nodes), expectedVersion: 0 })).toBe(true);
          const loaded = await store.load(id);
          if (!sameJson(loaded?.run.inputs, state.run.inputs)) throw new Error(`run inputs came back as ${JSON.stringify(loaded?.run.inputs)}`);
          if (!sameJson(loaded?.run.outputs, outputs)) throw new Error(`run outputs came back as ${JSON.stringify(loaded?.run.outputs)}`);
          values.forEach((value, i) => {
            const n = loaded?.nodes[`n${i}`];
            if (!sameJson(n?.output, { value }) || !sameJson(n?.inputs, { x: { value } })) throw new Error(`node n${i} came back as ${JSON.stringify(n)}`);
          });
        }),
        { numRuns: PROPERTY_RUNS },
      );
      expect(runsMade).toBe(PROPERTY_RUNS);
    });

    it('loads an input resolved from other nodes\' outputs (whole, a field, a fan-in) equal to what was resolved, hash and hashed members included (property)', async () => {
      let runsMade = 0;
      await fc.assert(
        fc.asyncProperty(fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), jsonValue, { minKeys: 1, maxKeys: 4 }), fc.boolean(), fc.boolean(), async (fields, hashed, oneSave) => {
          const id = `ref-run-${runsMade++}`;
          const state = runState(id, ['producer', 'whole', 'field']);
          await store.create(state);
          const output: NodeValue = hashed ? { value: fields, hash: 'h-producer' } : { value: fields, members: { object: Object.fromEntries(Object.keys(fields).map((k) => [k, `h-${k}`])) } };
          const producer: NodeExecution = { ...fullNode(id, 'producer'), output };
          const after = { run: state.run, nodes: { ...state.nodes, producer } };
          const field = Object.keys(fields)[0] ?? '';
          // As the engine resolves a node's inputs: the value, with the binding recorded beside it.
          const resolve = (binding: Binding) => recordInputBinding(resolveBinding(binding, after), binding);
          const resolvedWhole = resolve({ kind: 'output', node: 'producer' });
          const resolvedField = resolve({ kind: 'output', node: 'producer', path: [field] });
          const fanIn = resolve({ kind: 'array', items: [{ kind: 'output', node: 'producer', path: [field] }, { kind: 'literal', value: 'between' }, { kind: 'object', fields: { all: { kind: 'output', node: 'producer' } } }] });
          const consumers = [
            { ...fullNode(id, 'whole'), inputs: { all: resolvedWhole, literal: resolve({ kind: 'literal', value: 'kept as is' }) } },
            { ...fullNode(id, 'field'), inputs: { one: resolvedField, fanIn } },
          ];
          if (oneSave) {
            expect(await store.save({ run: state.run, nodes: whole(producer, ...consumers), expectedVersion: 0 })).toBe(true);
          } else {
            expect(await store.save({ run: state.run, nodes: whole(producer), expectedVersion: 0 })).toBe(true);
            expect(await store.save({ run: state.run, nodes: whole(...consumers), expectedVersion: 1 })).toBe(true);
          }
          const loaded = await store.load(id);
          if (!sameJson(loaded?.nodes['whole']?.inputs, { all: resolvedWhole, literal: { value: 'kept as is' } })) throw new Error(`whole came back as ${JSON.stringify(loaded?.nodes['whole']?.inputs)}`);
          if (!sameJson(loaded?.nodes['field']?.inputs, { one: resolvedField, fanIn })) throw new Error(`field came back as ${JSON.stringify(loaded?.nodes['field']?.inputs)}`);
          // Loaded once more and saved again (a new round's load): still equal.
          const reloaded = await store.load(id);
          if (reloaded === undefined) throw new Error('run vanished');
          expect(await store.save({ run: reloaded.run, nodes: whole(...Object.values(reloaded.nodes)), expectedVersion: reloaded.run.version })).toBe(true);
          if (!sameJson((await store.load(id))?.nodes['field']?.inputs, { one: resolvedField, fanIn })) throw new Error('field changed after a reload and a save');
        }),
        { numRuns: PROPERTY_RUNS },
      );
      expect(runsMade).toBe(PROPERTY_RUNS);
    });

    it('copies records in and out: callers cannot change what is stored', async () => {
      const state = runState('run-copy', ['n1']);
      await store.create(state);
      state.run.inputs['rows'] = { value: 'mutated' };
      const n1 = state.nodes['n1'];
      if (n1 !== undefined) n1.attempts = 99;
      state.run.createdAt.setTime(0);
      const loaded = await store.load('run-copy');
      expect(loaded?.run.inputs['rows']).toEqual({ value: [1, -2, 3] });
      expect(loaded?.nodes['n1']?.attempts).toBe(0);
      expect(loaded?.run.createdAt.getTime()).not.toBe(0);
      loaded?.run.spec.nodes.pop();
      expect((await store.load('run-copy'))?.run.spec.nodes).toHaveLength(1);
    });

    it('lists summaries newest first, filtered by workflow and status, with a limit', async () => {
      const at = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s));
      const specs: [string, string, RunRecord['status'], Date][] = [
        ['r-a', 'etl.main', 'running', at(1)],
        ['r-b', 'etl.main', 'succeeded', at(3)],
        ['r-c', 'etl.other', 'failed', at(2)],
        ['r-d', 'etl.main', 'succeeded', at(3)],
      ];
      for (const [id, workflow, status, createdAt] of specs) {
        const state = runState(id, ['n1']);
        await store.create({ ...state, run: { ...state.run, workflow, status, createdAt } });
      }
      const all = await store.list();
      expect(all.map((r) => r.id)).toEqual(['r-d', 'r-b', 'r-c', 'r-a']);
      for (const summary of all) {
        expect(summary).not.toHaveProperty('spec');
        expect(summary).not.toHaveProperty('inputs');
        expect(summary).not.toHaveProperty('outputs');
      }
      const { spec: _spec, inputs: _inputs, outputs: _outputs, ...summary } = runState('r-c', []).run;
      expect(all[2]).toEqual({ ...summary, workflow: 'etl.other', status: 'failed', createdAt: at(2) });
      expect((await store.list({ workflow: 'etl.main' })).map((r) => r.id)).toEqual(['r-d', 'r-b', 'r-a']);
      expect((await store.list({ status: 'succeeded' })).map((r) => r.id)).toEqual(['r-d', 'r-b']);
      expect((await store.list({ workflow: 'etl.main', status: 'running' })).map((r) => r.id)).toEqual(['r-a']);
      expect((await store.list({ limit: 2 })).map((r) => r.id)).toEqual(['r-d', 'r-b']);
      expect(await store.list({ workflow: 'none' })).toEqual([]);
    });

    it('creates, saves and loads a run of 1,000 nodes', async () => {
      const ids = Array.from({ length: 1000 }, (_, i) => `node-${i}`);
      const state = runState('big', ids);
      await store.create(state);
      const changed = ids.map((id) => ({ ...fullNode('big', id), output: { value: { id, payload: 'y'.repeat(100) } } }));
      expect(await store.save({ run: state.run, nodes: whole(...changed), expectedVersion: 0 })).toBe(true);
      const loaded = await store.load('big');
      expect(Object.keys(loaded?.nodes ?? {})).toHaveLength(1000);
      expect(loaded?.nodes['node-999']).toEqual(changed[999]);
      expect(loaded?.run.version).toBe(1);
    });

    runCancelCases(() => store);

    describeNodeWriteContract(() => store);
  });
}

/** Runs per property test and implementation (each of up to 20 values): a few seconds in CI. */
const PROPERTY_RUNS = 30;
