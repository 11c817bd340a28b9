/**
 * The task handler's behaviour, method by method (in the style of Flyte's
 * nodes/dynamic/handler_test.go): first against a recording NodeContext, so each test sees exactly
 * what one method asks for; then through `decide` on a one- or two-node run, so the wiring of each
 * step into the core is shown too.
 */
import { describe, expect, test } from 'vitest';
import type { TaskNodeSpec, WorkflowSpec } from '../../../spec/workflow-spec.js';
import type { RunState } from '../../../state/run-state.js';
import { ref, taskNode, workflowSpec } from '../../../testing/spec-builders.js';
import { RecordingContext } from '../testing/recording-context.js';
import { attemptsOf, DecideRun, eventsOf, failedResult, lookupsOf, missOf, okResult, runState, started, T0, withNode, writesOf } from '../testing/run-fixtures.js';
import { taskHandler } from './task-handler.js';

const LATER = new Date(T0.getTime() + 5_000);

/** One task `a` (cached unless told), started and in `phase` after `attempts` attempts. */
function oneTask(options: { cached?: boolean; retries?: number; attempts?: number; phase?: 'looking-up' | 'dispatched'; outputSchema?: TaskNodeSpec['outputSchema'] } = {}): {
  spec: TaskNodeSpec;
  state: RunState;
  ctx: RecordingContext;
} {
  const base = taskNode('a', 't.a', {}, { cache: options.cached === false ? null : {}, retries: options.retries ?? 0 });
  const spec: TaskNodeSpec = options.outputSchema === undefined ? base : { ...base, outputSchema: options.outputSchema };
  const state = started(runState(workflowSpec('wf', [spec])), 'a', {}, { phase: options.phase ?? 'dispatched', attempts: options.attempts ?? 1 });
  return { spec: state.run.spec.nodes[0] as TaskNodeSpec, state, ctx: new RecordingContext(state, LATER) };
}

describe('task handler, method by method', () => {
  test('looks up its output only', () => {
    expect(taskHandler.lookups).toEqual(['output']);
  });

  test('execute dispatches the node, passing the reason on, and changes nothing else', () => {
    const { spec, ctx } = oneTask({ phase: 'looking-up', attempts: 0 });
    taskHandler.execute(ctx, spec, 'upstream node x executed');
    expect(ctx.calls).toEqual([{ call: 'dispatch', nodeId: 'a', message: 'upstream node x executed' }]);
  });

  test('missed records the status and reason, then dispatches with the reason', () => {
    const { spec, ctx } = oneTask({ phase: 'looking-up', attempts: 0 });
    taskHandler.missed(ctx, spec, [missOf(ctx.state, 'a', 'output')], { status: 'EVICTED', reason: 'entry expired (older than 1 ms)' });
    expect(ctx.calls).toEqual([
      { call: 'update', nodeId: 'a', patch: { cacheStatus: 'EVICTED', cacheReason: 'entry expired (older than 1 ms)' } },
      { call: 'dispatch', nodeId: 'a', message: 'entry expired (older than 1 ms)' },
    ]);
  });

  test('missed without a reason dispatches without a message', () => {
    const { spec, ctx } = oneTask({ phase: 'looking-up', attempts: 0 });
    taskHandler.missed(ctx, spec, [], { status: 'MISS', reason: null });
    expect(ctx.calls).toEqual([
      { call: 'update', nodeId: 'a', patch: { cacheStatus: 'MISS', cacheReason: null } },
      { call: 'dispatch', nodeId: 'a', message: undefined },
    ]);
  });

  test('a successful attempt of a cached node: writing, with the output and its hash, its run time, the entry written, the error of an earlier attempt cleared', () => {
    const { spec, ctx, state } = oneTask({ attempts: 2 });
    withNode(state, 'a', { error: { name: 'Error', message: 'attempt 1', retryable: true } });
    // The attempt ran 1.234 s on the worker: its compute is that span (what the entry records).
    taskHandler.attemptFinished(ctx, spec, { ...okResult(state, 'a', [1, 3], 'sha:13'), finishedAt: new Date(T0.getTime() + 1234) });
    expect(ctx.calls).toEqual([
      { call: 'storable', nodeId: 'a', value: [1, 3] },
      { call: 'update', nodeId: 'a', patch: { phase: 'writing', output: { value: [1, 3], hash: 'sha:13' }, error: null, finishedAt: LATER, computeMs: 1234 } },
      { call: 'write', nodeId: 'a', kind: 'output' },
      { call: 'emit', type: 'node:succeeded', nodeId: 'a', extra: {}, level: 'info' },
    ]);
  });

  test('a successful attempt of an uncached node: succeeded, nothing written, no storability check, no hash field', () => {
    const { spec, ctx, state } = oneTask({ cached: false });
    taskHandler.attemptFinished(ctx, spec, okResult(state, 'a', { n: 1 }));
    expect(ctx.calls).toEqual([
      { call: 'update', nodeId: 'a', patch: { phase: 'succeeded', output: { value: { n: 1 } }, error: null, finishedAt: LATER, computeMs: 0 } },
      { call: 'emit', type: 'node:succeeded', nodeId: 'a', extra: {}, level: 'info' },
    ]);
  });

  test('an output that fails the output schema succeeds but is not written', () => {
    const { spec, ctx, state } = oneTask({ outputSchema: { type: 'number' } });
    taskHandler.attemptFinished(ctx, spec, okResult(state, 'a', 'not a number'));
    expect(ctx.names()).toEqual(['storable', 'update', 'emit']);
    expect(ctx.node('a').phase).toBe('succeeded');
  });

  test('a retryable failure with retries left starts the next attempt, keeping the error', () => {
    const { spec, ctx, state } = oneTask({ retries: 2, attempts: 2 });
    const result = failedResult(state, 'a', { message: 'flaky' });
    taskHandler.attemptFinished(ctx, spec, result);
    expect(ctx.calls).toEqual([
      { call: 'update', nodeId: 'a', patch: { error: result.error } },
      { call: 'dispatch', nodeId: 'a', message: 'attempt 2 failed: flaky' },
    ]);
  });

  test('a retryable failure of the last attempt fails the node with its error', () => {
    const { spec, ctx, state } = oneTask({ retries: 2, attempts: 3 });
    const result = failedResult(state, 'a');
    taskHandler.attemptFinished(ctx, spec, result);
    expect(ctx.calls).toEqual([{ call: 'fail', nodeId: 'a', error: result.error }]);
  });

  test('a non-retryable failure fails the node at once, retries left or not', () => {
    const { spec, ctx, state } = oneTask({ retries: 5, attempts: 1 });
    const result = failedResult(state, 'a', { retryable: false });
    taskHandler.attemptFinished(ctx, spec, result);
    expect(ctx.calls).toEqual([{ call: 'fail', nodeId: 'a', error: result.error }]);
  });

  test('a task has no children: childrenSettled does nothing and says it did not move', () => {
    const { spec, ctx } = oneTask();
    expect(taskHandler.childrenSettled(ctx, spec, [])).toBe(false);
    expect(ctx.calls).toEqual([]);
  });
});

/** a -> b, both tasks; a's cache and retries as given. */
function pair(options: { cached?: boolean; retries?: number; outputSchema?: TaskNodeSpec['outputSchema'] } = {}): WorkflowSpec {
  const a = taskNode('a', 't.a', {}, { cache: options.cached === false ? null : {}, retries: options.retries ?? 0 });
  return workflowSpec('wf', [options.outputSchema === undefined ? a : { ...a, outputSchema: options.outputSchema }, taskNode('b', 't.b', { x: ref('a') })], { outputs: { out: ref('b') } });
}

describe('task handler, through decide', () => {
  test('uncached: the first round dispatches attempt 1 (DISABLED) without a lookup', () => {
    const run = new DecideRun(pair({ cached: false }));
    const first = run.tick();
    expect(lookupsOf(first)).toEqual([]);
    expect(attemptsOf(first).map((a) => a.id)).toEqual(['r1-a-1']);
    expect(run.node('a')).toMatchObject({ phase: 'dispatched', attempts: 1, cacheStatus: 'DISABLED' });
    expect(eventsOf(first).map((e) => e.type)).toEqual(['node:started']);
  });

  test('a miss dispatches; the success is written (writing), and its reader starts before the write lands', () => {
    const run = new DecideRun(pair());
    expect(lookupsOf(run.tick()).map((l) => l.nodeId)).toEqual(['a']);
    expect(attemptsOf(run.looked(missOf(run.state, 'a', 'output'))).map((a) => a.id)).toEqual(['r1-a-1']);
    expect(run.node('a')).toMatchObject({ phase: 'dispatched', cacheStatus: 'MISS' });
    const done = run.finished(okResult(run.state, 'a', 42));
    expect(run.node('a')).toMatchObject({ phase: 'writing', output: { value: 42 } });
    expect(writesOf(done)).toMatchObject([{ nodeId: 'a', kind: 'output', value: 42 }]);
    // Its reader starts now; a reran, so b is not looked up but runs (the cascade rule).
    expect(attemptsOf(done).map((a) => a.id)).toEqual(['r1-b-1']);
    expect(run.node('b')).toMatchObject({ cacheStatus: 'SKIPPED', cacheReason: 'upstream-reran', inputs: { x: { value: 42 } } });
  });

  test('uncached success: succeeded at once, the reader starts, nothing is written', () => {
    const run = new DecideRun(pair({ cached: false }));
    run.tick();
    const done = run.finished(okResult(run.state, 'a', 'x'));
    expect(run.node('a')).toMatchObject({ phase: 'succeeded', output: { value: 'x' } });
    expect(writesOf(done)).toEqual([]);
    expect(run.node('b').inputs).toEqual({ x: { value: 'x' } });
  });

  test('a retryable failure with retries left dispatches attempt 2 (node:retrying); out of retries the node fails, its reader aborts and the run fails', () => {
    const run = new DecideRun(pair({ cached: false, retries: 1 }));
    run.tick();
    const retry = run.finished(failedResult(run.state, 'a'));
    expect(attemptsOf(retry).map((a) => a.id)).toEqual(['r1-a-2']);
    expect(eventsOf(retry)).toMatchObject([{ type: 'node:retrying', attempt: 2, message: 'attempt 1 failed: boom in a' }]);
    run.finished(failedResult(run.state, 'a', { message: 'again' }));
    expect(run.node('a')).toMatchObject({ phase: 'failed', attempts: 2, error: { message: 'again' } });
    expect(run.node('b').phase).toBe('aborted');
    expect(run.state.run.status).toBe('failed');
  });

  test('an output failing the output schema is not written: PUT_FAILURE saying why, with a warning', () => {
    const run = new DecideRun(pair({ outputSchema: { type: 'number' } }));
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    const done = run.finished(okResult(run.state, 'a', 'not a number'));
    expect(writesOf(done)).toEqual([]);
    expect(run.node('a')).toMatchObject({ phase: 'succeeded', cacheStatus: 'PUT_FAILURE' });
    expect(run.node('a').cacheReason).toMatch(/^not cached: the output does not match the task's output schema/);
    expect(eventsOf(done).find((e) => e.type === 'node:cache-corrupt')).toMatchObject({ level: 'warn', nodeId: 'a' });
  });
});
