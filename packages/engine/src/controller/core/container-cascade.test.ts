/**
 * Decide-level tests of the cascade through containers (issue 7, item 2) and of container outputs
 * with hashed members through the catalog. DESIGN.md: "an object or array binding, or a
 * sub-workflow or dynamic output, is content-addressed only if every member that came from a rerun
 * node is."
 */
import { describe, expect, test } from 'vitest';
import type { Json } from '../../json.js';
import type { CacheEntry, NewCacheEntry } from '../../ports/cache-catalog.js';
import { validateSpec } from '../../spec/validate-spec.js';
import { WORKFLOW_SPEC_VERSION, type Binding, type DynamicNodeSpec, type NodeSpec, type SubworkflowNodeSpec, type WorkflowSpec } from '../../spec/workflow-spec.js';
import { newRunState } from '../../state/new-run.js';
import type { RunState } from '../../state/run-state.js';
import { cacheSettings, lit, obj, ref, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import type { Command, EngineEvent } from '../vocabulary/commands.js';
import { decide, type Decision } from './decide.js';
import type { LookupOutcome, RunEvent } from '../vocabulary/events.js';

const T0 = new Date('2025-03-01T12:00:00.000Z');
const RUN = 'r1';

// --- a small harness in the style of decide.test.ts ----------------------------------------------------

class Sim {
  state: RunState;
  last!: Decision;

  constructor(spec: WorkflowSpec) {
    this.state = newRunState({ id: RUN, spec: validateSpec(spec), inputs: {}, project: 'demo', domain: 'dev', options: { overwriteCache: false }, now: T0 });
  }

  feed(...events: RunEvent[]): Decision {
    const decision = decide(this.state, events, T0);
    if (decision.changed) this.state = { run: { ...decision.state.run, version: this.state.run.version + 1 }, nodes: decision.state.nodes };
    this.last = decision;
    return decision;
  }

  node(id: string) {
    const node = this.state.nodes[id];
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  status(id: string): [string, string | null, string | null] {
    const node = this.node(id);
    return [node.phase, node.cacheStatus, node.cacheReason];
  }

  ok(id: string, output: Json, hash: string | null = null): RunEvent {
    const attempt = this.node(id).attempts;
    return { type: 'attempt:finished', result: { attemptId: `${RUN}-${id}-${attempt}`, runId: RUN, nodeId: id, attempt, startedAt: T0, finishedAt: T0, ok: true, output, outputHash: hash } };
  }

  entry(id: string, value: Json, valueHash: string | null): CacheEntry {
    const node = this.node(id);
    if (node.cacheKey === null || node.cacheKeyParts === null) throw new Error(`node ${id} has no key`);
    return { key: node.cacheKey, kind: 'output', project: 'demo', domain: 'dev', task: node.task, parts: node.cacheKeyParts, value, valueHash, runId: 'r0', nodeId: id, durationMs: null, createdAt: T0 };
  }

  hit(id: string, value: Json, valueHash: string | null = null): LookupOutcome {
    return { nodeId: id, key: this.node(id).cacheKey as string, kind: 'output', outcome: 'hit', entry: this.entry(id, value, valueHash) };
  }

  miss(id: string, kind: 'output' | 'future' = 'output'): LookupOutcome {
    return { nodeId: id, key: this.node(id).cacheKey as string, kind, outcome: 'miss' };
  }

  inputDigest(id: string, input: string): string | undefined {
    return this.node(id).cacheKeyParts?.inputs[input];
  }
}

const looked = (...results: LookupOutcome[]): RunEvent => ({ type: 'cache:looked-up', results });

function lookedUpIds(decision: Decision): string[] {
  const command = decision.commands.find((c): c is Extract<Command, { type: 'LookupCache' }> => c.type === 'LookupCache');
  // The lookups that decide a status: not the shadow lookups of the early-cutoff report (core/cutoff.ts).
  return (command?.lookups ?? []).filter((l) => l.shadow === undefined).map((l) => l.nodeId);
}

function writtenEntries(decision: Decision): NewCacheEntry[] {
  const command = decision.commands.find((c): c is Extract<Command, { type: 'WriteCache' }> => c.type === 'WriteCache');
  return command?.entries ?? [];
}

function events(decision: Decision): EngineEvent[] {
  return decision.commands.flatMap((c) => (c.type === 'EmitEvent' ? [c.event] : []));
}

function sub(name: string, nodes: NodeSpec[], outputs: { [name: string]: Binding }, inputs: string[] = []): WorkflowSpec {
  return { specVersion: WORKFLOW_SPEC_VERSION, name, inputs: Object.fromEntries(inputs.map((i) => [i, true])), hashedInputs: [], nodes, outputs };
}

function subworkflowNode(id: string, workflow: WorkflowSpec, inputs: { [name: string]: Binding } = {}, cached = false): SubworkflowNodeSpec {
  const base = taskNode(id, workflow.name, inputs, cached ? {} : { cache: null });
  return { ...base, kind: 'subworkflow', workflow };
}

function dynamicNode(id: string, inputs: { [name: string]: Binding } = {}, cached = false): DynamicNodeSpec {
  return { ...taskNode(id, `dyn.${id}`, inputs, cached ? {} : { cache: null }), kind: 'dynamic' };
}

/** Producers that execute in every run (caching off): one hashWith output, one plain. */
const producers = (): NodeSpec[] => [taskNode('hashed', 't.hashed', {}, { cache: null, outputHashed: true }), taskNode('plain', 't.plain', {}, { cache: null })];
const mixedOutputs = { hashed: ref('hashed'), plain: ref('plain') };

/** Consumers of a container `c`: the whole output, the hashed field, the plain field. */
const consumers = (c: string) => [taskNode('both', 't.consume', { both: ref(c) }), taskNode('x', 't.consume', { x: ref(c, 'hashed') }), taskNode('y', 't.consume', { y: ref(c, 'plain') })];

// --- tests -----------------------------------------------------------------------------------------------

describe('cascade through a sub-workflow output, per field', () => {
  const spec = () =>
    workflowSpec('wf', [subworkflowNode('inner', sub('inner', producers(), mixedOutputs)), ...consumers('inner'), ...producers().map((p) => ({ ...p, id: `flat_${p.id}` })) as never[], taskNode('flat', 't.consume', { both: obj({ hashed: ref('flat_hashed'), plain: ref('flat_plain') }) })]);

  function ranBoth(): Sim {
    const sim = new Sim(spec());
    sim.feed({ type: 'run:tick' });
    sim.feed(sim.ok('inner.hashed', 'bytes', 'H'), sim.ok('inner.plain', 'p'), sim.ok('flat_hashed', 'bytes', 'H'), sim.ok('flat_plain', 'p'));
    return sim;
  }

  test('the whole output mixing a hashed and a rerun plain field cascades, exactly like the same data wired flat', () => {
    const sim = ranBoth();
    expect(sim.status('flat')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    expect(sim.status('both')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    expect(events(sim.last).find((e) => e.nodeId === 'both' && e.type === 'node:started')?.message).toBe("upstream node 'inner.plain' executed");
  });

  test('the hashed field alone is content-addressed: looked up, keyed by its hash', () => {
    const sim = ranBoth();
    expect(lookedUpIds(sim.last)).toEqual(['x']);
    expect(sim.status('x')).toEqual(['looking-up', null, null]);
    expect(sim.inputDigest('x', 'x')).toBe('hash:H');
    expect(sim.status('y')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
  });

  test('the container output records its hashed member, and the whole is keyed like the flat object', () => {
    const sim = ranBoth();
    expect(sim.node('inner').output).toEqual({ value: { hashed: 'bytes', plain: 'p' }, members: { object: { hashed: 'H' } } });
    expect(sim.inputDigest('both', 'both')).toMatch(/^tree:/);
    expect(sim.inputDigest('both', 'both')).toBe(sim.inputDigest('flat', 'both'));
  });

  test('when the plain field did not rerun, the whole output is looked up', () => {
    const nodes = [taskNode('hashed', 't.hashed', {}, { cache: null, outputHashed: true }), taskNode('plain', 't.plain', {})];
    const sim = new Sim(workflowSpec('wf', [subworkflowNode('inner', sub('inner', nodes, mixedOutputs)), ...consumers('inner')]));
    sim.feed({ type: 'run:tick' });
    sim.feed(looked(sim.hit('inner.plain', 'p')));
    const decision = sim.feed(sim.ok('inner.hashed', 'bytes', 'H'));
    expect(lookedUpIds(decision).sort()).toEqual(['both', 'x', 'y']);
  });
});

describe('cascade through a dynamic output, per field', () => {
  const compiled = sub('dyn.dyn', producers(), { result: obj(mixedOutputs) });

  function ranBoth(cached = false): Sim {
    const sim = new Sim(workflowSpec('wf', [dynamicNode('dyn', {}, cached), ...consumers('dyn')]));
    sim.feed({ type: 'run:tick' });
    if (cached) sim.feed(looked(sim.miss('dyn'), sim.miss('dyn', 'future')));
    sim.feed(sim.ok('dyn', compiled as unknown as Json));
    sim.feed(sim.ok('dyn.hashed', 'bytes', 'H'), sim.ok('dyn.plain', 'p'));
    return sim;
  }

  test('whole: cascades; hashed field: looked up by its hash; plain field: cascades', () => {
    const sim = ranBoth();
    expect(sim.status('both')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    expect(sim.status('x')).toEqual(['looking-up', null, null]);
    expect(sim.inputDigest('x', 'x')).toBe('hash:H');
    expect(sim.status('y')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
  });

  test('a cached dynamic writes its members beside its value; a HIT reads them back and keys downstream alike', () => {
    const first = ranBoth(true);
    const entry = writtenEntries(first.last).find((e) => e.nodeId === 'dyn');
    expect(entry).toMatchObject({ value: { hashed: 'bytes', plain: 'p' }, valueHash: 'members:{"object":{"hashed":"H"}}' });
    const executedKey = first.node('x').cacheKey;

    const second = new Sim(workflowSpec('wf', [dynamicNode('dyn', {}, true), ...consumers('dyn')]));
    second.feed({ type: 'run:tick' });
    const decision = second.feed(looked(second.hit('dyn', { plain: 'p', hashed: 'other bytes, same hash' }, entry?.valueHash ?? null)));
    expect(second.status('dyn')).toEqual(['succeeded', 'HIT', 'from run r0']);
    // A HIT container did not rerun: all three readers are looked up, with the keys an execution gives.
    expect(lookedUpIds(decision).sort()).toEqual(['both', 'x', 'y']);
    expect(second.node('x').cacheKey).toBe(executedKey);
    expect(second.inputDigest('both', 'both')).toBe(first.inputDigest('both', 'both'));
  });

  test('an entry whose members do not fit its value is corrupt: a miss with a warning, never a crash', () => {
    const sim = new Sim(workflowSpec('wf', [dynamicNode('dyn', {}, true), ...consumers('dyn')]));
    sim.feed({ type: 'run:tick' });
    const decision = sim.feed(looked(sim.hit('dyn', { hashed: 'bytes' }, 'members:{"object":{"gone":"H"}}'), sim.miss('dyn', 'future')));
    expect(sim.status('dyn')).toEqual(['dispatched', 'MISS', 'corrupt entry: its hashed members do not fit its value']);
    expect(events(decision).some((e) => e.type === 'node:cache-corrupt' && e.level === 'warn')).toBe(true);
  });

  test('a container entry in the old encoding (a bare hash of member digests) is corrupt: a miss, repopulated with members', () => {
    const sim = new Sim(workflowSpec('wf', [dynamicNode('dyn', {}, true), ...consumers('dyn')]));
    sim.feed({ type: 'run:tick' });
    sim.feed(looked(sim.hit('dyn', { hashed: 'bytes', plain: 'p' }, 'c0ffee'), sim.miss('dyn', 'future')));
    expect(sim.status('dyn')).toEqual(['dispatched', 'MISS', 'corrupt entry: a container output hash written before hashed members were recorded']);
  });

  test('a dynamic that ran on data from a rerun node taints what its body returned as literals', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('up', 't.up', {}, { cache: null }), dynamicNode('dyn', { v: ref('up') }), taskNode('c', 't.consume', { c: ref('dyn') })]));
    sim.feed({ type: 'run:tick' });
    sim.feed(sim.ok('up', 3));
    expect(sim.status('dyn')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    sim.feed(sim.ok('dyn', sub('dyn.dyn', [], { result: lit({ doubled: 6 }) }) as unknown as Json));
    expect(sim.status('c')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
  });
});

describe('cascade through a container input passed straight to its output', () => {
  // outer: up (reran, plain) -> mid({ v: up }); mid: inner({ v }) -> { same: inner.same }; inner: { same: v } (no nodes).
  const inner = sub('inner', [], { same: wfInput('v') }, ['v']);
  const mid = sub('mid', [subworkflowNode('inner', inner, { v: wfInput('v') })], { same: ref('inner', 'same'), lit: lit('constant') }, ['v']);

  test('a reader of the passed-through field is fed by the rerun node upstream of the container', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('up', 't.up', {}, { cache: null }), subworkflowNode('mid', mid, { v: ref('up') }), taskNode('c', 't.consume', { c: ref('mid', 'same') }), taskNode('k', 't.consume', { k: ref('mid', 'lit') })]));
    sim.feed({ type: 'run:tick' });
    const decision = sim.feed(sim.ok('up', 'fresh'));
    expect(sim.node('mid').output?.value).toEqual({ same: 'fresh', lit: 'constant' });
    expect(sim.status('c')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    expect(events(decision).find((e) => e.nodeId === 'c' && e.type === 'node:started')?.message).toBe("upstream node 'up' executed");
    // A sub-workflow's literal is its definition's, not data from the rerun node.
    expect(sim.status('k')).toEqual(['looking-up', null, null]);
  });

  test('a hashed input passed through stays content-addressed', () => {
    const spec = workflowSpec('wf', [taskNode('up', 't.up', {}, { cache: null, outputHashed: true }), subworkflowNode('mid', mid, { v: ref('up') }), taskNode('c', 't.consume', { c: ref('mid', 'same') })]);
    const sim = new Sim(spec);
    sim.feed({ type: 'run:tick' });
    sim.feed(sim.ok('up', 'fresh', 'HU'));
    expect(sim.status('c')).toEqual(['looking-up', null, null]);
    expect(sim.inputDigest('c', 'c')).toBe('hash:HU');
  });
});

describe('node-level cached sub-workflow', () => {
  test('its entry carries the members, and a HIT restores them', () => {
    const inner = sub('inner', producers(), mixedOutputs);
    const spec = workflowSpec('wf', [{ ...subworkflowNode('inner', inner), cache: cacheSettings() }, taskNode('x', 't.consume', { x: ref('inner', 'hashed') })]);
    const sim = new Sim(spec);
    sim.feed({ type: 'run:tick' });
    sim.feed(looked(sim.miss('inner')));
    const decision = sim.feed(sim.ok('inner.hashed', 'bytes', 'H:members:'), sim.ok('inner.plain', 'p'));
    expect(writtenEntries(decision).find((e) => e.nodeId === 'inner')?.valueHash).toBe('members:{"object":{"hashed":"H:members:"}}');
    expect(sim.inputDigest('x', 'x')).toBe('hash:H:members:');
  });
});
