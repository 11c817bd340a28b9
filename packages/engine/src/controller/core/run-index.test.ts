/**
 * Unit tests of the run index: what `build` derives from a state, and how `observe` and
 * `addChildren` keep it current as nodes move (changed here the way Draft.update and Draft.expand
 * change them). After every step the kept index must equal a fresh build of the same state. The
 * property over random runs and events is in run-index.property.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { validateSpec } from '../../spec/validate-spec.js';
import type { NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import { newRunState, pendingExecution } from '../../state/new-run.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { arr, lit, ref, subworkflowNode, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import type { Command } from '../vocabulary/commands.js';
import type { RunEvent } from '../vocabulary/events.js';
import { decide, decideInPlace } from './decide.js';
import { workspaceOf } from './draft.js';
import { childNodes } from './expand.js';
import { RunIndex } from './run-index.js';

const T0 = new Date('2025-03-01T12:00:00.000Z');

interface Kept {
  state: RunState;
  index: RunIndex;
}

function kept(spec: WorkflowSpec, inputs: RunState['run']['inputs'] = {}): Kept {
  const state = newRunState({ id: 'r1', spec: validateSpec(spec), inputs, project: 'demo', domain: 'dev', options: { overwriteCache: false }, now: T0 });
  return { state, index: RunIndex.build(state) };
}

/** Changes a node as Draft.update does (a new record, the index told), then checks the index against a fresh build. */
function change(run: Kept, id: string, patch: Partial<NodeExecution>): void {
  observed(run, id, patch);
  expectFresh(run);
}

function observed(run: Kept, id: string, patch: Partial<NodeExecution>): void {
  const before = run.state.nodes[id] as NodeExecution;
  const after = { ...before, ...patch };
  run.state.nodes[id] = after;
  run.index.observe(before, after);
}

/** Expands a container as Draft.expand does: its change observed, its children created and added. */
function expand(run: Kept, id: string): NodeSpec[] {
  const spec = run.index.byId.get(id);
  if (spec?.kind !== 'subworkflow') throw new Error(`${id} is not a sub-workflow`);
  // Between the container's change and its children's addition the index is behind: not checked.
  observed(run, id, { phase: 'expanded', subWorkflow: spec.workflow, inputs: {} });
  const children = childNodes(id, spec.workflow, {});
  for (const child of children) run.state.nodes[child.id] = pendingExecution('r1', child.id, child.task);
  run.index.addChildren(id, children, run.state.nodes);
  expectFresh(run);
  return children;
}

function expectFresh(run: Kept): void {
  expect(run.index.snapshot()).toEqual(RunIndex.build(run.state).snapshot());
}

const unsettled = (run: Kept) => Object.fromEntries(run.index.snapshot().unsettledUpstream);

/** r1, r2 -> m (both) -> sink (m and r1, r1 read twice). */
const diamond = () =>
  workflowSpec('wf', [
    taskNode('r1', 't', { i: lit(1) }),
    taskNode('r2', 't', { i: lit(2) }),
    taskNode('m', 't', { x: ref('r1'), y: ref('r2') }),
    taskNode('sink', 't', { xs: arr(ref('m'), ref('r1'), ref('r1', 'f')) }),
  ]);

describe('RunIndex.build on a fresh run', () => {
  test('roots are the candidates; each node counts its distinct upstream nodes; every node is non-terminal', () => {
    const run = kept(diamond());
    const snapshot = run.index.snapshot();
    expect(snapshot).toEqual({
      nodes: ['m', 'r1', 'r2', 'sink'],
      parentOf: [],
      dependents: [
        ['m', ['sink']],
        ['r1', ['m', 'sink']],
        ['r2', ['m']],
      ],
      unsettledUpstream: [
        ['m', 2],
        ['r1', 0],
        ['r2', 0],
        ['sink', 2],
      ],
      runningChildren: [],
      scheduledWrites: [],
      nonTerminal: 4,
    });
    expect(run.index.takeCandidates()).toEqual(['r1', 'r2']);
    expect(run.index.takeCandidates()).toEqual([]); // taken
  });

  test('a node reading only inputs and literals is a root; an empty workflow has nothing to do', () => {
    const run = kept(workflowSpec('wf', [taskNode('a', 't', { x: wfInput('x') })], { inputs: { x: true } }), { x: { value: 1 } });
    expect(run.index.takeCandidates()).toEqual(['a']);
    const empty = kept(workflowSpec('wf', []));
    expect(empty.index.nonTerminal).toBe(0);
    expect(empty.index.takeCandidates()).toEqual([]);
    expect(empty.index.onlyScheduledWritesLeft()).toBe(true);
  });
});

describe('RunIndex.observe through the phases', () => {
  test('a started node stops being a candidate; a settled one counts down its readers, which become candidates at zero', () => {
    const run = kept(diamond());
    run.index.takeCandidates();
    change(run, 'r1', { phase: 'looking-up' });
    expect(unsettled(run)).toEqual({ r2: 0, m: 2, sink: 2 });
    change(run, 'r1', { phase: 'succeeded' });
    expect(unsettled(run)).toEqual({ r2: 0, m: 1, sink: 1 });
    expect(run.index.nonTerminal).toBe(3);
    expect(run.index.takeCandidates()).toEqual([]);

    change(run, 'r2', { phase: 'dispatched' });
    change(run, 'r2', { phase: 'writing' }); // has its output: settles for readers, not terminal
    expect(unsettled(run)).toEqual({ m: 0, sink: 1 });
    expect(run.index.nonTerminal).toBe(3);
    expect(run.index.takeCandidates()).toEqual(['m']);
    change(run, 'r2', { phase: 'succeeded' }); // already settled: m is not counted twice
    expect(unsettled(run)).toEqual({ m: 0, sink: 1 });
    expect(run.index.nonTerminal).toBe(2);
    expect(run.index.candidates.size).toBe(0);
  });

  test('a failed upstream makes its readers candidates at once, whatever else they wait for', () => {
    const run = kept(diamond());
    run.index.takeCandidates();
    change(run, 'r1', { phase: 'dispatched' });
    change(run, 'r1', { phase: 'failed' });
    expect(unsettled(run)).toEqual({ r2: 0, m: 1, sink: 1 });
    expect(run.index.takeCandidates()).toEqual(['m', 'sink']);
    change(run, 'm', { phase: 'aborted' });
    expect(run.index.nonTerminal).toBe(2);
    expect(run.index.takeCandidates()).toEqual(['sink']); // aborted m settles sink again
  });

  test('a change that keeps the phase moves no count', () => {
    const run = kept(diamond());
    change(run, 'r1', { phase: 'dispatched', attempts: 1 });
    const before = run.index.snapshot();
    change(run, 'r1', { attempts: 2, error: { name: 'Error', message: 'retry', retryable: true } });
    expect(run.index.snapshot()).toEqual(before);
  });
});

describe('RunIndex.addChildren', () => {
  /** pre -> s (calls inner: c0 -> c1, and c2 alone) -> post. */
  const withContainer = (nodes = [taskNode('c0', 't', {}), taskNode('c1', 't', { x: ref('c0') }), taskNode('c2', 't', {})]) =>
    workflowSpec('wf', [taskNode('pre', 't', {}), subworkflowNode('s', workflowSpec('inner', nodes), { x: ref('pre') }), taskNode('post', 't', { x: ref('s') })]);

  test('children are registered under their container and counted; the container settles when the last one is terminal', () => {
    const run = kept(withContainer());
    expect(run.index.takeCandidates()).toEqual(['pre']);
    change(run, 'pre', { phase: 'succeeded' });
    expect(run.index.takeCandidates()).toEqual(['s']);
    const children = expand(run, 's');
    expect(children.map((c) => c.id)).toEqual(['s.c0', 's.c1', 's.c2']);
    const snapshot = run.index.snapshot();
    expect(snapshot.parentOf).toEqual([
      ['s.c0', 's'],
      ['s.c1', 's'],
      ['s.c2', 's'],
    ]);
    expect(snapshot.runningChildren).toEqual([['s', 3]]);
    expect(snapshot.nonTerminal).toBe(5); // s, post, three children
    expect(run.index.takeCandidates()).toEqual(['s.c0', 's.c2']);

    change(run, 's.c0', { phase: 'succeeded' });
    change(run, 's.c2', { phase: 'succeeded' });
    expect(run.index.takeCandidates()).toEqual(['s.c1']);
    expect(run.index.snapshot().runningChildren).toEqual([['s', 1]]);
    change(run, 's.c1', { phase: 'succeeded' });
    expect(run.index.takeCandidates()).toEqual(['s']);
    change(run, 's', { phase: 'succeeded' });
    expect(run.index.snapshot().runningChildren).toEqual([]);
    expect(run.index.takeCandidates()).toEqual(['post']);
  });

  test('a container with no children is a candidate at once (it settles in the same round)', () => {
    const run = kept(withContainer([]));
    change(run, 'pre', { phase: 'succeeded' });
    run.index.takeCandidates();
    expand(run, 's');
    expect(run.index.snapshot().runningChildren).toEqual([['s', 0]]);
    expect(run.index.takeCandidates()).toEqual(['s']);
  });

  test('candidates come in run order: a container, then its children, then what follows it', () => {
    const run = kept(workflowSpec('wf', [subworkflowNode('s', workflowSpec('inner', [taskNode('c0', 't', {})]), {}), taskNode('z', 't', {})]));
    expect(run.index.takeCandidates()).toEqual(['s', 'z']);
    expand(run, 's');
    change(run, 'z', { phase: 'looking-up' });
    run.index.candidates.add('z'); // as if z were still to be looked at
    expect(run.index.takeCandidates()).toEqual(['s.c0', 'z']);
  });
});

describe('RunIndex: scheduled cache-write retries', () => {
  const retry = (retryAtMs: number | null) => ({ failures: 1, lastError: 'down', retryAtMs, final: false });

  test('a writing node with a retry due later is scheduled; once the put is in flight or lands it is not', () => {
    const run = kept(workflowSpec('wf', [taskNode('a', 't', {}), taskNode('b', 't', {})]));
    change(run, 'a', { phase: 'dispatched' });
    change(run, 'a', { phase: 'writing' });
    expect(run.index.scheduledWrites.size).toBe(0);
    change(run, 'a', { cacheWriteRetry: retry(1_000) });
    expect([...run.index.scheduledWrites]).toEqual(['a']);
    expect(run.index.onlyScheduledWritesLeft()).toBe(false); // b is not done
    change(run, 'b', { phase: 'dispatched' });
    change(run, 'b', { phase: 'succeeded' });
    expect(run.index.onlyScheduledWritesLeft()).toBe(true);
    change(run, 'a', { cacheWriteRetry: retry(null) }); // the put is in flight
    expect(run.index.scheduledWrites.size).toBe(0);
    expect(run.index.onlyScheduledWritesLeft()).toBe(false);
    change(run, 'a', { cacheWriteRetry: retry(2_000) });
    change(run, 'a', { phase: 'succeeded', cacheWriteRetry: null });
    expect(run.index.scheduledWrites.size).toBe(0);
    expect(run.index.nonTerminal).toBe(0);
  });
});

describe('regression: due write retries were put in the order they failed when the index was kept, in run order after a reload', () => {
  test('decideInPlace on a kept workspace and decide on the same state put them in one order (run order)', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't.a', {}), taskNode('b', 't.b', {})]);
    const state = newRunState({ id: 'r1', spec: validateSpec(spec), inputs: {}, project: 'demo', domain: 'dev', options: { overwriteCache: false }, now: T0 });
    const workspace = workspaceOf(state);
    const at = (ms: number) => new Date(T0.getTime() + ms);
    const key = (id: string) => workspace.state.nodes[id]?.cacheKey as string;
    const result = (id: string): RunEvent => ({ type: 'attempt:finished', result: { attemptId: `r1-${id}-1`, runId: 'r1', nodeId: id, attempt: 1, startedAt: T0, finishedAt: T0, ok: true, output: id, outputHash: null } });
    const putFailed = (id: string): RunEvent => ({ type: 'cache:written', writes: [{ nodeId: id, kind: 'output' }], ok: false, reason: 'down' });
    decideInPlace(workspace, [{ type: 'run:tick' }], T0);
    decideInPlace(workspace, [{ type: 'cache:looked-up', results: ['a', 'b'].map((id) => ({ nodeId: id, key: key(id), kind: 'output' as const, outcome: 'miss' as const })) }], T0);
    decideInPlace(workspace, [result('a'), result('b')], T0);
    // b's put fails first, then a's: both retries come due by 1 s.
    decideInPlace(workspace, [putFailed('b')], at(10));
    decideInPlace(workspace, [putFailed('a')], at(20));
    const fresh = decide(structuredClone(workspace.state), [{ type: 'run:tick' }], at(1_000));
    const kept = decideInPlace(workspace, [{ type: 'run:tick' }], at(1_000));
    const writes = (commands: Command[]) => commands.flatMap((c) => (c.type === 'WriteCache' ? c.writes.map((w) => w.nodeId) : []));
    expect(writes(fresh.commands)).toEqual(['a', 'b']);
    expect(writes(kept.commands)).toEqual(writes(fresh.commands));
    expect(kept.commands).toEqual(fresh.commands);
  });
});
