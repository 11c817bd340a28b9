/**
 * Rounds cost O(what changed) (issue 9, item 1): on a wide run, a decision that applies one result
 * (or a small batch) touches the same number of node records whether the run has 1,000 nodes or
 * 20,000. Counted, not timed, so the test is deterministic on a loaded machine: the workspace's
 * node map is a Proxy that counts every read, write, membership test and key listing (a scan of
 * the run, `Object.values(nodes)`, counts once per node), and RunIndex.observe calls are counted.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { Json } from '../../json.js';
import { validateSpec } from '../../spec/validate-spec.js';
import { newRunState } from '../../state/new-run.js';
import type { RunState } from '../../state/run-state.js';
import { arr, lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import type { Command } from '../vocabulary/commands.js';
import type { LookupOutcome, RunEvent } from '../vocabulary/events.js';
import { decideInPlace } from './decide.js';
import { workspaceOf, type RunWorkspace } from './draft.js';
import { RunIndex } from './run-index.js';

const T0 = new Date('2025-03-01T12:00:00.000Z');
/** Results applied (and measured) per run, from the middle of the run: not the first round, which starts every node, nor the last, which starts the sink. */
const SAMPLE = 200;

/** N no-op tasks side by side and a sink reading all of them; cached or not. */
function wideRun(n: number, cached: boolean): RunWorkspace {
  const tasks = Array.from({ length: n }, (_, i) => taskNode(`t${i}`, 'noop', { i: lit(i) }, cached ? {} : { cache: null }));
  const sink = taskNode('sink', 'sink', { all: arr(...tasks.map((t) => ref(t.id))) }, cached ? {} : { cache: null });
  const spec = validateSpec(workflowSpec('wide', [...tasks, sink], { outputs: { out: ref('sink') } }));
  return workspaceOf(newRunState({ id: 'r1', spec, inputs: {}, project: 'demo', domain: 'dev', options: { overwriteCache: false }, now: T0 }));
}

/** Replaces the workspace's node map by a counting view of it. */
function countNodeAccesses(workspace: RunWorkspace): { touches: number } {
  const counter = { touches: 0 };
  const count = <A extends unknown[], R>(trap: (...args: A) => R) => (...args: A): R => {
    counter.touches += 1;
    return trap(...args);
  };
  workspace.state.nodes = new Proxy(workspace.state.nodes, {
    get: count((target: RunState['nodes'], key: string | symbol) => Reflect.get(target, key)),
    set: count((target: RunState['nodes'], key: string | symbol, value: unknown) => Reflect.set(target, key, value)),
    has: count((target: RunState['nodes'], key: string | symbol) => Reflect.has(target, key)),
    ownKeys: count((target: RunState['nodes']) => Reflect.ownKeys(target)),
    getOwnPropertyDescriptor: count((target: RunState['nodes'], key: string | symbol) => Reflect.getOwnPropertyDescriptor(target, key)),
  });
  return counter;
}

function attemptFinished(workspace: RunWorkspace, id: string, output: Json): RunEvent {
  const attempt = workspace.state.nodes[id]?.attempts ?? 0;
  return { type: 'attempt:finished', result: { attemptId: `r1-${id}-${attempt}`, runId: 'r1', nodeId: id, attempt, startedAt: T0, finishedAt: T0, ok: true, output, outputHash: null } };
}

function hit(workspace: RunWorkspace, id: string, value: Json): LookupOutcome {
  const node = workspace.state.nodes[id];
  if (node?.cacheKey == null || node.cacheKeyParts === null) throw new Error(`${id} has no key`);
  return { nodeId: id, key: node.cacheKey, kind: 'output', outcome: 'hit', entry: { key: node.cacheKey, kind: 'output', project: 'demo', domain: 'dev', task: node.task, parts: node.cacheKeyParts, value, valueHash: null, runId: 'r0', nodeId: id, durationMs: null, createdAt: T0 } };
}

interface Cost {
  /** Most node-record accesses of one measured decision. */
  maxTouches: number;
  /** RunIndex.observe calls over all measured decisions, per applied result. */
  observesPerResult: number;
  /** Commands of the measured decisions (none may be a scan's worth). */
  commands: Command[];
}

/** Applies SAMPLE results from the middle of the run, `batch` per decision, counting what each decision touches. */
function measure(workspace: RunWorkspace, batch: number, event: (ids: string[]) => RunEvent[]): Cost {
  const counter = countNodeAccesses(workspace);
  const observe = vi.spyOn(RunIndex.prototype, 'observe');
  let maxTouches = 0;
  const commands: Command[] = [];
  const start = Math.floor((Object.keys(workspace.state.nodes).length - SAMPLE) / 2);
  for (let i = start; i < start + SAMPLE; i += batch) {
    const ids = Array.from({ length: batch }, (_, j) => `t${i + j}`);
    counter.touches = 0;
    const decision = decideInPlace(workspace, event(ids), T0);
    maxTouches = Math.max(maxTouches, counter.touches);
    commands.push(...decision.commands);
    expect(decision.changedNodes).toEqual(ids);
  }
  const observesPerResult = observe.mock.calls.length / SAMPLE;
  observe.mockRestore();
  return { maxTouches, observesPerResult, commands };
}

function executedWide(n: number): Cost {
  const workspace = wideRun(n, false);
  decideInPlace(workspace, [{ type: 'run:tick' }], T0); // dispatches all n: O(n), once
  return measure(workspace, 1, (ids) => ids.map((id) => attemptFinished(workspace, id, null)));
}

function cachedWide(n: number): Cost {
  const workspace = wideRun(n, true);
  decideInPlace(workspace, [{ type: 'run:tick' }], T0); // looks all n up: O(n), once
  return measure(workspace, 10, (ids) => [{ type: 'cache:looked-up', results: ids.map((id) => hit(workspace, id, 1)) }]);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a decision costs what its events changed, not the size of the run', () => {
  test('executed: one result of a 20,000-wide run touches as many node records as one of a 1,000-wide run', () => {
    const small = executedWide(1_000);
    const large = executedWide(20_000);
    expect(large.maxTouches).toBe(small.maxTouches);
    expect(large.maxTouches).toBeLessThanOrEqual(10);
    expect(large.observesPerResult).toBe(1); // dispatched -> succeeded; nothing else moved
    expect(large.commands.map((c) => c.type)).toEqual(Array.from({ length: SAMPLE }, () => 'EmitEvent'));
  }, 30_000);

  test('cached rerun: a batch of ten hits touches as many node records at 20,000 as at 1,000', () => {
    const small = cachedWide(1_000);
    const large = cachedWide(20_000);
    expect(large.maxTouches).toBe(small.maxTouches);
    expect(large.maxTouches).toBeLessThanOrEqual(10 * 10);
    expect(large.observesPerResult).toBe(1); // looking-up -> succeeded
  }, 30_000);
});
