import { afterEach, describe, expect, test } from 'vitest';
import { hashJson } from '../cache/canonical-hash.js';
import { MemoflowError } from '../errors.js';
import type { Json, NodeValue } from '../json.js';
import type { WorkflowSpec } from '../spec/workflow-spec.js';
import type { RunState } from '../state/run-state.js';
import { arr, dynamicNode, lit, ref, subworkflowNode, taskNode, wfInput, workflowSpec } from '../testing/spec-builders.js';
import { WorkflowPlanner } from './planner.js';
import { PlanWorld } from './testing/plan-world.js';
import type { WorkflowPlan } from './workflow-plan.js';

const HASHED = new Set(['h']);
const tasks = {
  a: (inputs: { [name: string]: Json }) => ({ from: 'a', inputs }),
  b: (inputs: { [name: string]: Json }) => ({ from: 'b', inputs }),
  c: (inputs: { [name: string]: Json }) => ({ from: 'c', inputs }),
  // Content-hashed: its output (and so its hash) depends only on the parity of `n`.
  h: (inputs: { [name: string]: Json }) => ({ parity: Number(inputs['n']) % 2 }),
  // A dynamic body: one child per item of `xs`, the result is the array of their outputs.
  fan: (inputs: { [name: string]: Json }) =>
    workflowSpec('fan.body', (inputs['xs'] as number[]).map((x, i) => taskNode(`c${i}`, 'c', { x: lit(x) })), { outputs: { result: arr(...(inputs['xs'] as number[]).map((_, i) => ref(`c${i}`))) } }) as unknown as Json,
};

let world: PlanWorld;
afterEach(async () => world.close());

function newWorld(): PlanWorld {
  world = new PlanWorld(tasks, (output, attempt) => (HASHED.has(attempt.task) ? hashJson(output) : null));
  return world;
}

const value = (v: Json): NodeValue => ({ value: v });

function predictions(plan: WorkflowPlan): { [node: string]: string } {
  return Object.fromEntries(plan.nodes.map((n) => [n.node, n.prediction === 'SKIPPED' ? `SKIPPED(${n.skipReason ?? ''})` : n.prediction]));
}

function statuses(state: RunState): { [node: string]: string } {
  return Object.fromEntries(Object.values(state.nodes).map((n) => [n.nodeId, n.cacheStatus === 'SKIPPED' ? `SKIPPED(${n.cacheReason ?? ''})` : String(n.cacheStatus)]));
}

/** a(x) -> b -> c, and d(y) on its own. */
const chain = workflowSpec('t.chain', [taskNode('a', 'a', { x: wfInput('x') }), taskNode('b', 'b', { v: ref('a') }), taskNode('c', 'c', { v: ref('b') }), taskNode('d', 'a', { y: wfInput('y') })], {
  inputs: { x: true, y: true },
  outputs: { c: ref('c') },
});

describe('plan', () => {
  test('a fresh cache: roots MISS, their downstream SKIPPED naming the upstream, in one lookup', async () => {
    const w = newWorld();
    const plan = await w.plan(chain, { x: value(1), y: value(2) });
    expect(predictions(plan)).toEqual({ a: 'MISS', b: 'SKIPPED(upstream-reran)', c: 'SKIPPED(upstream-reran)', d: 'MISS' });
    expect(plan.nodes.find((n) => n.node === 'c')).toMatchObject({ upstream: 'b', key: null, reason: expect.stringContaining("upstream 'b' runs (SKIPPED)") });
    expect(plan.nodes.find((n) => n.node === 'a')?.key).toMatch(/^[0-9a-f]{64}$/);
    expect(plan.lookups).toEqual({ batches: 1, queries: 1, keys: 2 });
    expect(w.planCalls).toEqual(['lookup:output:2']);
  });

  test('after a run everything HITs, one batch per level, naming the entry that serves it', async () => {
    const w = newWorld();
    const first = await w.run(chain, { x: value(1), y: value(2) });
    const plan = await w.plan(chain, { x: value(1), y: value(2) });
    expect(predictions(plan)).toEqual({ a: 'HIT', b: 'HIT', c: 'HIT', d: 'HIT' });
    expect(plan.lookups).toEqual({ batches: 3, queries: 3, keys: 4 });
    expect(w.planCalls).toEqual(['lookup:output:2', 'lookup:output:1', 'lookup:output:1']);
    const c = plan.nodes.find((n) => n.node === 'c');
    expect(c).toMatchObject({ entry: { runId: first.run.id, nodeId: 'c' }, level: 2, key: first.nodes['c']?.cacheKey });
    expect(c?.reason).toContain(`entry written by run ${first.run.id} at`);
  });

  test('a changed input: its node MISSes, its downstream is SKIPPED, the rest HITs; the run agrees', async () => {
    const w = newWorld();
    await w.run(chain, { x: value(1), y: value(2) });
    const plan = await w.plan(chain, { x: value(5), y: value(2) });
    expect(predictions(plan)).toEqual({ a: 'MISS', b: 'SKIPPED(upstream-reran)', c: 'SKIPPED(upstream-reran)', d: 'HIT' });
    const run = await w.run(chain, { x: value(5), y: value(2) });
    expect(statuses(run)).toEqual({ a: 'POPULATED', b: 'SKIPPED(upstream-reran)', c: 'SKIPPED(upstream-reran)', d: 'HIT' });
  });

  test('planning reads only: no run, no dispatch, no write, no reservation', async () => {
    const w = newWorld();
    await w.run(chain, { x: value(1), y: value(2) });
    const executed = w.dispatcher.executed.length;
    const entries = await w.catalog.list();
    const runs = await w.runStore.list();
    await w.plan(chain, { x: value(7), y: value(2) }, { overwriteCache: false });
    await w.plan(chain, { x: value(1), y: value(2) }, { overwriteCache: true });
    expect(w.dispatcher.executed.length).toBe(executed);
    expect(await w.catalog.list()).toEqual(entries);
    expect(await w.runStore.list()).toEqual(runs);
  });

  test('overwriteCache: every cached node SKIPPED(overwrite), caching-off ones DISABLED, no lookup', async () => {
    const w = newWorld();
    const spec = workflowSpec('t.ow', [taskNode('a', 'a', { x: wfInput('x') }), taskNode('b', 'b', { v: ref('a') }, { cache: null })], { inputs: { x: true } });
    await w.run(spec, { x: value(1) });
    const plan = await w.plan(spec, { x: value(1) }, { overwriteCache: true });
    expect(predictions(plan)).toEqual({ a: 'SKIPPED(overwrite)', b: 'DISABLED' });
    expect(plan.nodes[0]?.key).toMatch(/^[0-9a-f]{64}$/); // its inputs are known: so is its key
    expect(w.planCalls).toEqual([]);
  });

  test('a content-hashed upstream that runs: its reader is UNKNOWN (may hit), and so is what waits on it', async () => {
    const w = newWorld();
    const spec = workflowSpec('t.hash', [taskNode('h', 'h', { n: wfInput('n') }, { outputHashed: true }), taskNode('r', 'a', { v: ref('h') }), taskNode('s', 'b', { v: ref('r') })], { inputs: { n: true } });
    await w.run(spec, { n: value(1) });
    const plan = await w.plan(spec, { n: value(3) });
    expect(predictions(plan)).toEqual({ h: 'MISS', r: 'UNKNOWN', s: 'UNKNOWN' });
    expect(plan.nodes[1]).toMatchObject({ upstream: 'h', key: null, level: null, reason: expect.stringContaining("output of 'h', which runs first and is content-hashed") });
    expect(plan.nodes[2]?.reason).toBe("waits on 'r', which is UNKNOWN");
    // 3 has the parity of 1: the same hash, so the run hits where the plan could not know.
    const run = await w.run(spec, { n: value(3) });
    expect(statuses(run)).toEqual({ h: 'POPULATED', r: 'HIT', s: 'HIT' });
  });

  test('a reader fed by a content-hashed upstream and by one that reruns plainly is SKIPPED, not UNKNOWN', async () => {
    const w = newWorld();
    const spec = workflowSpec('t.mixed', [taskNode('h', 'h', { n: wfInput('n') }, { outputHashed: true }), taskNode('p', 'a', { n: wfInput('n') }), taskNode('r', 'b', { u: ref('h'), v: ref('p') })], { inputs: { n: true } });
    const plan = await w.plan(spec, { n: value(3) });
    expect(predictions(plan)).toEqual({ h: 'MISS', p: 'MISS', r: 'SKIPPED(upstream-reran)' });
    expect(plan.nodes[2]?.upstream).toBe('p');
  });

  test("an ignored input's upstream does not make the key unknown", async () => {
    const w = newWorld();
    const spec = workflowSpec('t.ignored', [taskNode('h', 'h', { n: wfInput('n') }, { outputHashed: true }), taskNode('r', 'a', { v: ref('h'), k: lit(1) }, { cache: { ignoreInputs: ['v'] } })], { inputs: { n: true } });
    await w.run(spec, { n: value(1) });
    const plan = await w.plan(spec, { n: value(2) });
    expect(predictions(plan)).toEqual({ h: 'MISS', r: 'HIT' });
    expect(statuses(await w.run(spec, { n: value(2) }))).toEqual({ h: 'POPULATED', r: 'HIT' });
  });

  test("another workflow's node of the same task, with the same inputs, serves it: the plan names that node", async () => {
    const w = newWorld();
    const writer = await w.run(workflowSpec('t.writer', [taskNode('produce', 'a', { x: lit(1) })]), {});
    const plan = await w.plan(workflowSpec('t.reader', [taskNode('consume', 'a', { x: lit(1) })]), {});
    expect(plan.nodes[0]).toMatchObject({ prediction: 'HIT', entry: { runId: writer.run.id, nodeId: 'produce' }, reason: expect.stringMatching(new RegExp(`^entry written by run ${writer.run.id} \\(node produce\\) at `)) });
  });

  test('an entry past its TTL is EVICTED, naming when it was written', async () => {
    const w = newWorld();
    const spec = workflowSpec('t.ttl', [taskNode('a', 'a', { x: lit(1) }, { cache: { ttlMs: 60_000 } }), taskNode('b', 'b', { x: lit(2) })]);
    const first = await w.run(spec, {});
    w.clock.advance(60_000);
    const plan = await w.plan(spec, {});
    expect(predictions(plan)).toEqual({ a: 'EVICTED', b: 'HIT' });
    expect(plan.nodes[0]?.reason).toMatch(new RegExp(`^entry written by run ${first.run.id} at 2026-01-01T00:00:00.000Z is past its ttl \\(60000 ms\\)`));
    expect(statuses(await w.run(spec, {}))).toEqual({ a: 'POPULATED', b: 'HIT' });
  });

  test('a dynamic node whose future is in the catalog: FUTURE_HIT, its children planned under it; outputs and futures share a batch as two queries', async () => {
    const w = newWorld();
    const spec = workflowSpec('t.dyn', [dynamicNode('f', 'fan', { xs: wfInput('xs') }), taskNode('after', 'b', { v: ref('f') })], { inputs: { xs: true } });
    await w.run(spec, { xs: value([1, 2]) });
    await w.catalog.evict({ task: 'fan', kind: 'output' });
    const plan = await w.plan(spec, { xs: value([1, 2]) });
    expect(predictions(plan)).toEqual({ f: 'FUTURE_HIT', 'f.c0': 'HIT', 'f.c1': 'HIT', after: 'HIT' });
    expect(plan.nodes.filter((n) => n.parent === 'f').map((n) => n.node)).toEqual(['f.c0', 'f.c1']);
    expect(w.planCalls).toEqual(['lookup:output:1', 'lookup:future:1', 'lookup:output:2', 'lookup:output:1']);
    expect(plan.lookups).toEqual({ batches: 3, queries: 4, keys: 5 });
    const run = await w.run(spec, { xs: value([1, 2]) });
    expect(statuses(run)).toEqual({ f: 'FUTURE_HIT', 'f.c0': 'HIT', 'f.c1': 'HIT', after: 'HIT' });
  });

  test('a dynamic node whose body runs: MISS, its children unknown, its reader UNKNOWN', async () => {
    const w = newWorld();
    const spec = workflowSpec('t.dyn2', [dynamicNode('f', 'fan', { xs: wfInput('xs') }), taskNode('after', 'b', { v: ref('f') })], { inputs: { xs: true } });
    const plan = await w.plan(spec, { xs: value([1]) });
    expect(predictions(plan)).toEqual({ f: 'MISS', after: 'UNKNOWN' });
    expect(plan.nodes[0]?.reason).toContain('its body runs, and its children are not known until then');
    expect(plan.nodes[1]?.reason).toBe("waits on the dynamic node 'f', whose body runs first: what it returns is not known before");
  });

  test('a sub-workflow is planned with its children; cached as a whole it HITs without them', async () => {
    const w = newWorld();
    const inner = workflowSpec('t.inner', [taskNode('i', 'a', { v: wfInput('v') })], { inputs: { v: true }, outputs: { out: ref('i') } });
    const plain = workflowSpec('t.sub', [taskNode('a', 'a', { x: wfInput('x') }), subworkflowNode('s', inner, { v: ref('a') }, { cache: null })], { inputs: { x: true } });
    await w.run(plain, { x: value(1) });
    expect(predictions(await w.plan(plain, { x: value(1) }))).toEqual({ a: 'HIT', s: 'DISABLED', 's.i': 'HIT' });
    expect(predictions(await w.plan(plain, { x: value(2) }))).toEqual({ a: 'MISS', s: 'SKIPPED(upstream-reran)', 's.i': 'SKIPPED(upstream-reran)' });
    const cached = workflowSpec('t.sub', [taskNode('a', 'a', { x: wfInput('x') }), subworkflowNode('s', inner, { v: ref('a') })], { inputs: { x: true } });
    await w.run(cached, { x: value(1) });
    expect(predictions(await w.plan(cached, { x: value(1) }))).toEqual({ a: 'HIT', s: 'HIT' });
  });

  test('project and domain are part of the key: another domain MISSes', async () => {
    const w = newWorld();
    await w.run(chain, { x: value(1), y: value(2) });
    const plan = await w.plan(chain, { x: value(1), y: value(2) }, { domain: 'prod' });
    expect(plan.counts).toMatchObject({ MISS: 2, SKIPPED: 2, HIT: 0 });
  });

  test('a serialized node is predicted as its lookup says, without taking a reservation', async () => {
    const w = newWorld();
    const spec = workflowSpec('t.ser', [taskNode('a', 'a', { x: lit(1) }, { cache: { serialize: true } }), taskNode('b', 'b', { v: ref('a') })]);
    const plan = await w.plan(spec, {});
    expect(predictions(plan)).toEqual({ a: 'MISS', b: 'SKIPPED(upstream-reran)' });
    expect(w.planCalls).toEqual(['lookup:output:1']);
    expect(statuses(await w.run(spec, {}))).toEqual({ a: 'POPULATED', b: 'SKIPPED(upstream-reran)' });
  });

  test("two nodes of one run with one key: the later one may be served by the first one's entry, so it is UNKNOWN (found by the property)", async () => {
    const w = newWorld();
    const inner = workflowSpec('t.inner2', [taskNode('m', 'c', { k: lit(1), after: lit(2) }, { cache: { ignoreInputs: ['after'] } })], { outputs: { out: ref('m') } });
    const spec = workflowSpec('t.same', [
      subworkflowNode('s', inner, {}, { cache: null }),
      taskNode('slow', 'h', { n: wfInput('x') }, { outputHashed: true }),
      taskNode('late', 'c', { k: lit(1), after: ref('slow') }, { cache: { ignoreInputs: ['after'] }, inputSchemas: { k: true, after: true } }),
      taskNode('twin', 'c', { k: lit(1), after: lit(0) }, { cache: { ignoreInputs: ['after'] }, inputSchemas: { k: true, after: true } }),
      taskNode('below', 'b', { v: ref('late') }),
    ], { inputs: { x: true } });
    const plan = await w.plan(spec, { x: value(1) });
    // 's.m' and 'twin' are looked up in the first round, before anything is written: both MISS.
    // 'late' has their key ('after' is ignored; content-hashed, it does not cascade) and is looked
    // up once 'slow' is done: by then either may have written it, or not.
    expect(predictions(plan)).toMatchObject({ 's.m': 'MISS', twin: 'MISS', slow: 'MISS', late: 'UNKNOWN', below: 'UNKNOWN' });
    expect(plan.nodes.find((n) => n.node === 'late')?.reason).toMatch(/^node '(s\.m|twin)' of this run may write this key first, so this may hit$/);
    const run = await w.run(spec, { x: value(1) });
    expect(statuses(run)).toMatchObject({ 's.m': 'POPULATED', twin: 'POPULATED' });
    expect(['HIT', 'POPULATED']).toContain(statuses(run)['late']);
  });

  test('a wide fan-out is one batch, a fan-in of all of it the next; odd ids are only ids', async () => {
    const w = newWorld();
    const ids = Array.from({ length: 3000 }, (_, i) => `shard.${i}.x_y-z`);
    const spec = workflowSpec('t.wide', [...ids.map((id, i) => taskNode(id, 'a', { i: lit(i) })), taskNode('all', 'b', { xs: arr(...ids.map((id) => ref(id))) })]);
    await w.run(spec, {});
    const started = Date.now();
    const plan = await w.plan(spec, {});
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(plan.counts.HIT).toBe(3001);
    expect(plan.lookups).toEqual({ batches: 2, queries: 2, keys: 3001 });
    expect(plan.nodes.at(-1)).toMatchObject({ node: 'all', level: 1, needs: ids });
    // An id a run would refuse is refused by the plan, before any lookup.
    const odd = workflowSpec('t.odd', [taskNode('é\u{1F600}', 'a', { i: lit(1) })]);
    await expect(w.plan(odd, {})).rejects.toMatchObject({ code: 'INVALID_SPEC', location: { workflow: 't.odd', node: 'é\u{1F600}' } });
    expect(w.planCalls).toEqual([]);
  }, 60_000);

  test('bad input is refused before any lookup, naming workflow and field', () => {
    const plan = (inputs: { [name: string]: NodeValue }, spec: WorkflowSpec = chain) => new WorkflowPlanner({ spec, inputs, project: 'p', domain: 'd', now: new Date() });
    expect(() => plan({ x: value(1) })).toThrow(expect.objectContaining({ code: 'MISSING_INPUT', location: { workflow: 't.chain', field: 'y' } }) as Error);
    expect(() => plan({ x: value(1), y: value(2), z: value(3) })).toThrow(MemoflowError);
    expect(() => new WorkflowPlanner({ spec: chain, inputs: { x: value(1), y: value(2) }, project: 'a b', domain: 'd', now: new Date() })).toThrow(/project/);
    const cyclic = workflowSpec('t.cycle', [taskNode('a', 'a', { v: ref('b') }), taskNode('b', 'b', { v: ref('a') })]);
    expect(() => plan({}, cyclic)).toThrow(expect.objectContaining({ code: 'CYCLE_IN_WORKFLOW' }) as Error);
  });
});
