/**
 * The sub-workflow handler's behaviour, method by method (after Flyte's nodes/dynamic/handler_test.go):
 * against a recording NodeContext first, then through `decide` on a one-node run. Node `s` calls
 * `inner` (m0 reads input `a`, m1 reads m0; outputs m1's output and `a` passed through).
 */
import { describe, expect, test } from 'vitest';
import type { SubworkflowNodeSpec, WorkflowSpec } from '../../../spec/workflow-spec.js';
import type { NodeExecution, RunState } from '../../../state/run-state.js';
import { lit, ref, subworkflowNode, taskNode, wfInput, workflowSpec } from '../../../testing/spec-builders.js';
import { RecordingContext } from '../testing/recording-context.js';
import { attemptsOf, DecideRun, eventsOf, failedResult, lookupsOf, missOf, okResult, runState, started, T0, withChild, withNode, writesOf } from '../testing/run-fixtures.js';
import { subworkflowHandler } from './subworkflow-handler.js';

const inner = (): WorkflowSpec =>
  workflowSpec('inner', [taskNode('m0', 't.m', { x: wfInput('a') }, { cache: null }), taskNode('m1', 't.n', { x: ref('m0') }, { cache: null })], {
    inputs: { a: true },
    outputs: { out: ref('m1'), pass: wfInput('a') },
  });

const workflow = (cached = false): WorkflowSpec => workflowSpec('wf', [subworkflowNode('s', inner(), { a: lit(5) }, { cache: cached ? {} : null })], { outputs: { out: ref('s') } });

/** `s` started (a = 5) in `phase`; expanded, with its children's records in `children` phases. */
function call(options: { phase?: 'looking-up' | 'expanded'; children?: Partial<NodeExecution>[] } = {}) {
  const state = started(runState(workflow()), 's', { a: { value: 5 } }, { phase: options.phase ?? 'looking-up' });
  const spec = state.run.spec.nodes[0] as SubworkflowNodeSpec;
  if (options.phase === 'expanded') withNode(state, 's', { subWorkflow: spec.workflow });
  (options.children ?? []).forEach((patch, i) => withChild(state, `s.m${i}`, i === 0 ? 't.m' : 't.n', patch));
  return { state, spec, ctx: new RecordingContext(state, T0) };
}

const succeeded = (value: string): Partial<NodeExecution> => ({ phase: 'succeeded', output: { value } });
const childrenOf = (state: RunState) => ['s.m0', 's.m1'].map((id) => state.nodes[id] as NodeExecution);

describe('sub-workflow handler, method by method', () => {
  test('looks up its output only', () => {
    expect(subworkflowHandler.lookups).toEqual(['output']);
  });

  test('execute expands the sub-workflow from its spec (no dispatch)', () => {
    const { spec, ctx } = call();
    subworkflowHandler.execute(ctx, spec, 'upstream node x executed');
    expect(ctx.calls).toEqual([{ call: 'expand', nodeId: 's', sub: spec.workflow, message: 'upstream node x executed' }]);
  });

  test('missed records the status and reason, then expands', () => {
    const { spec, ctx, state } = call();
    subworkflowHandler.missed(ctx, spec, [missOf(state, 's', 'output')], { status: 'LOOKUP_FAILURE', reason: 'connection reset' });
    expect(ctx.calls).toEqual([
      { call: 'update', nodeId: 's', patch: { cacheStatus: 'LOOKUP_FAILURE', cacheReason: 'connection reset' } },
      { call: 'expand', nodeId: 's', sub: spec.workflow, message: 'connection reset' },
    ]);
  });

  test('it has no attempts: a result naming it does nothing', () => {
    const { spec, ctx, state } = call({ phase: 'expanded' });
    subworkflowHandler.attemptFinished(ctx, spec, okResult(state, 's', 'stray'));
    expect(ctx.calls).toEqual([]);
  });

  test("children settled: its output is an object of the sub-workflow's outputs (children's outputs and inputs passed through)", () => {
    const { spec, ctx, state } = call({ phase: 'expanded', children: [succeeded('x'), succeeded('y')] });
    expect(subworkflowHandler.childrenSettled(ctx, spec, childrenOf(state))).toBe(true);
    expect(ctx.calls).toEqual([
      { call: 'update', nodeId: 's', patch: { phase: 'succeeded', output: { value: { out: 'y', pass: 5 } }, error: null, finishedAt: T0 } },
      { call: 'emit', type: 'node:succeeded', nodeId: 's', extra: {}, level: 'info' },
    ]);
  });

  test('a failed child: CHILD_FAILED naming it and its error', () => {
    const { spec, ctx, state } = call({ phase: 'expanded', children: [succeeded('x'), { phase: 'failed', error: { name: 'Error', message: 'boom', retryable: false } }] });
    expect(subworkflowHandler.childrenSettled(ctx, spec, childrenOf(state))).toBe(true);
    expect(ctx.calls).toEqual([{ call: 'fail', nodeId: 's', error: { name: 'ChildFailed', code: 'CHILD_FAILED', message: "child node 's.m1' (t.n) failed: boom", retryable: false } }]);
  });

  test('only aborted children (their upstream failed elsewhere): it fails naming the first', () => {
    const { spec, ctx, state } = call({ phase: 'expanded', children: [{ phase: 'aborted' }, { phase: 'aborted' }] });
    subworkflowHandler.childrenSettled(ctx, spec, childrenOf(state));
    expect(ctx.calls).toMatchObject([{ call: 'fail', error: { code: 'CHILD_FAILED', message: "child node 's.m0' (t.m) failed" } }]);
  });
});

describe('sub-workflow handler, through decide', () => {
  test('uncached: the first round expands it and starts its first child; it is never dispatched, and a stray result naming it changes nothing', () => {
    const run = new DecideRun(workflow());
    const first = run.tick();
    expect(run.node('s')).toMatchObject({ phase: 'expanded', cacheStatus: 'DISABLED', attempts: 0 });
    expect(attemptsOf(first).map((a) => a.nodeId)).toEqual(['s.m0']);
    expect(attemptsOf(first)[0]?.inputs).toEqual({ x: 5 });
    expect(eventsOf(first).map((e) => e.type)).toEqual(['node:expanded', 'node:started']);
    const stray = run.finished({ ...okResult(run.state, 's', 'stray'), attempt: 0 });
    expect(stray).toMatchObject({ changed: false, commands: [] });
  });

  test('its children finish it: output from the sub-workflow outputs, then the run', () => {
    const run = new DecideRun(workflow());
    run.tick();
    expect(attemptsOf(run.finished(okResult(run.state, 's.m0', 'x'))).map((a) => a.nodeId)).toEqual(['s.m1']);
    run.finished(okResult(run.state, 's.m1', 'y'));
    expect(run.node('s')).toMatchObject({ phase: 'succeeded', output: { value: { out: 'y', pass: 5 } } });
    expect(run.state.run).toMatchObject({ status: 'succeeded', outputs: { out: { out: 'y', pass: 5 } } });
  });

  test('cached: looked up first; a miss expands it (MISS), and its output is written once the children are done', () => {
    const run = new DecideRun(workflow(true));
    expect(lookupsOf(run.tick()).map((l) => `${l.nodeId}/${l.kind}`)).toEqual(['s/output']);
    const missed = run.looked(missOf(run.state, 's', 'output'));
    expect(run.node('s')).toMatchObject({ phase: 'expanded', cacheStatus: 'MISS' });
    expect(attemptsOf(missed).map((a) => a.nodeId)).toEqual(['s.m0']);
    run.finished(okResult(run.state, 's.m0', 'x'));
    const settled = run.finished(okResult(run.state, 's.m1', 'y'));
    expect(run.node('s').phase).toBe('writing');
    expect(writesOf(settled)).toMatchObject([{ nodeId: 's', kind: 'output', value: { out: 'y', pass: 5 } }]);
  });

  test('a failed child fails it CHILD_FAILED and the run with it; its other child never starts', () => {
    const run = new DecideRun(workflow());
    run.tick();
    run.finished(failedResult(run.state, 's.m0', { retryable: false }));
    expect(run.node('s.m1').phase).toBe('aborted');
    expect(run.node('s')).toMatchObject({ phase: 'failed', error: { code: 'CHILD_FAILED', message: "child node 's.m0' (t.m) failed: boom in s.m0" } });
    expect(run.state.run.status).toBe('failed');
  });
});
