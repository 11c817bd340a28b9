import { describe, expect, test } from 'vitest';
import { signatureDigest } from '../../cache/cache-key.js';
import type { ErrorInfo } from '../../errors.js';
import type { Json, NodeValue } from '../../json.js';
import type { CacheEntry, NewCacheEntry } from '../../ports/cache-catalog.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import { validateSpec } from '../../spec/validate-spec.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import { newRunState } from '../../state/new-run.js';
import type { NodeExecution, RunOptions, RunState } from '../../state/run-state.js';
import { arr, lit, obj, ref, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import type { CacheLookup, Command, EngineEvent } from '../vocabulary/commands.js';
import { decide, nextWakeAt, recoverCommands, type Decision } from './decide.js';
import type { LookupOutcome, RunEvent } from '../vocabulary/events.js';

const T0 = new Date('2025-03-01T12:00:00.000Z');
const RUN = 'r1';
const DAY = 86_400_000;

// --- harness: plays the shell by hand, one decision at a time -------------------------------------

/** The signature of a top-level node of the simulated run (what its attempts carry a digest of). */
function nodeSignature(sim: Sim, id: string): WorkflowSpec['nodes'][number]['signature'] {
  const spec = sim.state.run.spec.nodes.find((node) => node.id === id);
  if (spec === undefined) throw new Error(`no node ${id} in the spec`);
  return spec.signature;
}

class Sim {
  state: RunState;
  now = T0;
  last!: Decision;

  constructor(spec: WorkflowSpec, options: { inputs?: { [name: string]: NodeValue }; run?: Partial<RunOptions>; id?: string } = {}) {
    this.state = newRunState({
      id: options.id ?? RUN,
      spec: validateSpec(spec),
      inputs: options.inputs ?? {},
      project: 'demo',
      domain: 'dev',
      options: { overwriteCache: false, ...options.run },
      now: T0,
    });
  }

  /** Runs decide and, like the shell, keeps the state it would have saved. */
  feed(...events: RunEvent[]): Decision {
    const decision = decide(this.state, events, this.now);
    expect(decision.commands.filter((c) => c.type === 'LookupCache').length).toBeLessThanOrEqual(1);
    expect(decision.commands.filter((c) => c.type === 'DispatchTask').length).toBeLessThanOrEqual(1);
    expect(decision.commands.filter((c) => c.type === 'WriteCache').length).toBeLessThanOrEqual(1);
    if (decision.changed) this.state = { run: { ...decision.state.run, version: this.state.run.version + 1 }, nodes: decision.state.nodes };
    this.last = decision;
    return decision;
  }

  tick(): Decision {
    return this.feed({ type: 'run:tick' });
  }

  later(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }

  node(id: string): NodeExecution {
    const node = this.state.nodes[id];
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  key(id: string): string {
    const key = this.node(id).cacheKey;
    if (key === null) throw new Error(`node ${id} has no key`);
    return key;
  }

  entry(id: string, value: Json, options: { createdAt?: Date; hash?: string; runId?: string; durationMs?: number | null } = {}): CacheEntry {
    const node = this.node(id);
    if (node.cacheKey === null || node.cacheKeyParts === null) throw new Error(`node ${id} has no key`);
    return {
      key: node.cacheKey,
      kind: 'output',
      project: 'demo',
      domain: 'dev',
      task: node.task,
      parts: node.cacheKeyParts,
      value,
      valueHash: options.hash ?? null,
      runId: options.runId ?? 'r0',
      nodeId: id,
      durationMs: options.durationMs ?? null,
      createdAt: options.createdAt ?? new Date(this.now.getTime() - 60_000),
    };
  }

  hit(id: string, value: Json, options: { createdAt?: Date; hash?: string; runId?: string; durationMs?: number | null } = {}): LookupOutcome {
    return { nodeId: id, key: this.key(id), kind: 'output', outcome: 'hit', entry: this.entry(id, value, options) };
  }

  miss(id: string): LookupOutcome {
    return { nodeId: id, key: this.key(id), kind: 'output', outcome: 'miss' };
  }

  corrupt(id: string, reason = 'checksum mismatch'): LookupOutcome {
    return { nodeId: id, key: this.key(id), kind: 'output', outcome: 'corrupt', reason };
  }

  lookupFailed(id: string, reason = 'connection reset'): LookupOutcome {
    return { nodeId: id, key: this.key(id), kind: 'output', outcome: 'failure', reason };
  }

  /** The current attempt succeeded now, having run `ranMs` on its worker. */
  ok(id: string, output: Json, hash: string | null = null, ranMs = 0): RunEvent {
    const attempt = this.node(id).attempts;
    return {
      type: 'attempt:finished',
      result: { attemptId: `${RUN}-${id}-${attempt}`, runId: RUN, nodeId: id, attempt, startedAt: new Date(this.now.getTime() - ranMs), finishedAt: this.now, ok: true, output, outputHash: hash },
    };
  }

  failed(id: string, options: { retryable?: boolean; message?: string; attempt?: number } = {}): RunEvent {
    const attempt = options.attempt ?? this.node(id).attempts;
    const error: ErrorInfo = { name: 'Error', message: options.message ?? `boom in ${id}`, retryable: options.retryable ?? true };
    return { type: 'attempt:finished', result: { attemptId: `${RUN}-${id}-${attempt}`, runId: RUN, nodeId: id, attempt, startedAt: this.now, finishedAt: this.now, ok: false, error } };
  }
}

const looked = (...results: LookupOutcome[]): RunEvent => ({ type: 'cache:looked-up', results });
const outputWrites = (nodeIds: string[]) => nodeIds.map((nodeId) => ({ nodeId, kind: 'output' as const }));
const written = (...nodeIds: string[]): RunEvent => ({ type: 'cache:written', writes: outputWrites(nodeIds), ok: true });
const writeFailed = (reason: string, ...nodeIds: string[]): RunEvent => ({ type: 'cache:written', writes: outputWrites(nodeIds), ok: false, reason });

/** The lookups that decide a status (not the early-cutoff report's shadow lookups: `shadowLookupsOf`). */
function lookupsOf(decision: Decision): { nodeId: string; key: string }[] {
  return allLookupsOf(decision).filter((l) => l.shadow === undefined);
}
function allLookupsOf(decision: Decision): CacheLookup[] {
  const command = decision.commands.find((c): c is Extract<Command, { type: 'LookupCache' }> => c.type === 'LookupCache');
  return command?.lookups ?? [];
}
const shadowLookupsOf = (decision: Decision) => allLookupsOf(decision).filter((l) => l.shadow !== undefined);
const lookedUpIds = (decision: Decision) => lookupsOf(decision).map((l) => l.nodeId);

function attemptsOf(decision: Decision): TaskAttempt[] {
  const command = decision.commands.find((c): c is Extract<Command, { type: 'DispatchTask' }> => c.type === 'DispatchTask');
  return command?.attempts ?? [];
}
const dispatchedIds = (decision: Decision) => attemptsOf(decision).map((a) => a.id);

function writesOf(decision: Decision): { nodeIds: string[]; entries: NewCacheEntry[] } {
  const command = decision.commands.find((c): c is Extract<Command, { type: 'WriteCache' }> => c.type === 'WriteCache');
  return command === undefined ? { nodeIds: [], entries: [] } : { nodeIds: command.writes.map((w) => w.nodeId), entries: command.entries };
}

function eventsOf(decision: Decision): EngineEvent[] {
  return decision.commands.flatMap((c) => (c.type === 'EmitEvent' ? [c.event] : []));
}

/** The status triple tests care about most. */
function statusOf(sim: Sim, id: string): [string, string | null, string | null] {
  const node = sim.node(id);
  return [node.phase, node.cacheStatus, node.cacheReason];
}

/** a -> b -> c (each reads the previous one's whole output), with `out` = c's output. */
function chain(options: { cacheA?: null } = {}): WorkflowSpec {
  return workflowSpec(
    'wf.chain',
    [
      taskNode('a', 't.a', { x: lit(1) }, options.cacheA === null ? { cache: null } : {}),
      taskNode('b', 't.b', { x: ref('a') }),
      taskNode('c', 't.c', { x: ref('b') }),
    ],
    { outputs: { out: ref('c') } },
  );
}

// --- tests ---------------------------------------------------------------------------------------

describe('decide: purity', () => {
  test('does not mutate the state it is given, and is deterministic', () => {
    const sim = new Sim(chain());
    sim.tick();
    const before = structuredClone(sim.state);
    deepFreeze(sim.state);
    const event = looked(sim.miss('a'));
    const one = decide(sim.state, [event], sim.now);
    const two = decide(sim.state, [event], sim.now);
    expect(sim.state).toEqual(before);
    expect(two).toEqual(one);
    expect(one.state.run.version).toBe(before.run.version);
  });

  test('an event that changes nothing asks for nothing and needs no save', () => {
    const sim = new Sim(chain());
    sim.tick();
    const decision = sim.tick();
    expect(decision.changed).toBe(false);
    expect(decision.changedNodes).toEqual([]);
    expect(decision.commands).toEqual([]);
  });
});

describe('decide: cache hits', () => {
  test('all hit: the run succeeds without executing anything', () => {
    const sim = new Sim(chain());
    const first = sim.tick();
    expect(lookupsOf(first)).toEqual([{ nodeId: 'a', key: sim.key('a'), kind: 'output' }]);
    expect(statusOf(sim, 'a')).toEqual(['looking-up', null, null]);
    expect(sim.node('b').phase).toBe('pending');
    expect(first.changedNodes).toEqual(['a']);

    const second = sim.feed(looked(sim.hit('a', 10)));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'HIT', 'from run r0']);
    expect(sim.node('a').output).toEqual({ value: 10 });
    expect(lookedUpIds(second)).toEqual(['b']);
    expect(sim.node('b').inputs).toEqual({ x: { value: 10 } });
    expect(eventsOf(second).map((e) => e.type)).toEqual(['node:cache-hit']);

    const third = sim.feed(looked(sim.hit('b', 20)));
    expect(lookedUpIds(third)).toEqual(['c']);
    const last = sim.feed(looked(sim.hit('c', 30)));
    expect(sim.state.run.status).toBe('succeeded');
    expect(sim.state.run.outputs).toEqual({ out: 30 });
    expect(sim.state.run.finishedAt).toEqual(sim.now);
    expect(eventsOf(last).map((e) => e.type)).toEqual(['node:cache-hit', 'run:succeeded']);
    for (const id of ['a', 'b', 'c']) {
      expect(sim.node(id).attempts).toBe(0);
      expect(sim.node(id).cacheStatus).toBe('HIT');
    }
    for (const decision of [first, second, third, last]) {
      expect(attemptsOf(decision)).toEqual([]);
      expect(writesOf(decision).nodeIds).toEqual([]);
    }
  });

  test('a hit keeps the entry hash, so the hashed value flows on', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.hit('a', 'blob', { hash: 'h-a' })));
    expect(sim.node('a').output).toEqual({ value: 'blob', hash: 'h-a' });
    expect(sim.node('b').inputs).toEqual({ x: { value: 'blob', hash: 'h-a' } });
    expect(sim.node('b').cacheKeyParts?.inputs['x']).toBe('hash:h-a');
  });

  test('all ready nodes are batched into one lookup per round', () => {
    const spec = workflowSpec('wf.diamond', [
      taskNode('r1', 't.r', { i: lit(1) }),
      taskNode('r2', 't.r', { i: lit(2) }),
      taskNode('r3', 't.r', { i: lit(3) }),
      taskNode('m1', 't.m', { x: ref('r1'), y: ref('r2') }),
      taskNode('m2', 't.m', { x: ref('r2'), y: ref('r3') }),
      taskNode('sink', 't.s', { xs: arr(ref('m1'), ref('m2')) }),
    ]);
    const sim = new Sim(spec);
    expect(lookedUpIds(sim.tick()).sort()).toEqual(['r1', 'r2', 'r3']);
    // Results for r1 and r2 only: m1 becomes ready, m2 waits for r3.
    expect(lookedUpIds(sim.feed(looked(sim.hit('r1', 1), sim.hit('r2', 2))))).toEqual(['m1']);
    expect(sim.node('m2').phase).toBe('pending');
    // r3's result and m1's result in one decision: m2 is looked up, sink still waits for m2.
    const both = sim.feed(looked(sim.hit('r3', 3)), looked(sim.hit('m1', 'm1')));
    expect(lookedUpIds(both)).toEqual(['m2']);
    expect(lookedUpIds(sim.feed(looked(sim.hit('m2', 'm2'))))).toEqual(['sink']);
    sim.feed(looked(sim.hit('sink', 'done')));
    expect(sim.state.run.status).toBe('succeeded');
  });

  test('same-task nodes with the same inputs share a key; different inputs do not', () => {
    const spec = workflowSpec('wf', [taskNode('x1', 't', { v: lit(1) }), taskNode('x2', 't', { v: lit(1) }), taskNode('x3', 't', { v: lit(2) })]);
    const sim = new Sim(spec);
    sim.tick();
    expect(sim.key('x1')).toBe(sim.key('x2'));
    expect(sim.key('x1')).not.toBe(sim.key('x3'));
    expect(sim.node('x1').cacheKeyParts).toMatchObject({ project: 'demo', domain: 'dev', task: 't', version: '1' });
  });
});

describe('decide: miss, execution and write', () => {
  test('miss -> dispatched -> writing -> POPULATED', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', { rows: wfInput('rows') })], { inputs: { rows: true }, outputs: { out: ref('a') } }), {
      inputs: { rows: { value: [1, -2, 3] } },
    });
    sim.tick();
    const key = sim.key('a');

    sim.later(1000);
    const missed = sim.feed(looked(sim.miss('a')));
    expect(statusOf(sim, 'a')).toEqual(['dispatched', 'MISS', null]);
    expect(sim.node('a').attempts).toBe(1);
    expect(attemptsOf(missed)).toEqual([{ id: 'r1-a-1', runId: 'r1', nodeId: 'a', task: 't.a', attempt: 1, inputs: { rows: [1, -2, 3] }, timeoutMs: null, cacheKey: key, signature: signatureDigest(nodeSignature(sim, 'a')) }]);
    expect(writesOf(missed).nodeIds).toEqual([]);
    expect(lookupsOf(missed)).toEqual([]);
    expect(eventsOf(missed)).toMatchObject([{ type: 'node:started', nodeId: 'a', attempt: 1, cacheStatus: 'MISS' }]);

    sim.later(1000);
    // The attempt ran 1.5 s of the node's 2 (the rest was queueing): the entry records 1.5 s, what a HIT on it saves.
    const done = sim.feed(sim.ok('a', [1, 3], null, 1500));
    expect(statusOf(sim, 'a')).toEqual(['writing', 'MISS', null]);
    expect(sim.node('a').output).toEqual({ value: [1, 3] });
    expect(sim.state.run.status).toBe('running'); // waits for the write
    expect(attemptsOf(done)).toEqual([]);
    // Done when the task is: the line is logged now (causal order), with the duration of the node itself.
    expect(eventsOf(done).find((e) => e.type === 'node:succeeded')).toMatchObject({ nodeId: 'a', cacheStatus: 'MISS', cacheKey: key, durationMs: 2000 });
    expect(writesOf(done)).toEqual({
      nodeIds: ['a'],
      entries: [
        {
          key,
          kind: 'output',
          project: 'demo',
          domain: 'dev',
          task: 't.a',
          parts: sim.node('a').cacheKeyParts,
          value: [1, 3],
          valueHash: null,
          runId: 'r1',
          nodeId: 'a',
          durationMs: 1500,
        },
      ],
    });

    sim.later(1000);
    const stored = sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
    // finishedAt is when the task finished; the write does not move it.
    expect(sim.node('a').finishedAt).toEqual(new Date(T0.getTime() + 2000));
    expect(sim.node('a').startedAt).toEqual(T0);
    expect(sim.state.run.status).toBe('succeeded');
    expect(sim.state.run.outputs).toEqual({ out: [1, 3] });
    const written_ = eventsOf(stored).find((e) => e.type === 'node:cache-written');
    expect(written_).toMatchObject({ nodeId: 'a', cacheStatus: 'POPULATED', cacheKey: key, durationMs: 2000 });
  });

  test('a node with a hashed output writes its hash beside the value', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', {}, { outputHashed: true })]));
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const done = sim.feed(sim.ok('a', { big: 'data' }, 'sha:abc'));
    expect(sim.node('a').output).toEqual({ value: { big: 'data' }, hash: 'sha:abc' });
    expect(writesOf(done).entries[0]).toMatchObject({ value: { big: 'data' }, valueHash: 'sha:abc' });
  });

  test('downstream nodes start while the upstream entry is being written', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const done = sim.feed(sim.ok('a', 1));
    expect(sim.node('a').phase).toBe('writing');
    expect(dispatchedIds(done)).toEqual(['r1-b-1']);
    expect(writesOf(done).nodeIds).toEqual(['a']);
  });

  test('a task with no output (null) is cached like any other', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.side-effect', {})]));
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    expect(writesOf(sim.feed(sim.ok('a', null))).entries[0]).toMatchObject({ value: null, valueHash: null });
    sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
  });

  test('an empty workflow succeeds at once with its literal and input outputs', () => {
    const sim = new Sim(workflowSpec('wf', [], { inputs: { n: true }, outputs: { n: wfInput('n'), k: lit('const') } }), { inputs: { n: { value: 7 } } });
    const decision = sim.tick();
    expect(sim.state.run.status).toBe('succeeded');
    expect(sim.state.run.outputs).toEqual({ n: 7, k: 'const' });
    expect(eventsOf(decision).map((e) => e.type)).toEqual(['run:succeeded']);
  });
});

describe('decide: the cascade rule', () => {
  test('upstream MISS: downstream is SKIPPED upstream-reran without a lookup, transitively', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const aDone = sim.feed(sim.ok('a', 1));
    expect(lookupsOf(aDone)).toEqual([]);
    // Only the early-cutoff report's shadow lookup of b's own key (core/cutoff.ts), which decides nothing.
    expect(shadowLookupsOf(aDone).map((l) => l.nodeId)).toEqual(['b']);
    expect(statusOf(sim, 'b')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    expect(sim.node('b').cacheKey).not.toBeNull(); // keyed, so its entry is repopulated
    expect(eventsOf(aDone).find((e) => e.nodeId === 'b')).toMatchObject({ type: 'node:started', message: "upstream node 'a' executed" });

    const bDone = sim.feed(sim.ok('b', 2));
    expect(lookupsOf(bDone)).toEqual([]);
    expect(writesOf(bDone).nodeIds).toEqual(['b']);
    expect(statusOf(sim, 'c')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);

    sim.feed(sim.ok('c', 3), written('a', 'b'));
    sim.feed(written('c'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
    // A skipped node's entry is written (repopulated) but its status stays SKIPPED with its reason.
    expect(statusOf(sim, 'b')).toEqual(['succeeded', 'SKIPPED', 'upstream-reran']);
    expect(statusOf(sim, 'c')).toEqual(['succeeded', 'SKIPPED', 'upstream-reran']);
    expect(sim.state.run.status).toBe('succeeded');
    expect(sim.state.run.outputs).toEqual({ out: 3 });
  });

  test('a node whose upstream HIT is looked up even if another branch reran', () => {
    const spec = workflowSpec('wf', [
      taskNode('hit', 't.h', {}),
      taskNode('rerun', 't.r', {}),
      taskNode('afterHit', 't.x', { x: ref('hit') }),
      taskNode('afterRerun', 't.x', { x: ref('rerun') }),
    ]);
    const sim = new Sim(spec);
    sim.tick();
    const decision = sim.feed(looked(sim.hit('hit', 1), sim.miss('rerun')));
    expect(lookedUpIds(decision)).toEqual(['afterHit']);
    expect(dispatchedIds(decision)).toEqual(['r1-rerun-1']);
    sim.feed(sim.ok('rerun', 2));
    expect(statusOf(sim, 'afterRerun')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
  });

  test('a node reading a HIT and a rerun node is cascaded', () => {
    const spec = workflowSpec('wf', [taskNode('hit', 't.h', {}), taskNode('rerun', 't.r', {}), taskNode('both', 't.x', { x: ref('hit'), y: ref('rerun') })]);
    const sim = new Sim(spec);
    sim.tick();
    sim.feed(looked(sim.hit('hit', 1), sim.miss('rerun')));
    const decision = sim.feed(sim.ok('rerun', 2));
    expect(lookupsOf(decision)).toEqual([]);
    expect(statusOf(sim, 'both')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
  });

  describe('content-addressed (hashWith) outputs', () => {
    const spec = workflowSpec('wf.hashed', [
      taskNode('data', 't.load', {}, { outputHashed: true }),
      taskNode('plain', 't.plain', {}),
      taskNode('whole', 't.x', { d: ref('data') }),
      taskNode('fanIn', 't.x', { ds: arr(ref('data'), ref('data')) }),
      taskNode('field', 't.x', { d: ref('data', 'rows') }),
      taskNode('mixed', 't.x', { d: ref('data'), p: ref('plain') }),
      taskNode('downstreamOfWhole', 't.y', { w: ref('whole') }),
    ]);

    function rerunBoth(): { sim: Sim; decision: Decision } {
      const sim = new Sim(spec);
      sim.tick();
      sim.feed(looked(sim.miss('data'), sim.miss('plain')));
      const decision = sim.feed(sim.ok('data', { rows: [1, 2] }, 'content-1'), sim.ok('plain', 'p'));
      return { sim, decision };
    }

    test('a reader of only the whole hashed output of a rerun node is looked up normally', () => {
      const { sim, decision } = rerunBoth();
      expect(lookedUpIds(decision).sort()).toEqual(['fanIn', 'whole']);
      expect(statusOf(sim, 'whole')).toEqual(['looking-up', null, null]);
      expect(sim.node('whole').cacheKeyParts?.inputs['d']).toBe('hash:content-1');
    });

    test('reading a path into the hashed output cascades (the field is not what was hashed)', () => {
      const { sim } = rerunBoth();
      expect(statusOf(sim, 'field')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
      expect(sim.node('field').inputs).toEqual({ d: { value: [1, 2] } });
    });

    test('also reading a non-hashed output of a rerun node cascades', () => {
      const { sim } = rerunBoth();
      expect(statusOf(sim, 'mixed')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    });

    test('a hit of the looked-up reader stops the cascade; its miss continues it', () => {
      const { sim } = rerunBoth();
      const decision = sim.feed(looked(sim.hit('whole', 'w'), sim.miss('fanIn')));
      expect(statusOf(sim, 'whole')).toEqual(['succeeded', 'HIT', 'from run r0']);
      expect(lookedUpIds(decision)).toEqual(['downstreamOfWhole']);
      expect(statusOf(sim, 'fanIn')).toEqual(['dispatched', 'MISS', null]);
    });

    test('without a hash the same reader cascades', () => {
      const sim = new Sim(spec);
      sim.tick();
      sim.feed(looked(sim.miss('data'), sim.miss('plain')));
      sim.feed(sim.ok('data', { rows: [1, 2] }, null), sim.ok('plain', 'p'));
      expect(statusOf(sim, 'whole')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
      expect(statusOf(sim, 'fanIn')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    });
  });
});

describe('decide: cache disabled', () => {
  test('DISABLED: no lookup, no key, no write; and it cascades downstream', () => {
    const sim = new Sim(chain({ cacheA: null }));
    const first = sim.tick();
    expect(lookupsOf(first)).toEqual([]);
    expect(dispatchedIds(first)).toEqual(['r1-a-1']);
    expect(attemptsOf(first)[0]?.cacheKey).toBeNull();
    expect(statusOf(sim, 'a')).toEqual(['dispatched', 'DISABLED', null]);
    expect(sim.node('a').cacheKey).toBeNull();

    const done = sim.feed(sim.ok('a', 1));
    expect(writesOf(done).nodeIds).toEqual([]);
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'DISABLED', null]);
    expect(lookupsOf(done)).toEqual([]);
    expect(statusOf(sim, 'b')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
  });

  test('enabled: false behaves like no cache at all', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't', {}, { cache: { enabled: false } })]));
    expect(dispatchedIds(sim.tick())).toEqual(['r1-a-1']);
    expect(sim.node('a').cacheStatus).toBe('DISABLED');
    expect(writesOf(sim.feed(sim.ok('a', 1))).nodeIds).toEqual([]);
    expect(sim.state.run.status).toBe('succeeded');
  });

  test('a disabled node downstream of a hit is still DISABLED and not looked up', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't.a', {}), taskNode('b', 't.b', { x: ref('a') }, { cache: null })]);
    const sim = new Sim(spec);
    sim.tick();
    const decision = sim.feed(looked(sim.hit('a', 1)));
    expect(lookupsOf(decision)).toEqual([]);
    expect(statusOf(sim, 'b')).toEqual(['dispatched', 'DISABLED', null]);
  });
});

describe('decide: overwriteCache', () => {
  test('every cacheable node is SKIPPED overwrite, runs without a lookup, and is written', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't.a', {}), taskNode('b', 't.b', { x: ref('a') }), taskNode('off', 't.off', {}, { cache: null })]);
    const sim = new Sim(spec, { run: { overwriteCache: true } });
    const first = sim.tick();
    expect(lookupsOf(first)).toEqual([]);
    expect(dispatchedIds(first).sort()).toEqual(['r1-a-1', 'r1-off-1']);
    expect(statusOf(sim, 'a')).toEqual(['dispatched', 'SKIPPED', 'overwrite']);
    expect(statusOf(sim, 'off')).toEqual(['dispatched', 'DISABLED', null]);

    const aDone = sim.feed(sim.ok('a', 1), sim.ok('off', 0));
    expect(writesOf(aDone).nodeIds).toEqual(['a']);
    expect(statusOf(sim, 'b')).toEqual(['dispatched', 'SKIPPED', 'overwrite']);
    expect(lookupsOf(aDone)).toEqual([]);

    const bDone = sim.feed(sim.ok('b', 2), written('a'));
    expect(writesOf(bDone).entries.map((e) => e.key)).toEqual([sim.key('b')]);
    sim.feed(written('b'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'SKIPPED', 'overwrite']);
    expect(statusOf(sim, 'b')).toEqual(['succeeded', 'SKIPPED', 'overwrite']);
    expect(sim.state.run.status).toBe('succeeded');
  });
});

describe('decide: catalog failures', () => {
  test('LOOKUP_FAILURE: the node still runs, cascades, and the run succeeds', () => {
    const sim = new Sim(chain());
    sim.tick();
    const decision = sim.feed(looked(sim.lookupFailed('a', 'connection reset')));
    expect(statusOf(sim, 'a')).toEqual(['dispatched', 'LOOKUP_FAILURE', 'connection reset']);
    expect(dispatchedIds(decision)).toEqual(['r1-a-1']);
    const done = sim.feed(sim.ok('a', 1));
    expect(writesOf(done).nodeIds).toEqual(['a']); // the fresh result is still offered to the catalog
    expect(statusOf(sim, 'b')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    sim.feed(sim.ok('b', 2), written('a'));
    sim.feed(sim.ok('c', 3), written('b'));
    sim.feed(written('c'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'LOOKUP_FAILURE', 'connection reset']);
    expect(sim.state.run.status).toBe('succeeded');
    expect(sim.state.run.outputs).toEqual({ out: 3 });
  });

  test('PUT_FAILURE: a write lost for good (its last put failed too); the node and the run succeed, the run names it', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', {})], { outputs: { out: ref('a') } }));
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    sim.feed(sim.ok('a', 42));
    // Nothing else is left in the run: the retry (due in 250 ms) is the last put.
    sim.feed(writeFailed('disk full', 'a'));
    expect(statusOf(sim, 'a')).toEqual(['writing', 'MISS', null]);
    expect(sim.node('a').cacheWriteRetry).toMatchObject({ failures: 1, final: true, retryAtMs: T0.getTime() + 250 });
    sim.later(250);
    expect(writesOf(sim.tick()).nodeIds).toEqual(['a']);
    const decision = sim.feed(writeFailed('disk full', 'a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'PUT_FAILURE', 'cache write lost after 2 attempt(s): disk full']);
    expect(sim.state.run.status).toBe('succeeded');
    expect(sim.state.run.outputs).toEqual({ out: 42 });
    expect(eventsOf(decision).find((e) => e.type === 'node:cache-written')).toMatchObject({ level: 'warn', cacheStatus: 'PUT_FAILURE' });
    expect(eventsOf(decision).find((e) => e.type === 'run:succeeded')).toMatchObject({ level: 'warn', message: expect.stringContaining('a (t.a)') });
  });

  test('a corrupt entry is a MISS with a warning event, never a crash', () => {
    const sim = new Sim(chain());
    sim.tick();
    const decision = sim.feed(looked(sim.corrupt('a', 'checksum mismatch')));
    expect(statusOf(sim, 'a')).toEqual(['dispatched', 'MISS', 'corrupt entry: checksum mismatch']);
    expect(dispatchedIds(decision)).toEqual(['r1-a-1']);
    const warning = eventsOf(decision).find((e) => e.type === 'node:cache-corrupt');
    expect(warning).toMatchObject({ level: 'warn', nodeId: 'a', runId: 'r1', workflow: 'wf.chain' });
    expect(warning?.message).toContain('checksum mismatch');
    sim.feed(sim.ok('a', 1));
    sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', 'corrupt entry: checksum mismatch']);
  });
});

describe('decide: TTL', () => {
  const ttlMs = 90_000;
  const spec = workflowSpec('wf', [taskNode('a', 't.a', {}, { cache: { ttlMs } })]);

  test('an entry older than the TTL is EVICTED and the fresh result replaces it', () => {
    const sim = new Sim(spec);
    sim.tick();
    const decision = sim.feed(looked(sim.hit('a', 'old', { createdAt: new Date(T0.getTime() - ttlMs - 1) })));
    expect(statusOf(sim, 'a')).toEqual(['dispatched', 'EVICTED', `entry expired (older than ${ttlMs} ms)`]);
    expect(dispatchedIds(decision)).toEqual(['r1-a-1']);
    expect(writesOf(sim.feed(sim.ok('a', 'new'))).entries[0]).toMatchObject({ key: sim.key('a'), value: 'new' });
  });

  test('an entry exactly TTL old is expired; one a millisecond younger is a hit', () => {
    const expired = new Sim(spec);
    expired.tick();
    expired.feed(looked(expired.hit('a', 'old', { createdAt: new Date(T0.getTime() - ttlMs) })));
    expect(expired.node('a').cacheStatus).toBe('EVICTED');

    const fresh = new Sim(spec);
    fresh.tick();
    fresh.feed(looked(fresh.hit('a', 'old', { createdAt: new Date(T0.getTime() - ttlMs + 1) })));
    expect(statusOf(fresh, 'a')).toEqual(['succeeded', 'HIT', 'from run r0']);
  });

  test('an evicted entry is repopulated: EVICTED becomes POPULATED once the fresh result is written', () => {
    const sim = new Sim(spec);
    sim.tick();
    sim.feed(looked(sim.hit('a', 'old', { createdAt: new Date(T0.getTime() - ttlMs - 1) })));
    sim.feed(sim.ok('a', 'new'));
    sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', `entry expired (older than ${ttlMs} ms)`]);
  });

  test('expiry uses `now`, not the time the lookup was sent', () => {
    const sim = new Sim(spec);
    sim.tick();
    sim.later(ttlMs); // the lookup result is decided a TTL later
    sim.feed(looked(sim.hit('a', 'old', { createdAt: T0 })));
    expect(sim.node('a').cacheStatus).toBe('EVICTED');
  });

  test('the default TTL is 28 days', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', {}), taskNode('b', 't.b', {})]));
    sim.tick();
    sim.feed(looked(sim.hit('a', 1, { createdAt: new Date(T0.getTime() - 28 * DAY) }), sim.hit('b', 2, { createdAt: new Date(T0.getTime() - 27 * DAY) })));
    expect(sim.node('a').cacheStatus).toBe('EVICTED');
    expect(sim.node('b').cacheStatus).toBe('HIT');
  });
});

describe('decide: retries and failures', () => {
  test('a failed attempt with retries left is re-dispatched as attempt 2; only the success is written', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', { x: lit(1) }, { retries: 2 })], { outputs: { out: ref('a') } }));
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const retry = sim.feed(sim.failed('a', { message: 'flaky' }));
    expect(attemptsOf(retry)).toMatchObject([{ id: 'r1-a-2', attempt: 2, inputs: { x: 1 }, cacheKey: sim.key('a') }]);
    expect(writesOf(retry).nodeIds).toEqual([]);
    expect(sim.node('a')).toMatchObject({ phase: 'dispatched', attempts: 2, cacheStatus: 'MISS', error: { message: 'flaky' } });
    expect(eventsOf(retry)).toMatchObject([{ type: 'node:retrying', attempt: 2, message: 'attempt 1 failed: flaky' }]);

    const done = sim.feed(sim.ok('a', 'second time lucky'));
    expect(writesOf(done).entries).toMatchObject([{ key: sim.key('a'), value: 'second time lucky' }]);
    expect(sim.node('a').error).toBeNull();
    sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
    expect(sim.state.run.outputs).toEqual({ out: 'second time lucky' });
  });

  test('retries exhausted: the node fails, downstream is aborted, the run fails naming the node', () => {
    const spec = workflowSpec('wf', [
      taskNode('a', 't.a', {}, { retries: 1 }),
      taskNode('b', 't.b', { x: ref('a') }),
      taskNode('c', 't.c', { x: ref('b') }),
      taskNode('side', 't.side', {}),
    ]);
    const sim = new Sim(spec);
    sim.tick();
    sim.feed(looked(sim.miss('a'), sim.miss('side')));
    expect(dispatchedIds(sim.feed(sim.failed('a', { message: 'first' })))).toEqual(['r1-a-2']);
    const fatal = sim.feed(sim.failed('a', { message: 'second' }));
    expect(attemptsOf(fatal)).toEqual([]);
    expect(writesOf(fatal).nodeIds).toEqual([]);
    expect(sim.node('a')).toMatchObject({ phase: 'failed', attempts: 2, error: { message: 'second' } });
    expect(sim.node('b').phase).toBe('aborted');
    expect(sim.node('c').phase).toBe('aborted');
    expect(eventsOf(fatal).map((e) => `${e.type}:${e.nodeId ?? ''}`)).toEqual(['node:failed:a', 'node:aborted:b', 'node:aborted:c']);
    // An independent node still in flight keeps the run open; its success is still cached.
    expect(sim.state.run.status).toBe('running');
    expect(writesOf(sim.feed(sim.ok('side', 's'))).nodeIds).toEqual(['side']);
    expect(sim.state.run.status).toBe('running');
    const end = sim.feed(written('side'));
    expect(sim.state.run.status).toBe('failed');
    expect(sim.state.run.outputs).toBeNull();
    expect(sim.state.run.error).toMatchObject({ code: 'RUN_FAILED', retryable: false });
    expect(sim.state.run.error?.message).toBe("node 'a' (t.a) failed: second");
    expect(eventsOf(end).map((e) => e.type)).toEqual(['node:cache-written', 'run:failed']);
  });

  test('a non-retryable error fails the node at once despite retries', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', {}, { retries: 5 })]));
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const decision = sim.feed(sim.failed('a', { retryable: false, message: 'bad input' }));
    expect(attemptsOf(decision)).toEqual([]);
    expect(sim.node('a')).toMatchObject({ phase: 'failed', attempts: 1 });
    expect(sim.state.run.status).toBe('failed');
    expect(sim.state.run.error?.message).toContain("node 'a'");
  });

  test('retries apply to disabled and skipped nodes too', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', {}, { cache: null, retries: 1 })]));
    sim.tick();
    expect(dispatchedIds(sim.feed(sim.failed('a')))).toEqual(['r1-a-2']);
    sim.feed(sim.ok('a', 1));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'DISABLED', null]);
  });

  test('once the run has failed, late events are ignored', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', {})]));
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const failed = sim.failed('a', { retryable: false });
    sim.feed(failed);
    expect(sim.state.run.status).toBe('failed');
    const late = sim.feed(failed, sim.ok('a', 1), { type: 'run:tick' });
    expect(late.changed).toBe(false);
    expect(late.commands).toEqual([]);
  });
});

describe('decide: stale and duplicate events', () => {
  test('a second attempt:finished for the same attempt is ignored', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const ok = sim.ok('a', 1);
    sim.feed(ok);
    const again = sim.feed(ok);
    expect(again.changed).toBe(false);
    expect(again.commands).toEqual([]);
    // ...even when it disagrees with the first (a failure after the success).
    expect(sim.feed(sim.failed('a', { attempt: 1 })).changed).toBe(false);
    expect(sim.node('a').output).toEqual({ value: 1 });
  });

  test('the same result twice in one batch is applied once', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const ok = sim.ok('a', 1);
    const decision = sim.feed(ok, ok);
    expect(writesOf(decision).nodeIds).toEqual(['a']);
    expect(dispatchedIds(decision)).toEqual(['r1-b-1']);
  });

  test('a result for an earlier attempt is ignored after a retry', () => {
    const sim = new Sim(workflowSpec('wf', [taskNode('a', 't.a', {}, { retries: 2 })]));
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const first = sim.failed('a');
    sim.feed(first);
    expect(sim.node('a').attempts).toBe(2);
    expect(sim.feed(first).changed).toBe(false);
    const staleSuccess = sim.feed({ type: 'attempt:finished', result: { ...(sim.ok('a', 'stale') as Extract<RunEvent, { type: 'attempt:finished' }>).result, attempt: 1, attemptId: 'r1-a-1' } });
    expect(staleSuccess.changed).toBe(false);
    expect(sim.node('a').phase).toBe('dispatched');
  });

  test('a lookup result for a node that is not looking up is ignored', () => {
    const sim = new Sim(chain());
    sim.tick();
    // b is still pending: its "result" is noise.
    const noise = sim.feed(looked({ nodeId: 'b', key: 'whatever', kind: 'output', outcome: 'miss' }));
    expect(noise.changed).toBe(false);
    expect(sim.node('b').phase).toBe('pending');
    // A repeated lookup result after the node moved on.
    const miss = sim.miss('a');
    sim.feed(looked(miss));
    const repeated = sim.feed(looked(miss), looked(sim.hit('a', 'late hit')));
    expect(repeated.changed).toBe(false);
    expect(statusOf(sim, 'a')).toEqual(['dispatched', 'MISS', null]);
  });

  test('a lookup result for another key is ignored', () => {
    const sim = new Sim(chain());
    sim.tick();
    expect(sim.feed(looked({ ...sim.miss('a'), key: 'not-the-key' })).changed).toBe(false);
    expect(sim.node('a').phase).toBe('looking-up');
  });

  test('cache:written for a node that is not writing is ignored; a repeated write ack too', () => {
    const sim = new Sim(chain());
    sim.tick();
    expect(sim.feed(written('a')).changed).toBe(false);
    sim.feed(looked(sim.miss('a')));
    sim.feed(sim.ok('a', 1));
    sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
    expect(sim.feed(writeFailed('late failure', 'a')).changed).toBe(false);
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
  });
});

describe('decide: bindings', () => {
  test('a fan-in of 50 references resolves every value in order', () => {
    const producers = Array.from({ length: 50 }, (_, i) => taskNode(`p${i}`, 't.square', { i: lit(i) }, { cache: null }));
    const sink = taskNode('sink', 't.sum', { xs: arr(...producers.map((p) => ref(p.id))) });
    // Declared in reverse to make sure order comes from the binding, not from completion or spec order.
    const sim = new Sim(workflowSpec('wf.fan', [sink, ...producers].reverse(), { outputs: { all: ref('sink') } }));
    const first = sim.tick();
    expect(attemptsOf(first)).toHaveLength(50);
    expect(new Set(dispatchedIds(first)).size).toBe(50);
    // Results arrive in reverse order, in two batches.
    const results = [...producers].reverse().map((p) => sim.ok(p.id, Number(p.id.slice(1)) ** 2));
    expect(lookupsOf(sim.feed(...results.slice(0, 25)))).toEqual([]);
    expect(sim.node('sink').phase).toBe('pending');
    sim.feed(...results.slice(25));
    const expected = Array.from({ length: 50 }, (_, i) => i * i);
    expect(sim.node('sink').inputs).toEqual({ xs: { value: expected } });
    // Disabled producers executed: the fan-in is cascaded.
    expect(statusOf(sim, 'sink')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    sim.feed(sim.ok('sink', expected));
    sim.feed(written('sink'));
    expect(sim.state.run.outputs).toEqual({ all: expected });
  });

  test('a fan-in of hashed values records its hashed members, is keyed by them and is looked up', () => {
    const producers = ['h0', 'h1', 'h2'].map((id) => taskNode(id, 't.load', { id: lit(id) }, { outputHashed: true }));
    const sim = new Sim(workflowSpec('wf', [...producers, taskNode('sink', 't.join', { xs: arr(ref('h0'), ref('h1'), ref('h2')) })]));
    sim.tick();
    sim.feed(looked(sim.miss('h0'), sim.miss('h1'), sim.miss('h2')));
    const decision = sim.feed(sim.ok('h0', 'a', 'ha'), sim.ok('h1', 'b', 'hb'), sim.ok('h2', 'c', 'hc'));
    expect(lookedUpIds(decision)).toEqual(['sink']);
    const input = sim.node('sink').inputs?.['xs'];
    expect(input?.value).toEqual(['a', 'b', 'c']);
    expect(input?.hash).toBeUndefined();
    expect(input?.members).toEqual({ array: ['ha', 'hb', 'hc'] });
    expect(sim.node('sink').cacheKeyParts?.inputs['xs']).toMatch(/^tree:[0-9a-f]{64}$/);
    // Same hashes, different bytes: same key (content-addressed).
    const other = new Sim(workflowSpec('wf', [...producers, taskNode('sink', 't.join', { xs: arr(ref('h0'), ref('h1'), ref('h2')) })]));
    other.tick();
    other.feed(looked(other.miss('h0'), other.miss('h1'), other.miss('h2')));
    other.feed(other.ok('h0', 'A', 'ha'), other.ok('h1', 'B', 'hb'), other.ok('h2', 'C', 'hc'));
    expect(other.key('sink')).toBe(sim.key('sink'));
  });

  test('object-path bindings read a field of an object output', () => {
    const spec = workflowSpec(
      'wf',
      [
        taskNode('split', 't.split', {}),
        taskNode('train', 't.train', { rows: ref('split', 'a'), deep: ref('split', 'm', 'n'), missing: ref('split', 'nope') }),
        taskNode('pack', 't.pack', { o: obj({ first: ref('split', 'a'), lit: lit('x'), whole: ref('split') }) }),
      ],
      { outputs: { b: ref('split', 'b'), trained: ref('train') } },
    );
    const sim = new Sim(spec);
    sim.tick();
    sim.feed(looked(sim.hit('split', { a: [1, 2], b: 'bee', m: { n: 5 } })));
    expect(sim.node('train').inputs).toEqual({ rows: { value: [1, 2] }, deep: { value: 5 }, missing: { value: null } });
    expect(sim.node('pack').inputs).toEqual({ o: { value: { first: [1, 2], lit: 'x', whole: { a: [1, 2], b: 'bee', m: { n: 5 } } } } });
    sim.feed(looked(sim.hit('train', 't'), sim.hit('pack', 'p')));
    expect(sim.state.run.outputs).toEqual({ b: 'bee', trained: 't' });
  });

  test('workflow inputs, with their hash and with paths', () => {
    const spec = workflowSpec('wf', [taskNode('a', 't.a', { whole: wfInput('data'), part: wfInput('cfg', 'lr') })], {
      inputs: { data: true, cfg: true },
      hashedInputs: ['data'],
    });
    const sim = new Sim(spec, { inputs: { data: { value: 'big', hash: 'hd' }, cfg: { value: { lr: 0.1 } } } });
    sim.tick();
    expect(sim.node('a').inputs).toEqual({ whole: { value: 'big', hash: 'hd' }, part: { value: 0.1 } });
    expect(sim.node('a').cacheKeyParts?.inputs['whole']).toBe('hash:hd');
  });
});

describe('recoverCommands', () => {
  /** A saved state mid-run: one node looking up, one dispatched on attempt 2, one writing. */
  function midRun(): Sim {
    const spec = workflowSpec('wf', [
      taskNode('look', 't.look', { v: lit(1) }),
      taskNode('run', 't.run', { v: lit(2) }, { retries: 3 }),
      taskNode('write', 't.write', { v: lit(3) }),
      taskNode('done', 't.done', { v: lit(4) }),
      taskNode('later', 't.later', { x: ref('look') }),
    ]);
    const sim = new Sim(spec);
    sim.tick();
    sim.feed(looked(sim.miss('run'), sim.miss('write'), sim.hit('done', 'd')));
    sim.feed(sim.failed('run'), sim.ok('write', 'w'));
    return sim;
  }

  test('repeats the in-flight lookups, attempts (same attempt id) and writes', () => {
    const sim = midRun();
    expect(sim.node('look').phase).toBe('looking-up');
    expect(sim.node('run')).toMatchObject({ phase: 'dispatched', attempts: 2 });
    expect(sim.node('write').phase).toBe('writing');
    const commands = recoverCommands(sim.state);
    expect(commands).toEqual([
      { type: 'LookupCache', lookups: [{ nodeId: 'look', key: sim.key('look'), kind: 'output' }] },
      {
        type: 'DispatchTask',
        attempts: [{ id: 'r1-run-2', runId: 'r1', nodeId: 'run', task: 't.run', attempt: 2, inputs: { v: 2 }, timeoutMs: null, cacheKey: sim.key('run'), signature: signatureDigest(nodeSignature(sim, 'run')) }],
      },
      {
        type: 'WriteCache',
        writes: [{ nodeId: 'write', kind: 'output' }],
        entries: [
          { key: sim.key('write'), kind: 'output', project: 'demo', domain: 'dev', task: 't.write', parts: sim.node('write').cacheKeyParts, value: 'w', valueHash: null, runId: 'r1', nodeId: 'write', durationMs: 0 },
        ],
      },
    ]);
  });

  test('survives a JSON round trip of the state (what a store gives back)', () => {
    const sim = midRun();
    const reloaded = JSON.parse(JSON.stringify(sim.state)) as RunState;
    expect(recoverCommands(reloaded)).toEqual(recoverCommands(sim.state));
  });

  test('the repeated effects complete the run', () => {
    const sim = midRun();
    sim.feed(looked(sim.hit('look', 'l')), sim.ok('run', 'r'), written('write'));
    sim.feed(looked(sim.hit('later', 'x')), written('run'));
    expect(sim.state.run.status).toBe('succeeded');
  });

  test('nothing to repeat for a new or a finished run', () => {
    const fresh = new Sim(chain());
    expect(recoverCommands(fresh.state)).toEqual([]);
    const finished = new Sim(workflowSpec('wf', []));
    finished.tick();
    expect(finished.state.run.status).toBe('succeeded');
    expect(recoverCommands(finished.state)).toEqual([]);
  });
});

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

describe('decide: failed cache writes are retried', () => {
  test('while the run lives: backoff from `now`, downstream does not wait, a later put makes it POPULATED', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    sim.feed(sim.ok('a', 1));
    expect(statusOf(sim, 'b')).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']); // did not wait for a's write
    const failed = sim.feed(writeFailed('connection reset', 'a'));
    expect(statusOf(sim, 'a')).toEqual(['writing', 'MISS', null]);
    expect(sim.node('a').cacheWriteRetry).toEqual({ failures: 1, lastError: 'connection reset', retryAtMs: T0.getTime() + 250, final: false });
    expect(eventsOf(failed).find((e) => e.type === 'node:cache-written')?.message).toContain('retrying in 250 ms');
    expect(nextWakeAt(sim.state)).toBe(T0.getTime() + 250);
    sim.later(249);
    expect(writesOf(sim.tick()).nodeIds).toEqual([]); // not due yet
    sim.later(1);
    expect(writesOf(sim.tick()).nodeIds).toEqual(['a']);
    expect(sim.node('a').cacheWriteRetry?.retryAtMs).toBeNull(); // in flight: nothing to wake for
    expect(nextWakeAt(sim.state)).toBeNull();
    expect(writesOf(sim.tick()).nodeIds).toEqual([]); // put once, not on every tick
    // Second failure: twice the delay.
    sim.feed(writeFailed('connection reset', 'a'));
    expect(sim.node('a').cacheWriteRetry).toMatchObject({ failures: 2, retryAtMs: sim.now.getTime() + 500 });
    sim.later(500);
    expect(writesOf(sim.tick()).nodeIds).toEqual(['a']);
    const landed = sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
    expect(sim.node('a').cacheWriteRetry).toBeNull();
    expect(eventsOf(landed).find((e) => e.type === 'node:cache-written')?.message).toContain('after 2 failed attempt(s)');
    sim.feed(sim.ok('b', 2), written('b'));
    sim.feed(sim.ok('c', 3));
    const end = sim.feed(written('c'));
    expect(sim.state.run.status).toBe('succeeded');
    expect(eventsOf(end).find((e) => e.type === 'run:succeeded')).toMatchObject({ level: 'info' });
    expect(eventsOf(end).find((e) => e.type === 'run:succeeded')?.message).toBeUndefined();
  });

  test('the run does not finish before the last put; that put comes at most 2 s after the rest is done', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    sim.feed(sim.ok('a', 1));
    for (let failures = 1; failures <= 8; failures++) {
      sim.feed(writeFailed('down', 'a'));
      sim.now = new Date(sim.node('a').cacheWriteRetry?.retryAtMs ?? 0);
      expect(writesOf(sim.tick()).nodeIds).toEqual(['a']);
    }
    sim.feed(writeFailed('down', 'a')); // 9th failure: 30 s backoff (capped)
    expect(sim.node('a').cacheWriteRetry?.retryAtMs).toBe(sim.now.getTime() + 30_000);
    sim.feed(sim.ok('b', 2), written('b'));
    sim.feed(sim.ok('c', 3));
    const last = sim.feed(written('c'));
    expect(sim.state.run.status).toBe('running');
    expect(writesOf(last).nodeIds).toEqual([]);
    expect(sim.node('a').cacheWriteRetry).toMatchObject({ final: true, retryAtMs: sim.now.getTime() + 2000 });
    sim.later(2000);
    expect(writesOf(sim.tick()).nodeIds).toEqual(['a']);
    sim.feed(written('a'));
    expect(statusOf(sim, 'a')).toEqual(['succeeded', 'POPULATED', null]);
    expect(sim.state.run.status).toBe('succeeded');
  });

  test('a repeated failure report for a put already counted changes nothing', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    sim.feed(sim.ok('a', 1));
    sim.feed(writeFailed('down', 'a'));
    const before = sim.node('a');
    const again = sim.feed(writeFailed('down', 'a'));
    expect(sim.node('a')).toEqual(before);
    expect(again.changed).toBe(false);
  });

  test('a controller taking over continues: a scheduled retry is not put at once, an in-flight one is repeated', () => {
    const sim = new Sim(chain());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    sim.feed(sim.ok('a', 1));
    sim.feed(writeFailed('down', 'a'));
    const reloaded: RunState = JSON.parse(JSON.stringify(sim.state), (key, value: unknown) =>
      typeof value === 'string' && /At$/.test(key) && value !== null ? new Date(value) : value,
    ) as RunState;
    expect(reloaded.nodes['a']?.cacheWriteRetry).toEqual(sim.node('a').cacheWriteRetry);
    expect(recoverCommands(reloaded).filter((c) => c.type === 'WriteCache')).toEqual([]);
    expect(nextWakeAt(reloaded)).toBe(T0.getTime() + 250);
    sim.later(250);
    sim.tick(); // the retry is put: in flight
    const commands = recoverCommands(sim.state);
    expect(commands.filter((c) => c.type === 'WriteCache').flatMap((c) => (c.type === 'WriteCache' ? c.writes.map((w) => w.nodeId) : []))).toEqual(['a']);
  });
});

describe('decide: a hit must belong to its node and have its output type', () => {
  const typed = () =>
    workflowSpec('wf.typed', [{ ...taskNode('a', 't.a', { x: lit(1) }, { output: { type: 'number' } }), outputSchema: { type: 'number' } }, taskNode('b', 't.b', { x: ref('a') })], {
      outputs: { out: ref('b') },
    });

  test('a value of the wrong type is a MISS with a warning, the node reruns and repairs the entry', () => {
    const sim = new Sim(typed());
    sim.tick();
    const decision = sim.feed(looked(sim.hit('a', 'garbage')));
    expect(statusOf(sim, 'a')[0]).toBe('dispatched');
    expect(statusOf(sim, 'a')[1]).toBe('MISS');
    expect(statusOf(sim, 'a')[2]).toMatch(/^corrupt entry: its value does not match the task's output schema/);
    expect(eventsOf(decision).find((e) => e.type === 'node:cache-corrupt')).toMatchObject({ level: 'warn', nodeId: 'a' });
    sim.feed(sim.ok('a', 7));
    sim.feed(written('a'));
    expect(statusOf(sim, 'a')[1]).toBe('POPULATED');
  });

  test('a value of the right type hits; a spec without outputSchema is not checked', () => {
    const sim = new Sim(typed());
    sim.tick();
    sim.feed(looked(sim.hit('a', 7)));
    expect(statusOf(sim, 'a').slice(0, 2)).toEqual(['succeeded', 'HIT']);
    const old = new Sim(chain());
    old.tick();
    old.feed(looked(old.hit('a', 'anything')));
    expect(statusOf(old, 'a').slice(0, 2)).toEqual(['succeeded', 'HIT']);
  });

  test("an entry whose parts do not hash to its key, or that is another key's entry, is a MISS", () => {
    const sim = new Sim(typed());
    sim.tick();
    const hit = sim.hit('a', 7);
    if (hit.outcome !== 'hit') throw new Error('not a hit');
    const wrongParts = { ...hit, entry: { ...hit.entry, parts: { ...hit.entry.parts, version: '2' } } };
    sim.feed(looked(wrongParts));
    expect(statusOf(sim, 'a')[2]).toMatch(/key parts hash to .* not to its key/);
    const other = new Sim(typed());
    other.tick();
    const foreign = { ...hit, entry: { ...hit.entry, key: 'f'.repeat(64) } };
    other.feed(looked(foreign));
    expect(statusOf(other, 'a')[2]).toMatch(/the catalog returned entry/);
  });

  test('a value that fails the output schema is never written (PUT_FAILURE saying why)', () => {
    const sim = new Sim(typed());
    sim.tick();
    sim.feed(looked(sim.miss('a')));
    const decision = sim.feed(sim.ok('a', 'garbage'));
    expect(writesOf(decision).nodeIds).toEqual([]);
    expect(statusOf(sim, 'a')[0]).toBe('succeeded');
    expect(statusOf(sim, 'a')[1]).toBe('PUT_FAILURE');
    expect(statusOf(sim, 'a')[2]).toContain("does not match the task's output schema");
  });
});

describe('attemptFor: what an attempt promises about the code', () => {
  test("a cached node's attempt carries the definition version and signature digest, so a worker running other code can refuse it", () => {
    const node = { ...taskNode('a', 't.a', { x: lit(1) }), taskVersion: 'src-abc123' };
    const sim = new Sim(workflowSpec('wf.version', [node]));
    sim.tick();
    const [attempt] = attemptsOf(sim.feed(looked(sim.miss('a'))));
    expect(attempt).toMatchObject({ id: 'r1-a-1', taskVersion: 'src-abc123', signature: signatureDigest(node.signature) });
  });

  test("an uncached node's attempt carries only the signature: no key is written, and a derived version differs between loaders", () => {
    const node = { ...taskNode('a', 't.a', { x: lit(1) }, { cache: null }), taskVersion: 'src-abc123' };
    const sim = new Sim(workflowSpec('wf.version', [node]));
    const [attempt] = attemptsOf(sim.tick());
    expect(attempt).not.toHaveProperty('taskVersion');
    expect(attempt?.signature).toBe(signatureDigest(node.signature));
  });

  test('a spec saved before versions were sent (no taskVersion) gives an attempt without one; the signature is still sent', () => {
    const sim = new Sim(workflowSpec('wf.version', [taskNode('a', 't.a', { x: lit(1) }, { cache: null })]));
    const [attempt] = attemptsOf(sim.tick());
    expect(attempt).not.toHaveProperty('taskVersion');
    expect(attempt?.signature).toBe(signatureDigest(nodeSignature(sim, 'a')));
  });
});
