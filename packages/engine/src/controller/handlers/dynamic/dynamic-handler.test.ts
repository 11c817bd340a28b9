/**
 * The dynamic handler's behaviour, method by method (after Flyte's nodes/dynamic/handler_test.go):
 * against a recording NodeContext first, then through `decide` on a one-node run. A dynamic node
 * `d` reads the workflow input `rows`; its body compiles a sub-workflow of one or two children.
 */
import { describe, expect, test } from 'vitest';
import { hashJson } from '../../../cache/canonical-hash.js';
import type { Json } from '../../../json.js';
import { validateSpec } from '../../../spec/validate-spec.js';
import type { DynamicNodeSpec, WorkflowSpec } from '../../../spec/workflow-spec.js';
import type { RunState } from '../../../state/run-state.js';
import { arr, dynamicNode, ref, taskNode, wfInput, workflowSpec } from '../../../testing/spec-builders.js';
import { compactFuture } from '../../core/future.js';
import type { LookupOutcome } from '../../vocabulary/events.js';
import { RecordingContext } from '../testing/recording-context.js';
import { attemptsOf, DecideRun, entryOf, eventsOf, failedResult, hitOf, lookupsOf, missOf, okResult, runState, started, T0, withChild, withNode, writesOf } from '../testing/run-fixtures.js';
import { dynamicHandler } from './dynamic-handler.js';

const ROWS = { value: [1, 2] };
const DAY = 86_400_000;

/** What the body compiles: children c0 (and c1) reading `rows`, the result an array of their outputs. */
function compiled(options: { children?: 1 | 2; pinnedRows?: Json } = {}): WorkflowSpec {
  const nodes = [taskNode('c0', 't.c', { x: wfInput('rows') }, { cache: null })];
  if (options.children === 2) nodes.push(taskNode('c1', 't.c', { x: ref('c0') }, { cache: null }));
  const sub = workflowSpec('t.dyn', nodes, { inputs: { rows: true }, outputs: { result: arr(...nodes.map((n) => ref(n.id))) } });
  return options.pinnedRows === undefined ? sub : { ...sub, pinnedInputs: { rows: hashJson(options.pinnedRows) } };
}

function workflow(options: { cached?: boolean; retries?: number } = {}): WorkflowSpec {
  const d = dynamicNode('d', 't.dyn', { rows: wfInput('rows') }, { cache: options.cached === false ? null : { ttlMs: DAY }, retries: options.retries ?? 0 });
  return workflowSpec('wf', [d], { inputs: { rows: true }, outputs: { out: ref('d') } });
}

/** `d` started with rows [1, 2], in `phase`, and a recording context over it (built last, so it sees children). */
function dynamic(options: { cached?: boolean; retries?: number; phase?: 'looking-up' | 'dispatched' | 'expanded'; attempts?: number; sub?: WorkflowSpec } = {}) {
  const state = started(runState(workflow(options), { rows: ROWS }), 'd', { rows: ROWS }, { phase: options.phase ?? 'looking-up', attempts: options.attempts ?? 0 });
  if (options.sub !== undefined) withNode(state, 'd', { subWorkflow: options.sub });
  return { state, spec: state.run.spec.nodes[0] as DynamicNodeSpec, ctx: () => new RecordingContext(state, T0) };
}

const futureHit = (state: RunState, sub: WorkflowSpec, options: { createdAt?: Date } = {}) => hitOf(state, 'd', 'future', compactFuture(sub), options);
const MISS = { status: 'MISS', reason: null } as const;

describe('dynamic handler, method by method', () => {
  test('looks up its output and its future together', () => {
    expect(dynamicHandler.lookups).toEqual(['output', 'future']);
  });

  test('execute dispatches the body', () => {
    const { spec, ctx } = dynamic();
    const c = ctx();
    dynamicHandler.execute(c, spec, 'overwrite');
    expect(c.calls).toEqual([{ call: 'dispatch', nodeId: 'd', message: 'overwrite' }]);
  });

  test('a fresh future hit, compiled from these inputs: FUTURE_HIT and the stored sub-workflow expands; the body is not dispatched', () => {
    const { state, spec, ctx } = dynamic();
    const sub = compiled({ pinnedRows: ROWS.value });
    const c = ctx();
    dynamicHandler.missed(c, spec, [missOf(state, 'd', 'output'), futureHit(state, sub)], MISS);
    expect(c.calls).toEqual([
      { call: 'update', nodeId: 'd', patch: { cacheStatus: 'FUTURE_HIT', cacheReason: 'sub-workflow from run r0', savedMs: null } },
      { call: 'expand', nodeId: 'd', sub: validateSpec(sub), message: 'compiled sub-workflow read from the catalog; the body does not run' },
    ]);
  });

  test('a stale future (compiled from other input values) is a miss saying so, and the body runs', () => {
    const { state, spec, ctx } = dynamic();
    const c = ctx();
    dynamicHandler.missed(c, spec, [missOf(state, 'd', 'output'), futureHit(state, compiled({ pinnedRows: [9] }))], MISS);
    expect(c.names()).toEqual(['update', 'dispatch']);
    const [update, dispatch] = c.calls;
    expect(update).toMatchObject({ patch: { cacheStatus: 'MISS', cacheReason: expect.stringMatching(/^the compiled sub-workflow may hold input 'rows' as it was in the run that compiled it/) } });
    expect(dispatch).toMatchObject({ call: 'dispatch', message: c.node('d').cacheReason });
  });

  test("a stale future after an expired output: both reasons, joined, under the output's status", () => {
    const { state, spec, ctx } = dynamic();
    const c = ctx();
    dynamicHandler.missed(c, spec, [futureHit(state, compiled({ pinnedRows: [9] }))], { status: 'EVICTED', reason: 'entry expired' });
    expect(c.node('d').cacheStatus).toBe('EVICTED');
    expect(c.node('d').cacheReason).toMatch(/^entry expired; the compiled sub-workflow may hold input 'rows'/);
  });

  test('a corrupt future (not a sub-workflow) warns and the body runs', () => {
    const { state, spec, ctx } = dynamic();
    const c = ctx();
    dynamicHandler.missed(c, spec, [hitOf(state, 'd', 'future', { nope: 1 })], MISS);
    expect(c.calls).toEqual([
      { call: 'emit', type: 'node:cache-corrupt', nodeId: 'd', extra: { message: 'future entry is not a sub-workflow, treated as a miss' }, level: 'warn' },
      { call: 'update', nodeId: 'd', patch: { cacheStatus: 'MISS', cacheReason: null } },
      { call: 'dispatch', nodeId: 'd', message: undefined },
    ]);
  });

  test("a future entry that is not this key's (its parts hash elsewhere) is corrupt too", () => {
    const { state, spec, ctx } = dynamic();
    const entry = entryOf(state, 'd', 'future', compactFuture(compiled()));
    const forged: LookupOutcome = { nodeId: 'd', key: entry.key, kind: 'future', outcome: 'hit', entry: { ...entry, parts: { ...entry.parts, version: 'other' } } };
    const c = ctx();
    dynamicHandler.missed(c, spec, [forged], MISS);
    expect(c.names()).toEqual(['emit', 'update', 'dispatch']);
  });

  test('an expired future and a future miss are plain misses: no warning, the body runs', () => {
    for (const future of [(s: RunState) => futureHit(s, compiled(), { createdAt: new Date(T0.getTime() - DAY) }), (s: RunState) => missOf(s, 'd', 'future')]) {
      const { state, spec, ctx } = dynamic();
      const c = ctx();
      dynamicHandler.missed(c, spec, [future(state)], { status: 'MISS', reason: 'why' });
      expect(c.calls).toEqual([
        { call: 'update', nodeId: 'd', patch: { cacheStatus: 'MISS', cacheReason: 'why' } },
        { call: 'dispatch', nodeId: 'd', message: 'why' },
      ]);
    }
  });

  test('a compiled sub-workflow expands and, the node being keyed, is written as its future (with the compile time)', () => {
    const { state, spec, ctx } = dynamic({ phase: 'dispatched', attempts: 1 });
    const c = ctx();
    dynamicHandler.attemptFinished(c, spec, { ...okResult(state, 'd', compiled() as unknown as Json), finishedAt: new Date(T0.getTime() + 800) });
    expect(c.calls).toEqual([
      { call: 'update', nodeId: 'd', patch: { computeMs: 800 } },
      { call: 'expand', nodeId: 'd', sub: validateSpec(compiled()), message: undefined },
      { call: 'write', nodeId: 'd', kind: 'future' },
    ]);
  });

  test('uncached (no key): it expands, and no future is written', () => {
    const { state, spec, ctx } = dynamic({ cached: false, phase: 'dispatched', attempts: 1 });
    const c = ctx();
    dynamicHandler.attemptFinished(c, spec, okResult(state, 'd', compiled() as unknown as Json));
    expect(c.names()).toEqual(['update', 'expand']);
  });

  test('an invalid compiled sub-workflow fails the node INVALID_SPEC, naming why; nothing expands', () => {
    const dangling = workflowSpec('t.dyn', [taskNode('c0', 't.c', { x: ref('ghost') })], { outputs: { result: ref('c0') } });
    for (const [value, message] of [
      [dangling as unknown as Json, /^workflow 'wf', node 'd': its sub-workflow is invalid: .*refers to node 'ghost'/],
      [42, /^workflow 'wf', node 'd': the dynamic body did not produce a sub-workflow$/],
    ] as const) {
      const { state, spec, ctx } = dynamic({ phase: 'dispatched', attempts: 1 });
      const c = ctx();
      dynamicHandler.attemptFinished(c, spec, okResult(state, 'd', value));
      expect(c.calls).toEqual([{ call: 'fail', nodeId: 'd', error: { name: 'InvalidDynamicWorkflow', code: 'INVALID_SPEC', message: expect.stringMatching(message), retryable: false } }]);
    }
  });

  test('a failed attempt of the body retries while retries are left', () => {
    const { state, spec, ctx } = dynamic({ retries: 1, phase: 'dispatched', attempts: 1 });
    const c = ctx();
    dynamicHandler.attemptFinished(c, spec, failedResult(state, 'd'));
    expect(c.names()).toEqual(['update', 'dispatch']);
  });

  test('children settled: the output is the sub-workflow result read from the children, written under the key', () => {
    const { state, spec, ctx } = dynamic({ phase: 'expanded', attempts: 1, sub: compiled({ children: 2 }) });
    withChild(state, 'd.c0', 't.c', { phase: 'succeeded', output: { value: 'x' } });
    withChild(state, 'd.c1', 't.c', { phase: 'succeeded', output: { value: 'y' } });
    const c = ctx();
    expect(dynamicHandler.childrenSettled(c, spec, [c.node('d.c0'), c.node('d.c1')])).toBe(true);
    expect(c.calls).toEqual([
      { call: 'storable', nodeId: 'd', value: ['x', 'y'] },
      { call: 'update', nodeId: 'd', patch: { phase: 'writing', output: { value: ['x', 'y'] }, error: null, finishedAt: T0 } },
      { call: 'write', nodeId: 'd', kind: 'output' },
      { call: 'emit', type: 'node:succeeded', nodeId: 'd', extra: {}, level: 'info' },
    ]);
  });

  test('children settled with a failure: CHILD_FAILED naming the failed child (not an aborted one before it)', () => {
    const { state, spec, ctx } = dynamic({ phase: 'expanded', attempts: 1, sub: compiled({ children: 2 }) });
    withChild(state, 'd.c0', 't.c', { phase: 'aborted' });
    withChild(state, 'd.c1', 't.c', { phase: 'failed', error: { name: 'Error', message: 'boom', retryable: false } });
    const c = ctx();
    expect(dynamicHandler.childrenSettled(c, spec, [c.node('d.c0'), c.node('d.c1')])).toBe(true);
    expect(c.calls).toEqual([{ call: 'fail', nodeId: 'd', error: { name: 'ChildFailed', code: 'CHILD_FAILED', message: "child node 'd.c1' (t.c) failed: boom", retryable: false } }]);
  });
});

describe('dynamic handler, through decide', () => {
  test('the first round looks up output and future in one lookup', () => {
    const run = new DecideRun(workflow(), { rows: ROWS });
    expect(lookupsOf(run.tick()).map((l) => `${l.nodeId}/${l.kind}`)).toEqual(['d/output', 'd/future']);
  });

  test('output miss, future hit: FUTURE_HIT, the children start, the body is never dispatched', () => {
    const run = new DecideRun(workflow(), { rows: ROWS });
    run.tick();
    const decision = run.looked(missOf(run.state, 'd', 'output'), futureHit(run.state, compiled({ pinnedRows: ROWS.value })));
    expect(run.node('d')).toMatchObject({ phase: 'expanded', cacheStatus: 'FUTURE_HIT', attempts: 0 });
    expect(attemptsOf(decision).map((a) => a.nodeId)).toEqual(['d.c0']);
    expect(attemptsOf(decision)[0]?.inputs).toEqual({ x: [1, 2] });
    expect(writesOf(decision)).toEqual([]);
  });

  test('both miss: the body runs, its sub-workflow expands and is stored as the future; the children finish the node and the run', () => {
    const run = new DecideRun(workflow(), { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'd', 'output'), missOf(run.state, 'd', 'future'));
    expect(run.node('d')).toMatchObject({ phase: 'dispatched', cacheStatus: 'MISS', attempts: 1 });
    const expanded = run.finished(okResult(run.state, 'd', compiled() as unknown as Json));
    expect(writesOf(expanded)).toMatchObject([{ nodeId: 'd', kind: 'future', value: compactFuture(validateSpec(compiled())) }]);
    expect(attemptsOf(expanded).map((a) => a.nodeId)).toEqual(['d.c0']);
    const settled = run.finished(okResult(run.state, 'd.c0', 7));
    expect(run.node('d')).toMatchObject({ phase: 'writing', output: { value: [7] } });
    expect(writesOf(settled)).toMatchObject([{ nodeId: 'd', kind: 'output', value: [7] }]);
    run.feed({ type: 'cache:written', writes: [{ nodeId: 'd', kind: 'output' }], ok: true });
    expect(run.state.run).toMatchObject({ status: 'succeeded', outputs: { out: [7] } });
  });

  test('a failed child fails the node CHILD_FAILED and the run', () => {
    const run = new DecideRun(workflow({ cached: false }), { rows: ROWS });
    run.tick();
    run.finished(okResult(run.state, 'd', compiled() as unknown as Json));
    const failed = run.finished(failedResult(run.state, 'd.c0', { retryable: false }));
    expect(run.node('d')).toMatchObject({ phase: 'failed', error: { code: 'CHILD_FAILED', message: "child node 'd.c0' (t.c) failed: boom in d.c0" } });
    expect(run.state.run.status).toBe('failed');
    expect(eventsOf(failed).map((e) => e.type)).toEqual(['node:failed', 'node:failed', 'run:failed']);
  });
});
