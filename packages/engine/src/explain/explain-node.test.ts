import { describe, expect, test } from 'vitest';
import { MemoflowError } from '../errors.js';
import type { CacheEntrySummary } from '../ports/cache-catalog.js';
import type { RunState } from '../state/run-state.js';
import { dynamicNode, lit, ref, taskNode, wfInput, workflowSpec } from '../testing/spec-builders.js';
import { DecideRun, entryOf, missOf, okResult, runState, started, T0, withChild, withNode } from '../controller/handlers/testing/run-fixtures.js';
import { explainNeeds, explainNode, pickNearest } from './explain-node.js';

const HOUR = 3_600_000;

/** a(n) -> b(a): the pipeline most tests explain. */
const pipeline = (options: { aOutput?: boolean | { [key: string]: boolean | string } } = {}) =>
  workflowSpec('wf', [taskNode('a', 't.a', { n: wfInput('n') }, { output: options.aOutput ?? true }), taskNode('b', 't.b', { x: ref('a') })], { inputs: { n: true } });

/** A run of the pipeline whose `a` missed and executed (POPULATED) and whose `b` then reran (SKIPPED upstream-reran). */
function rerunPipeline(n: number, id = 'r1'): RunState {
  const run = new DecideRun(pipeline(), { n: { value: n } });
  run.state.run.id = id;
  run.tick();
  run.looked(missOf(run.state, 'a', 'output'));
  run.finished(okResult(run.state, 'a', n + 1));
  run.feed({ type: 'cache:written', writes: [{ nodeId: 'a', kind: 'output' }], ok: true });
  return run.state;
}

/** An entry as `catalog.list` returns it (no value), written by `runId` for node `nodeId` of `state`. */
function summaryOf(state: RunState, nodeId: string, options: { runId?: string; createdAt?: Date; project?: string } = {}): CacheEntrySummary {
  const { value: _value, ...entry } = entryOf(state, nodeId, 'output', null, options);
  return options.project === undefined ? entry : { ...entry, project: options.project, parts: { ...entry.parts, project: options.project } };
}

describe('explainNeeds', () => {
  test('a missed node wants its own key and the nearest entry; the node it cascaded to wants only its upstream', () => {
    const state = rerunPipeline(1);
    expect(state.nodes['a']?.cacheStatus).toBe('POPULATED');
    expect([state.nodes['b']?.cacheStatus, state.nodes['b']?.cacheReason]).toEqual(['SKIPPED', 'upstream-reran']);
    expect(explainNeeds(state, 'a')).toEqual({ ownKey: state.nodes['a']?.cacheKey, nearestOf: { task: 't.a', project: 'demo', domain: 'dev' }, upstream: null });
    expect(explainNeeds(state, 'b')).toEqual({ ownKey: null, nearestOf: null, upstream: { node: 'a', via: 'input' } });
  });

  test('a child of a container fed by a rerun names its container', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't.a', {}), dynamicNode('d', 't.d', { x: ref('a') })]);
    let state = started(runState(spec), 'a', {}, { phase: 'succeeded', cacheStatus: 'POPULATED', output: { value: 1 } });
    state = withNode(state, 'd', { phase: 'expanded', cacheStatus: 'SKIPPED', cacheReason: 'upstream-reran', inputs: { x: { value: 1 } }, subWorkflow: workflowSpec('sub', [taskNode('c', 't.c', { k: lit(3) })]) });
    state = withChild(state, 'd.c', 't.c', { phase: 'succeeded', cacheStatus: 'SKIPPED', cacheReason: 'upstream-reran', inputs: { k: { value: 3 } } });
    expect(explainNeeds(state, 'd.c').upstream).toEqual({ node: 'd', via: 'container' });
    expect(explainNeeds(state, 'd').upstream).toEqual({ node: 'a', via: 'input' });
  });

  test('an unknown node is NODE_NOT_FOUND naming the run, the node and the closest ids', () => {
    const state = rerunPipeline(1);
    let error: unknown;
    try {
      explainNeeds(state, 'bb');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).code).toBe('NODE_NOT_FOUND');
    expect((error as MemoflowError).message).toContain("run r1 has no node 'bb' (its nodes: b, a)");
    // Inherited names are not nodes.
    expect(() => explainNeeds(state, 'constructor')).toThrow(/has no node 'constructor'/);
  });
});

describe('pickNearest', () => {
  const state = rerunPipeline(1);
  const node = state.nodes['a'];
  const parts = node?.cacheKeyParts;
  const key = node?.cacheKey;
  if (parts == null || key == null) throw new Error('a has no key');
  const differentInput = { ...summaryOf(state, 'a', { runId: 'old' }), key: 'k-input', parts: { ...parts, inputs: { n: 'sha256:other' } } };
  const differentTwice = { ...differentInput, key: 'k-two', parts: { ...parts, version: '9', inputs: { n: 'sha256:other' } }, createdAt: new Date(T0.getTime() + 1) };
  const elsewhere = { ...summaryOf(state, 'a', { project: 'other' }), key: 'k-elsewhere' };

  test('prefers the node’s own project and domain, then fewer differing parts, then the newest', () => {
    expect(pickNearest(parts, key, [differentTwice, elsewhere, differentInput])?.entry.key).toBe('k-input');
    expect(pickNearest(parts, key, [elsewhere, differentTwice])?.entry.key).toBe('k-two');
    const newer = { ...differentInput, key: 'k-newer', createdAt: new Date(T0.getTime() + HOUR) };
    expect(pickNearest(parts, key, [differentInput, newer])).toEqual({ entry: newer, differing: 1 });
    expect(pickNearest(parts, key, [elsewhere])).toEqual({ entry: elsewhere, differing: 1 });
    // Written after the node looked up: not what it missed.
    expect(pickNearest(parts, key, [differentInput, newer], T0)).toEqual({ entry: differentInput, differing: 1 });
    expect(pickNearest(parts, key, [newer], T0)).toBeNull();
  });

  test('never picks an entry under the node’s own key, a future or another task', () => {
    const own = summaryOf(state, 'a', { runId: 'r1' });
    const future = { ...differentInput, kind: 'future' as const };
    const otherTask = { ...differentInput, task: 't.zzz', parts: { ...differentInput.parts, task: 't.zzz' } };
    expect(pickNearest(parts, key, [own, future, otherTask])).toBeNull();
    // A row whose parts are not an object (corrupt, hand-edited) is passed over, not a crash.
    const broken = { ...differentInput, key: 'k-broken', parts: null as unknown as CacheEntrySummary['parts'] };
    expect(pickNearest(parts, key, [broken, differentTwice])?.entry.key).toBe('k-two');
  });
});

describe('explainNode', () => {
  test('a changed input: the nearest entry, the input by name with the value it had and has', () => {
    const before = rerunPipeline(1, 'r0');
    const now = rerunPipeline(2, 'r1');
    const nearest = summaryOf(before, 'a', { runId: 'r0' });
    const explained = explainNode(now, 'a', { ownEntries: [summaryOf(now, 'a', { runId: 'r1', createdAt: T0 })], nearest, nearestWriter: before });
    expect(explained).toMatchObject({ node: 'a', task: 't.a', status: 'POPULATED', key: now.nodes['a']?.cacheKey, nearest: { runId: 'r0', nodeId: 'a', sameScope: true, differing: 1 } });
    expect(explained.differences).toEqual([{ part: 'input', name: 'n', change: 'changed', was: 1, now: 2 }]);
    expect(explained.writtenBy).toMatchObject({ runId: 'r1', nodeId: 'a' });
    expect(explained.reason).toBe(
      `missed, executed, and wrote its entry: the nearest entry of task 't.a' (written by run r0, node 'a', at ${nearest.createdAt.toISOString()}) differs in input 'n' (1 → 2).`,
    );
    // The writer run gone: the input is still named, its old value is not known.
    expect(explainNode(now, 'a', { nearest }).differences).toEqual([{ part: 'input', name: 'n', change: 'changed', now: 2 }]);
  });

  test('the cascade: the skipped node names its upstream and nests the upstream’s own explanation', () => {
    const state = rerunPipeline(2);
    const upstream = explainNode(state, 'a');
    const explained = explainNode(state, 'b', { upstream });
    expect(explained).toMatchObject({ status: 'SKIPPED', cacheReason: 'upstream-reran', upstreamVia: 'input', nearest: null, differences: [] });
    expect(explained.upstream).toBe(upstream);
    expect(explained.reason).toContain("upstream node 'a' executed (POPULATED) and its output is not content-hashed");
    expect(upstream.reason).toContain("the catalog has no entry of task 't.a' to compare with, in any project or domain");
  });

  test('a changed schema is named from the two specs; without the writer run only the digests are known', () => {
    const before = rerunPipeline(1, 'r0');
    const run = new DecideRun(pipeline({ aOutput: { type: 'integer' } }), { n: { value: 1 } });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    const nearest = summaryOf(before, 'a', { runId: 'r0' });
    expect(explainNode(run.state, 'a', { nearest, nearestWriter: before }).differences).toEqual([{ part: 'signature', name: 'output', change: 'changed', was: true, now: { type: 'integer' } }]);
    const [plain] = explainNode(run.state, 'a', { nearest }).differences;
    expect(plain).toEqual({ part: 'signature', was: nearest.parts.signature, now: run.node('a').cacheKeyParts?.signature });
  });

  test('a HIT names the entry’s writer; an entry replaced since is said to be', () => {
    let state = started(runState(pipeline(), { n: { value: 1 } }), 'a', { n: { value: 1 } }, { phase: 'succeeded', cacheStatus: 'HIT', cacheReason: 'from run r0' });
    const entry = summaryOf(state, 'a', { runId: 'r0' });
    const hit = explainNode(state, 'a', { ownEntries: [entry] });
    expect(hit.writtenBy).toEqual({ key: entry.key, kind: 'output', project: 'demo', domain: 'dev', runId: 'r0', nodeId: 'a', createdAt: entry.createdAt });
    expect(hit.reason).toBe(`served from the catalog: the entry under this key was written by run r0, node 'a', at ${entry.createdAt.toISOString()}; the task did not execute.`);
    state = withNode(state, 'a', { waitedFor: { runId: 'r9', nodeId: 'a' } });
    expect(explainNode(state, 'a', { ownEntries: [{ ...entry, runId: 'r5' }] }).reason).toBe(
      "served from the catalog: the entry under this key was written by run r0 (that entry has since been replaced by run r5's); the task did not execute. It had waited for the reservation of run r9, node 'a', which wrote it.",
    );
  });

  test('EVICTED: the entry’s age at lookup against the ttl', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't.a', {}, { cache: { ttlMs: HOUR } })]);
    const state = started(runState(spec), 'a', {}, { phase: 'failed', cacheStatus: 'EVICTED', cacheReason: `entry expired (older than ${HOUR} ms)` });
    const entry = summaryOf(state, 'a', { runId: 'r0', createdAt: new Date(T0.getTime() - 2 * HOUR) });
    expect(explainNode(state, 'a', { ownEntries: [entry] }).reason).toBe(
      `the entry under this key, written by run r0, node 'a', at ${entry.createdAt.toISOString()}, was 2h old when looked up, older than its ttl (1h), so it was a miss and the node executed.`,
    );
    const replaced = summaryOf(state, 'a', { runId: 'r1', createdAt: T0 });
    expect(explainNode(state, 'a', { ownEntries: [replaced] }).reason).toContain("this node executed and its fresh result replaced the entry at");
  });

  test('a MISS whose key has an entry now says who wrote it since, and is not compared with it', () => {
    const state = started(runState(pipeline(), { n: { value: 1 } }), 'a', { n: { value: 1 } }, { phase: 'dispatched', cacheStatus: 'MISS' });
    const since = summaryOf(state, 'a', { runId: 'r7', createdAt: new Date(T0.getTime() + 1000) });
    const explained = explainNode(state, 'a', { ownEntries: [since], nearest: null });
    expect(explained.writtenBy).toBeUndefined();
    expect(explained.nearest).toBeNull();
    expect(explained.reason).toContain(`An entry under this key exists now: run r7, node 'a' wrote it at ${since.createdAt.toISOString()}.`);
    // A corrupt entry found at lookup is part of the reason.
    const corrupt = withNode(state, 'a', { cacheReason: 'corrupt entry: checksum mismatch' });
    expect(explainNode(corrupt, 'a').reason).toMatch(/^missed \(corrupt entry: checksum mismatch\): /);
  });

  test('WAITING, PUT_FAILURE, FUTURE_HIT without its entry, and a disabled override each say why', () => {
    const base = () => runState(pipeline(), { n: { value: 1 } });
    const waiting = started(base(), 'a', { n: { value: 1 } }, { cacheStatus: 'WAITING', cacheReason: 'reservation held by run r3 node a', waitedFor: { runId: 'r3', nodeId: 'a' } });
    expect(explainNode(waiting, 'a').reason).toContain("held by run r3, node 'a'; it ends HIT once that entry is written");
    const lost = started(base(), 'a', { n: { value: 1 } }, { phase: 'succeeded', cacheStatus: 'PUT_FAILURE', cacheReason: 'cache write lost after 3 attempt(s): disk full' });
    expect(explainNode(lost, 'a').reason).toBe('the node executed but its result was not cached: cache write lost after 3 attempt(s): disk full.');
    const future = started(base(), 'a', { n: { value: 1 } }, { phase: 'expanded', cacheStatus: 'FUTURE_HIT', cacheReason: 'sub-workflow from run r2' });
    expect(explainNode(future, 'a', { ownEntries: [] }).reason).toContain('written by run r2: the dynamic body did not run again');
    const off = workflowSpec('wf', [taskNode('a', 't.a', {}, { cache: { enabled: false } })]);
    expect(explainNode(withNode(runState(off), 'a', { phase: 'succeeded', cacheStatus: 'DISABLED' }), 'a').reason).toBe('caching is off for this node: its cache is disabled (cache: { enabled: false }).');
  });

  test('statuses without a lookup each say why', () => {
    const disabledSpec = workflowSpec('wf', [taskNode('a', 't.a', {}, { cache: null })]);
    const disabled = started(runState(disabledSpec), 'a', {}, { phase: 'succeeded', cacheStatus: 'DISABLED' });
    expect(explainNode(disabled, 'a').reason).toBe("caching is off for this node: task 't.a' declares no cache (give it cache: { version }).");

    const base = () => runState(pipeline(), { n: { value: 1 } });
    const overwrite = started(base(), 'a', { n: { value: 1 } }, { phase: 'succeeded', cacheStatus: 'SKIPPED', cacheReason: 'overwrite' });
    expect(explainNode(overwrite, 'a').reason).toContain('overwrite-cache');

    const resumed = base();
    resumed.run.options = { overwriteCache: false, reuse: { fromRun: 'r0', reason: 'resume', resumePoint: 'a', nodes: {} } };
    started(resumed, 'a', { n: { value: 1 } }, { phase: 'succeeded', cacheStatus: 'SKIPPED', cacheReason: 'resume' });
    withNode(resumed, 'b', { phase: 'succeeded', cacheStatus: 'RECOVERED', cacheReason: 'from run r0' });
    expect(explainNode(resumed, 'a').reason).toContain('this node is the resume point (--resume-from r0:a)');
    expect(explainNode(resumed, 'b')).toMatchObject({ recoveredFrom: { runId: 'r0', nodeId: 'b' } });
    expect(explainNode(resumed, 'b').reason).toContain('this run resumes run r0');

    const lookupFailed = started(base(), 'a', { n: { value: 1 } }, { phase: 'succeeded', cacheStatus: 'LOOKUP_FAILURE', cacheReason: 'connection refused' });
    expect(explainNode(lookupFailed, 'a').reason).toContain('the catalog lookup failed (connection refused)');
    const aborted = withNode(base(), 'b', { phase: 'aborted' });
    expect(explainNode(aborted, 'b')).toMatchObject({ status: null, key: null, reason: 'never started: an upstream node failed, so no key was computed and no lookup happened.' });
  });
});
