/**
 * The early-cutoff report at the level of `decide` (core/cutoff.ts): a node the cascade reruns asks
 * for a shadow lookup of its own key in the round that starts it, batched into that round's one
 * lookup; an earlier run's entry there is recorded as a hint naming the upstream node, and the
 * answer never changes the node's status or what runs.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import type { NodeExecution } from '../../state/run-state.js';
import { lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { attemptsOf, DecideRun, eventsOf, hitOf, lookupsOf, missOf, okResult, T0, writesOf } from '../handlers/testing/run-fixtures.js';
import type { CacheLookup } from '../vocabulary/commands.js';
import type { LookupOutcome } from '../vocabulary/events.js';

const DAY = 86_400_000;

/** a -> b -> c, and h -> k beside them (k reads only h). */
function spec(options: { cacheB?: null } = {}): WorkflowSpec {
  return workflowSpec(
    'wf.cutoff',
    [
      taskNode('a', 't.a', { x: lit(1) }),
      taskNode('h', 't.h', { x: lit(2) }),
      taskNode('b', 't.b', { x: ref('a') }, options.cacheB === null ? { cache: null } : { cache: { ttlMs: DAY } }),
      taskNode('c', 't.c', { x: ref('b') }),
      taskNode('k', 't.k', { x: ref('h') }),
    ],
    { outputs: { c: ref('c'), k: ref('k') } },
  );
}

const shadows = (lookups: readonly CacheLookup[]) => lookups.filter((l) => l.shadow !== undefined);
const real = (lookups: readonly CacheLookup[]) => lookups.filter((l) => l.shadow === undefined);

/** The shadow answer for node `id`: `outcome` as the shell feeds it back, flagged as the lookup was. */
function shadowAnswer(run: DecideRun, id: string, upstream: string, outcome: LookupOutcome): LookupOutcome {
  expect(run.node(id).cacheKey).toBe(outcome.key);
  return { ...outcome, shadow: { upstream } };
}

/** Round 1 looked up a and h; a missed and ran; now a finishes as h hits: b (cascaded) and k (looked up) start in one round. */
function cascadeRound(options: { cacheB?: null } = {}) {
  const run = new DecideRun(spec(options));
  run.tick();
  run.looked(missOf(run.state, 'a', 'output'));
  const round = run.feed({ type: 'attempt:finished', result: okResult(run.state, 'a', 1) }, { type: 'cache:looked-up', results: [hitOf(run.state, 'h', 'output', 2, { durationMs: 700 })] });
  return { run, round };
}

const status = (node: NodeExecution) => [node.phase, node.cacheStatus, node.cacheReason];

describe('early cutoff: the shadow lookup', () => {
  test('the cascade asks for the node\'s own key in the round\'s one lookup, beside the real ones; the node runs as the cascade says', () => {
    const { run, round } = cascadeRound();
    const lookups = round.commands.filter((c) => c.type === 'LookupCache');
    expect(lookups).toHaveLength(1);
    expect(real(lookupsOf(round))).toEqual([{ nodeId: 'k', key: run.node('k').cacheKey, kind: 'output' }]);
    expect(shadows(lookupsOf(round))).toEqual([{ nodeId: 'b', key: run.node('b').cacheKey, kind: 'output', shadow: { upstream: 'a' } }]);
    expect(status(run.node('b'))).toEqual(['dispatched', 'SKIPPED', 'upstream-reran']);
    expect(attemptsOf(round).map((a) => a.nodeId)).toEqual(['b']);
  });

  test("an earlier run's entry under its key: a hint naming the upstream, the compute and the entry; nothing else changes", () => {
    const { run } = cascadeRound();
    const before = run.node('b');
    const answered = run.looked(shadowAnswer(run, 'b', 'a', hitOf(run.state, 'b', 'output', 1, { durationMs: 4200, runId: 'r0' })));
    expect(answered.commands).toEqual([]); // no lookup, dispatch, write or event: the report only
    expect(run.node('b')).toEqual({ ...before, cutoffHint: { upstream: 'a', savedMs: 4200, entry: { runId: 'r0', nodeId: 'b' } } });
    expect(answered.changedNodes).toEqual(['b']); // saved with the run, for `runs show`
  });

  test('an entry that recorded no duration (an earlier release) is a hint with unknown savings', () => {
    const { run } = cascadeRound();
    run.looked(shadowAnswer(run, 'b', 'a', hitOf(run.state, 'b', 'output', 1)));
    expect(run.node('b').cutoffHint).toEqual({ upstream: 'a', savedMs: null, entry: { runId: 'r0', nodeId: 'b' } });
  });

  test('no hint for a miss, a failed lookup, a corrupt, expired or foreign entry, or an entry this run wrote', () => {
    const answers: ((run: DecideRun) => LookupOutcome)[] = [
      (run) => missOf(run.state, 'b', 'output'),
      (run) => ({ nodeId: 'b', key: run.node('b').cacheKey as string, kind: 'output', outcome: 'failure', reason: 'connection reset' }),
      (run) => ({ nodeId: 'b', key: run.node('b').cacheKey as string, kind: 'output', outcome: 'corrupt', reason: 'checksum mismatch' }),
      (run) => hitOf(run.state, 'b', 'output', 1, { createdAt: new Date(T0.getTime() - 2 * DAY) }),
      (run) => {
        const hit = hitOf(run.state, 'b', 'output', 1);
        return hit.outcome === 'hit' ? { ...hit, entry: { ...hit.entry, parts: { ...hit.entry.parts, version: 'other' } } } : hit;
      },
      (run) => hitOf(run.state, 'b', 'output', 1, { runId: run.state.run.id }),
    ];
    for (const answer of answers) {
      const { run } = cascadeRound();
      const before = run.node('b');
      const decision = run.looked(shadowAnswer(run, 'b', 'a', answer(run)));
      expect(decision.commands).toEqual([]);
      expect(run.node('b')).toBe(before);
    }
  });

  test('an answer for another key (stale), or for a node that no longer reruns by the cascade, is ignored', () => {
    const { run } = cascadeRound();
    const before = run.node('b');
    const hit = hitOf(run.state, 'b', 'output', 1);
    run.looked({ ...hit, key: 'another-key', shadow: { upstream: 'a' } });
    expect(run.node('b')).toBe(before);
    // k was looked up for real: a shadow answer naming it changes nothing either.
    const k = run.node('k');
    run.looked(shadowAnswer(run, 'k', 'h', hitOf(run.state, 'k', 'output', 3)));
    expect(run.node('k')).toBe(k);
  });

  test('an answer arriving after the node finished is still recorded; its own write is never mistaken for one', () => {
    const { run } = cascadeRound();
    const done = run.finished(okResult(run.state, 'b', 1));
    expect(writesOf(done).map((e) => e.nodeId)).toEqual(['b']);
    expect(run.node('b').phase).toBe('writing');
    run.looked(shadowAnswer(run, 'b', 'a', hitOf(run.state, 'b', 'output', 1, { durationMs: 10, runId: 'r0' })));
    expect(run.node('b')).toMatchObject({ phase: 'writing', cacheStatus: 'SKIPPED', cutoffHint: { upstream: 'a', savedMs: 10 } });
  });

  test('transitively: c, cascaded by b, names b (the node whose output would need hashWith)', () => {
    const { run } = cascadeRound();
    const bDone = run.finished(okResult(run.state, 'b', 1));
    expect(shadows(lookupsOf(bDone))).toEqual([{ nodeId: 'c', key: run.node('c').cacheKey, kind: 'output', shadow: { upstream: 'b' } }]);
  });

  test('no shadow lookup for an uncached node, nor for the skips that are not the cascade (overwrite)', () => {
    const uncached = cascadeRound({ cacheB: null });
    expect(shadows(lookupsOf(uncached.round))).toEqual([]);
    expect(uncached.run.node('b').cacheStatus).toBe('DISABLED');

    const overwrite = new DecideRun(spec());
    overwrite.state.run = { ...overwrite.state.run, options: { overwriteCache: true } };
    const first = overwrite.tick();
    expect(lookupsOf(first)).toEqual([]);
    overwrite.finished(okResult(overwrite.state, 'a', 1));
    expect(shadows(lookupsOf(overwrite.last))).toEqual([]);
    expect(overwrite.node('b').cacheReason).toBe('overwrite');
  });

  test('property: whatever the shadow answers are and whenever they arrive, phases, statuses and effects are those of the run without them', () => {
    type Answer = 'miss' | 'hit-earlier' | 'hit-own' | 'failure' | 'corrupt';
    const answer = fc.constantFrom<Answer>('miss', 'hit-earlier', 'hit-own', 'failure', 'corrupt');
    fc.assert(
      fc.property(answer, answer, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.option(fc.nat({ max: 2 ** 40 })), (bAnswer, cAnswer, bAt, cAt, durationMs) => {
        const outcome = (run: DecideRun, id: string, kind: Answer): LookupOutcome => {
          const key = run.node(id).cacheKey as string;
          switch (kind) {
            case 'miss':
              return missOf(run.state, id, 'output');
            case 'hit-earlier':
              return hitOf(run.state, id, 'output', 1, { durationMs, runId: 'r0' });
            case 'hit-own':
              return hitOf(run.state, id, 'output', 1, { runId: run.state.run.id });
            case 'failure':
              return { nodeId: id, key, kind: 'output', outcome: 'failure', reason: 'down' };
            case 'corrupt':
              return { nodeId: id, key, kind: 'output', outcome: 'corrupt', reason: 'bad' };
          }
        };
        // Steps after the cascade round: b finishes, b's write lands, c finishes, c's write and k's hit.
        const drive = (withShadows: boolean) => {
          const { run } = cascadeRound();
          const pending: { at: number; id: string; upstream: string; kind: Answer }[] = [];
          if (withShadows) pending.push({ at: bAt, id: 'b', upstream: 'a', kind: bAnswer });
          const effects: unknown[] = [];
          const steps = [
            () => run.finished(okResult(run.state, 'b', 1)),
            () => run.feed({ type: 'cache:written', writes: [{ nodeId: 'a', kind: 'output' }, { nodeId: 'b', kind: 'output' }], ok: true }),
            () => run.finished(okResult(run.state, 'c', 1)),
            () => run.feed({ type: 'cache:written', writes: [{ nodeId: 'c', kind: 'output' }], ok: true }, { type: 'cache:looked-up', results: [hitOf(run.state, 'k', 'output', 3)] }),
          ];
          steps.forEach((step, i) => {
            for (const p of pending.filter((q) => q.at === i)) run.looked({ ...outcome(run, p.id, p.kind), shadow: { upstream: p.upstream } });
            const decision = step();
            effects.push(decision.commands.filter((c) => c.type !== 'LookupCache' || real(c.lookups).length > 0).map((c) => (c.type === 'LookupCache' ? real(c.lookups) : c)));
            if (withShadows && i === 0) pending.push({ at: Math.max(cAt, 1), id: 'c', upstream: 'b', kind: cAnswer });
          });
          const nodes = Object.values(run.state.nodes).map((n) => status(n));
          return { nodes, effects, run };
        };
        const plain = drive(false);
        const shadowed = drive(true);
        expect(shadowed.nodes).toEqual(plain.nodes);
        expect(shadowed.effects).toEqual(plain.effects);
        expect(shadowed.run.state.run.status).toBe('succeeded');
        // A hint only where an earlier run's entry was found.
        expect(shadowed.run.node('b').cutoffHint != null).toBe(bAnswer === 'hit-earlier');
      }),
      { numRuns: 150 },
    );
  });
});

describe('saved compute: a HIT', () => {
  test('records what its entry recorded and says so on node:cache-hit; an entry without a duration saves an unknown amount', () => {
    const { run, round } = cascadeRound();
    expect(run.node('h')).toMatchObject({ cacheStatus: 'HIT', savedMs: 700 });
    expect(eventsOf(round).find((e) => e.type === 'node:cache-hit' && e.nodeId === 'h')).toMatchObject({ savedMs: 700 });
    const hit = run.looked(hitOf(run.state, 'k', 'output', 3));
    expect(run.node('k')).toMatchObject({ cacheStatus: 'HIT', savedMs: null });
    expect(eventsOf(hit).find((e) => e.type === 'node:cache-hit')).toMatchObject({ nodeId: 'k', savedMs: null });
  });
});
