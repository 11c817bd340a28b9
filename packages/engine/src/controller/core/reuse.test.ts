import { describe, expect, test } from 'vitest';
import { hashJson } from '../../cache/canonical-hash.js';
import type { Json, NodeValue } from '../../json.js';
import type { CacheEntry } from '../../ports/cache-catalog.js';
import type { AttemptResult, TaskAttempt } from '../../ports/task-dispatcher.js';
import { validateSpec } from '../../spec/validate-spec.js';
import type { NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import { newRunState } from '../../state/new-run.js';
import type { ReusePlan } from '../../state/reuse-plan.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { dynamicNode, lit, ref, subworkflowNode, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import type { EngineEvent } from '../vocabulary/commands.js';
import type { LookupOutcome, RunEvent } from '../vocabulary/events.js';
import { decide } from './decide.js';
import { planReuse, retryRoots } from './reuse-plan.js';
import { previewReuse } from './reuse-preview.js';

const T0 = new Date('2025-03-01T12:00:00.000Z');

type Body = (inputs: { [name: string]: Json }, attempt: TaskAttempt) => Json | Error;

/**
 * Plays the shell by hand, synchronously: lookups against a shared catalog (a Map), attempts run by
 * `bodies` (a thrown-like Error result fails the attempt, not retryable), writes into the catalog.
 * Records every attempt, so a test can say what executed.
 */
class World {
  readonly catalog = new Map<string, CacheEntry>();
  readonly executed: string[] = [];
  readonly events: EngineEvent[] = [];

  constructor(
    readonly bodies: { [task: string]: Body },
    /** Tasks whose output type declares hashWith (their results carry a content hash). */
    readonly hashed: ReadonlySet<string> = new Set(),
  ) {}

  run(id: string, spec: WorkflowSpec, options: { inputs?: { [name: string]: NodeValue }; reuse?: ReusePlan } = {}): RunState {
    let state = newRunState({ id, spec: validateSpec(spec), inputs: options.inputs ?? {}, project: 'demo', domain: 'dev', options: { overwriteCache: false, ...(options.reuse === undefined ? {} : { reuse: options.reuse }) }, now: T0 });
    const queue: RunEvent[] = [{ type: 'run:tick' }];
    for (let steps = 0; queue.length > 0; steps++) {
      if (steps > 1000) throw new Error('run did not settle');
      const decision = decide(state, [queue.shift() as RunEvent], T0);
      state = decision.state;
      for (const command of decision.commands) {
        switch (command.type) {
          case 'EmitEvent':
            this.events.push(command.event);
            break;
          case 'LookupCache': {
            const results: LookupOutcome[] = command.lookups.map(({ nodeId, key, kind }) => {
              const entry = this.catalog.get(`${kind}:${key}`);
              return entry === undefined ? { nodeId, key, kind, outcome: 'miss' } : { nodeId, key, kind, outcome: 'hit', entry };
            });
            queue.push({ type: 'cache:looked-up', results });
            break;
          }
          case 'DispatchTask':
            for (const attempt of command.attempts) queue.push({ type: 'attempt:finished', result: this.execute(attempt) });
            break;
          case 'WriteCache':
            for (const entry of command.entries) this.catalog.set(`${entry.kind}:${entry.key}`, { ...entry, durationMs: entry.durationMs ?? null, createdAt: T0 });
            queue.push({ type: 'cache:written', writes: command.writes, ok: true });
            break;
          case 'CancelAttempts':
          case 'AcquireReservations':
          case 'ReleaseReservations':
            break; // these runs are not cancelled and have no serialized tasks
        }
      }
    }
    return state;
  }

  private execute(attempt: TaskAttempt): AttemptResult {
    this.executed.push(`${attempt.runId}:${attempt.nodeId}`);
    const body = this.bodies[attempt.task];
    if (body === undefined) throw new Error(`no body for ${attempt.task}`);
    const base = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: T0, finishedAt: T0 };
    const output = body(attempt.inputs, attempt);
    if (output instanceof Error) return { ...base, ok: false, error: { name: 'Error', message: output.message, retryable: false } };
    return { ...base, ok: true, output, outputHash: this.hashed.has(attempt.task) ? hashJson(output) : null };
  }

  ran(runId: string): string[] {
    return this.executed.filter((e) => e.startsWith(`${runId}:`)).map((e) => e.slice(runId.length + 1));
  }
}

const statuses = (state: RunState) => Object.fromEntries(Object.values(state.nodes).map((n: NodeExecution) => [n.nodeId, n.cacheStatus === 'SKIPPED' ? `SKIPPED(${n.cacheReason})` : n.cacheStatus]));
const phases = (state: RunState) => Object.fromEntries(Object.values(state.nodes).map((n) => [n.nodeId, n.phase]));

/**
 *   x ─▶ a (uncached) ─▶ b (cached) ─▶ c (cached)
 *   x ─▶ d (uncached)
 */
function chain(options: { aVersion?: string; failB?: () => boolean } = {}): { spec: WorkflowSpec; world: World } {
  const a: NodeSpec = { ...taskNode('a', 't.a', { x: wfInput('x') }, { cache: null }), taskVersion: options.aVersion ?? 'v1' };
  const spec = workflowSpec(
    'wf.chain',
    [a, taskNode('b', 't.b', { v: ref('a') }), taskNode('c', 't.c', { v: ref('b') }), taskNode('d', 't.d', { x: wfInput('x') }, { cache: null })],
    { inputs: { x: true }, outputs: { c: ref('c'), d: ref('d') } },
  );
  const world = new World({
    't.a': ({ x }) => Number(x) + 1,
    't.b': ({ v }) => (options.failB?.() === true ? new Error('b broke') : Number(v) * 10),
    't.c': ({ v }) => Number(v) + 5,
    't.d': ({ x }) => `d${JSON.stringify(x)}`,
  });
  return { spec, world };
}

describe('resume', () => {
  test('reuses what is not downstream of the resume point (uncached too), reruns the point (SKIPPED resume) and cascades below it', () => {
    const { spec, world } = chain();
    const first = world.run('r1', spec, { inputs: { x: { value: 1 } } });
    expect(first.run.outputs).toEqual({ c: 25, d: 'd1' });
    const plan = planReuse(first, new Set(['b']), 'resume', 'b');
    expect(Object.keys(plan.nodes).sort()).toEqual(['a', 'd']);
    const second = world.run('r2', spec, { inputs: { x: { value: 1 } }, reuse: plan });
    expect(statuses(second)).toEqual({ a: 'RECOVERED', b: 'SKIPPED(resume)', c: 'SKIPPED(upstream-reran)', d: 'RECOVERED' });
    expect(world.ran('r2')).toEqual(['b', 'c']);
    expect(second.run.outputs).toEqual({ c: 25, d: 'd1' });
    expect(second.nodes['a']?.cacheReason).toBe('from run r1');
    // The rerun repopulated its entries; the reused nodes wrote nothing.
    expect([...world.catalog.values()].filter((e) => e.runId === 'r2').map((e) => e.nodeId).sort()).toEqual(['b', 'c']);
  });

  test('a changed definition or input is not reused, and what reads from it runs too (the cascade)', () => {
    const { spec, world } = chain();
    const first = world.run('r1', spec, { inputs: { x: { value: 1 } } });
    const changed = chain({ aVersion: 'v2' }).spec;
    const second = world.run('r2', changed, { inputs: { x: { value: 1 } }, reuse: planReuse(first, new Set(['c']), 'resume', 'c') });
    expect(statuses(second)).toEqual({ a: 'DISABLED', b: 'SKIPPED(upstream-reran)', c: 'SKIPPED(resume)', d: 'RECOVERED' });
    const third = world.run('r3', spec, { inputs: { x: { value: 2 } }, reuse: planReuse(first, new Set(['c']), 'resume', 'c') });
    expect(world.ran('r3')).toEqual(['a', 'd', 'b', 'c']);
    expect(third.run.outputs).toEqual({ c: 35, d: 'd2' });
  });

  test('a downstream node fed only by a content-addressed output of the resume point is not reused from the earlier run: it is looked up (and hits)', () => {
    const spec = workflowSpec('wf.hashed', [taskNode('a', 't.a', { x: wfInput('x') }, { outputHashed: true }), taskNode('b', 't.b', { v: ref('a') })], { inputs: { x: true }, outputs: { b: ref('b') } });
    const world = new World({ 't.a': ({ x }) => x ?? null, 't.b': ({ v }) => [v ?? null] }, new Set(['t.a']));
    const first = world.run('r1', spec, { inputs: { x: { value: 3 } } });
    const second = world.run('r2', spec, { inputs: { x: { value: 3 } }, reuse: planReuse(first, new Set(['a']), 'resume', 'a') });
    expect(statuses(second)).toEqual({ a: 'SKIPPED(resume)', b: 'HIT' });
  });

  test('the preview names what will be reused and what will run', () => {
    const { spec, world } = chain();
    const first = world.run('r1', spec, { inputs: { x: { value: 1 } } });
    const state = newRunState({ id: 'r2', spec: validateSpec(spec), inputs: { x: { value: 1 } }, project: 'demo', domain: 'dev', options: { overwriteCache: false, reuse: planReuse(first, new Set(['b']), 'resume', 'b') }, now: T0 });
    expect(previewReuse(state)).toEqual({ fromRun: 'r1', reason: 'resume', reuse: ['a', 'd'], run: ['b', 'c'] });
    const changedInput = { ...state, run: { ...state.run, inputs: { x: { value: 9 } } } };
    expect(previewReuse(changedInput)).toEqual({ fromRun: 'r1', reason: 'resume', reuse: [], run: ['a', 'b', 'c', 'd'] });
  });
});

describe('retry', () => {
  test('reruns what failed and what it aborted, reuses the rest', () => {
    let failing = true;
    const { spec, world } = chain({ failB: () => failing });
    const first = world.run('r1', spec, { inputs: { x: { value: 1 } } });
    expect(first.run.status).toBe('failed');
    expect(phases(first)).toEqual({ a: 'succeeded', b: 'failed', c: 'aborted', d: 'succeeded' });
    expect([...retryRoots(first)].sort()).toEqual(['b', 'c']);
    failing = false;
    const second = world.run('r2', spec, { inputs: { x: { value: 1 } }, reuse: planReuse(first, retryRoots(first), 'retry') });
    expect(second.run.status).toBe('succeeded');
    expect(statuses(second)).toEqual({ a: 'RECOVERED', b: 'POPULATED', c: 'SKIPPED(upstream-reran)', d: 'RECOVERED' });
    expect(world.ran('r2')).toEqual(['b', 'c']);
  });

  test('a cancelled run leaves nodes aborted or unfinished: every one of them reruns', () => {
    const { spec, world } = chain();
    const done = world.run('r1', spec, { inputs: { x: { value: 1 } } });
    // What a cancel leaves, in either form: an unfinished node, or one aborted with the cancel as its reason.
    const cancelled: RunState = {
      run: { ...done.run, status: 'failed' },
      nodes: {
        ...done.nodes,
        b: { ...(done.nodes['b'] as NodeExecution), phase: 'dispatched', output: null, finishedAt: null },
        c: { ...(done.nodes['c'] as NodeExecution), phase: 'pending', output: null, inputs: null },
        d: { ...(done.nodes['d'] as NodeExecution), phase: 'aborted', output: null, error: { name: 'RunCancelled', message: 'cancelled', retryable: false } },
      },
    };
    expect([...retryRoots(cancelled)].sort()).toEqual(['b', 'c', 'd']);
    world.executed.length = 0;
    const second = world.run('r2', spec, { inputs: { x: { value: 1 } }, reuse: planReuse(cancelled, retryRoots(cancelled), 'retry') });
    expect(statuses(second)).toEqual({ a: 'RECOVERED', b: 'HIT', c: 'HIT', d: 'DISABLED' });
    expect(world.ran('r2')).toEqual(['d']);
  });
});

describe('containers', () => {
  /** A dynamic node fanning out over `n` children of task t.child; `failChild` fails one of them. */
  function fanOut(failChild: () => number | null) {
    let bodies = 0;
    const compiled = (n: number): WorkflowSpec =>
      workflowSpec('wf.fan.dyn', Array.from({ length: n }, (_, i) => taskNode(`c${i}`, 't.child', { i: lit(i) }, { cache: null })), { outputs: { result: ref(`c${n - 1}`) } });
    const world = new World({
      't.dyn': ({ n }) => {
        bodies += 1;
        return compiled(Number(n)) as unknown as Json;
      },
      't.child': ({ i }) => (failChild() === i ? new Error(`child ${String(i)} broke`) : Number(i) * 2),
      't.after': ({ v }) => Number(v) + 1,
    });
    const spec = workflowSpec('wf.fan', [dynamicNode('dyn', 't.dyn', { n: wfInput('n') }, { cache: null }), taskNode('after', 't.after', { v: ref('dyn') }, { cache: null })], { inputs: { n: true }, outputs: { out: ref('after') } });
    return { world, spec, bodies: () => bodies };
  }

  test('reusing a dynamic node reuses its expansion: the body does not run, its children are RECOVERED', () => {
    const { world, spec, bodies } = fanOut(() => null);
    const first = world.run('r1', spec, { inputs: { n: { value: 3 } } });
    const second = world.run('r2', spec, { inputs: { n: { value: 3 } }, reuse: planReuse(first, new Set(['after']), 'resume', 'after') });
    expect(bodies()).toBe(1);
    expect(statuses(second)).toEqual({ dyn: 'RECOVERED', 'dyn.c0': 'RECOVERED', 'dyn.c1': 'RECOVERED', 'dyn.c2': 'RECOVERED', after: 'SKIPPED(resume)' });
    expect(second.run.outputs).toEqual({ out: 5 });
  });

  test('retrying a dynamic node whose child failed replays its expansion and reruns only that child and its downstream', () => {
    let failing: number | null = 1;
    const { world, spec, bodies } = fanOut(() => failing);
    const first = world.run('r1', spec, { inputs: { n: { value: 3 } } });
    expect(phases(first)).toMatchObject({ dyn: 'failed', 'dyn.c1': 'failed', after: 'aborted' });
    failing = null;
    const second = world.run('r2', spec, { inputs: { n: { value: 3 } }, reuse: planReuse(first, retryRoots(first), 'retry') });
    expect(bodies()).toBe(1);
    expect(statuses(second)).toEqual({ dyn: 'RECOVERED', 'dyn.c0': 'RECOVERED', 'dyn.c1': 'DISABLED', 'dyn.c2': 'RECOVERED', after: 'DISABLED' });
    expect(world.ran('r2')).toEqual(['dyn.c1', 'after']);
    expect(second.run.outputs).toEqual({ out: 5 });
  });

  test('a resume point inside a sub-workflow: its siblings are reused, it and its readers rerun; what reads the container is not reused but follows the cache rules', () => {
    const inner = workflowSpec('wf.inner', [taskNode('p', 't.p', { x: wfInput('x') }), taskNode('q', 't.q', { v: ref('p') }), taskNode('s', 't.s', { x: wfInput('x') })], { inputs: { x: true }, outputs: { q: ref('q'), s: ref('s') } });
    const spec = workflowSpec('wf.outer', [subworkflowNode('sub', inner, { x: wfInput('x') }), taskNode('z', 't.z', { v: ref('sub', 's') })], { inputs: { x: true }, outputs: { z: ref('z') } });
    const world = new World({ 't.p': ({ x }) => Number(x) + 1, 't.q': ({ v }) => Number(v) * 2, 't.s': ({ x }) => `s${JSON.stringify(x)}`, 't.z': ({ v }) => `z${JSON.stringify(v)}` });
    const first = world.run('r1', spec, { inputs: { x: { value: 1 } } });
    const second = world.run('r2', spec, { inputs: { x: { value: 1 } }, reuse: planReuse(first, new Set(['sub.p']), 'resume', 'sub.p') });
    // z reads only sub.s, which was reused: nothing it reads reran, so it is looked up (and hits).
    expect(statuses(second)).toEqual({ sub: 'RECOVERED', 'sub.p': 'SKIPPED(resume)', 'sub.q': 'SKIPPED(upstream-reran)', 'sub.s': 'RECOVERED', z: 'HIT' });
    expect(world.ran('r2')).toEqual(['sub.p', 'sub.q']);
    expect(second.run.outputs).toEqual(first.run.outputs);
  });

  test('a resume point that is a container reruns everything inside it', () => {
    const { world, spec, bodies } = fanOut(() => null);
    const first = world.run('r1', spec, { inputs: { n: { value: 2 } } });
    const second = world.run('r2', spec, { inputs: { n: { value: 2 } }, reuse: planReuse(first, new Set(['dyn']), 'resume', 'dyn') });
    expect(bodies()).toBe(2);
    expect(statuses(second)).toEqual({ dyn: 'SKIPPED(resume)', 'dyn.c0': 'SKIPPED(resume)', 'dyn.c1': 'SKIPPED(resume)', after: 'DISABLED' });
    expect(hashJson(second.run.outputs)).toBe(hashJson(first.run.outputs));
  });
});
