import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { WorkflowSpec } from '@memoflow/engine';
import { openPostgresStorage } from './postgres-storage.js';
import type { Storage } from './storage.js';
import { testSchema, type TestSchema } from './testing/postgres-schema.js';
import { runState, spec } from './testing/run-store-fixtures.js';

// Each spec is stored once (workflow_specs): runs name it by digest. On the real server: what is
// counted here is rows, and the concurrent creates race in Postgres, not in a fake.

describe('workflow specs stored once', () => {
  let schema: TestSchema;
  let first: Storage;
  let second: Storage;

  beforeAll(async () => {
    schema = testSchema();
    first = await openPostgresStorage({ url: schema.url, schema: schema.name, max: 4 });
    second = await openPostgresStorage({ url: schema.url, schema: schema.name, max: 4 });
  });
  afterAll(async () => {
    await first.close();
    await second.close();
    await schema.drop();
  });

  const specRows = async () => (await schema.admin<{ n: number }[]>`SELECT count(*)::int AS n FROM workflow_specs`)[0]?.n;
  const withSpec = (id: string, s: WorkflowSpec) => {
    const state = runState(id, ['n1']);
    state.run.spec = s;
    return state;
  };

  it('runs of one spec share one row, from one store or two, and each loads the spec exactly', async () => {
    const s = { ...spec(), name: 'shared' };
    const before = await specRows();
    await first.runStore.create(withSpec('shared-1', s));
    await first.runStore.create(withSpec('shared-2', s));
    await second.runStore.create(withSpec('shared-3', s));
    expect(await specRows()).toBe((before ?? 0) + 1);
    for (const id of ['shared-1', 'shared-2', 'shared-3']) {
      expect(JSON.stringify((await second.runStore.load(id))?.run.spec)).toBe(JSON.stringify(s));
    }
    const [row] = await schema.admin<{ inline: number; named: number }[]>`
      SELECT count(*) FILTER (WHERE spec IS NOT NULL)::int AS inline, count(spec_digest)::int AS named FROM runs WHERE id LIKE 'shared-%'`;
    expect(row).toEqual({ inline: 0, named: 3 });
  });

  it('a spec with the same content in another key order is another row, and each run gets its own order back', async () => {
    const s = spec();
    const reordered: WorkflowSpec = { outputs: s.outputs, nodes: s.nodes, hashedInputs: s.hashedInputs, inputs: s.inputs, name: s.name, specVersion: s.specVersion };
    await first.runStore.create(withSpec('order-a', s));
    await first.runStore.create(withSpec('order-b', reordered));
    expect(JSON.stringify((await first.runStore.load('order-a'))?.run.spec)).toBe(JSON.stringify(s));
    expect(JSON.stringify((await first.runStore.load('order-b'))?.run.spec)).toBe(JSON.stringify(reordered));
  });

  it('a store that remembers a spec row which is gone sends the text again, and the run loads', async () => {
    const s = { ...spec(), name: 'vanishing' };
    await first.runStore.create(withSpec('gone-1', s));
    // Rows are never deleted by memoflow; an operator's cleanup is what this guards against.
    await schema.admin`DELETE FROM workflow_specs WHERE spec->>'name' = 'vanishing'`;
    await first.runStore.create(withSpec('gone-2', s));
    expect(JSON.stringify((await first.runStore.load('gone-2'))?.run.spec)).toBe(JSON.stringify(s));
    // The run created before the cleanup names the digest the second create stored again.
    expect((await first.runStore.load('gone-1'))?.run.spec).toEqual(s);
  });

  it('a run whose spec row is missing fails to load with RUN_STORE_CORRUPT naming the run, and nothing is invented', async () => {
    await first.runStore.create(withSpec('orphaned', { ...spec(), name: 'orphaned-spec' }));
    await schema.admin`DELETE FROM workflow_specs WHERE spec->>'name' = 'orphaned-spec'`;
    await expect(first.runStore.load('orphaned')).rejects.toMatchObject({ code: 'RUN_STORE_CORRUPT', message: expect.stringContaining("run 'orphaned' names spec") });
  });

  it('a run row of the previous release (spec inline, no digest) loads its own spec', async () => {
    const s = { ...spec(), name: 'inline' };
    await first.runStore.create(withSpec('inline-run', s));
    // As that release wrote it: the text in the row itself (copied from the spec row, so byte for byte).
    await schema.admin`UPDATE runs SET spec = (SELECT ws.spec FROM workflow_specs ws WHERE ws.digest = runs.spec_digest), spec_digest = NULL WHERE id = 'inline-run'`;
    await schema.admin`DELETE FROM workflow_specs WHERE spec->>'name' = 'inline'`;
    expect(JSON.stringify((await second.runStore.load('inline-run'))?.run.spec)).toBe(JSON.stringify(s));
  });

  it('a failed create (the id exists) leaves the spec unremembered only if it was not stored, and a later create still works', async () => {
    const s = { ...spec(), name: 'duplicate-id' };
    await first.runStore.create(withSpec('dup', s));
    await expect(second.runStore.create(withSpec('dup', { ...s, name: 'other-spec' }))).rejects.toMatchObject({ code: 'CATALOG_ERROR', message: "run 'dup' already exists" });
    // The failed statement stored nothing: not the run, not its spec.
    expect((await schema.admin<{ n: number }[]>`SELECT count(*)::int AS n FROM workflow_specs WHERE spec->>'name' = 'other-spec'`)[0]?.n).toBe(0);
    await second.runStore.create(withSpec('dup-2', { ...s, name: 'other-spec' }));
    expect((await second.runStore.load('dup-2'))?.run.spec.name).toBe('other-spec');
  });

  it('concurrent creates of runs of new specs, from two stores: every run loads its own spec, one row per distinct spec', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 2, maxLength: 12 }), async (choices) => {
        const round = Math.random().toString(36).slice(2);
        const specs = [0, 1, 2, 3].map((i) => ({ ...spec(), name: `race-${round}-${i}` }));
        const ids = choices.map((_, i) => `race-${round}-run-${i}`);
        await Promise.all(choices.map((choice, i) => ((i % 2 === 0 ? first : second).runStore.create(withSpec(ids[i] ?? '', specs[choice] ?? spec())))));
        for (const [i, choice] of choices.entries()) {
          expect((await first.runStore.load(ids[i] ?? ''))?.run.spec).toEqual(specs[choice]);
        }
        const names = await schema.admin<{ name: string }[]>`SELECT spec->>'name' AS name FROM workflow_specs WHERE spec->>'name' LIKE ${`race-${round}-%`}`;
        expect(names.map((n) => n.name).sort()).toEqual([...new Set(choices)].map((c) => specs[c]?.name).sort());
      }),
      { numRuns: 25 },
    );
  });
});
