import { describe, expect, test } from 'vitest';
import { cancelError } from '../../state/cancel-request.js';
import { isTerminal } from '../../state/node-phase.js';
import { lit, ref, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { DecideRun, attemptsOf, eventsOf, lookupsOf, missOf, okResult, writesOf } from '../handlers/testing/run-fixtures.js';
import type { Decision } from './decide.js';
import { recoverCommands } from './decide.js';

/*
 * Cancelling a run at decide level: every unfinished node ends `cancelled`, dispatched attempts are
 * cancelled, nothing of an unfinished node is written to the cache, and whatever arrives with or
 * after the cancel is dropped.
 */

const REQUEST = cancelError('cancelled by a test');
const cancelled = (decision: Decision): string[] => decision.commands.flatMap((c) => (c.type === 'CancelAttempts' ? c.attempts.map((a) => a.id) : []));

/** a (cached) -> b (cached) -> c (uncached); d alongside a, uncached. */
function chain(): DecideRun {
  return new DecideRun(
    workflowSpec('wf', [
      taskNode('a', 't.a', { x: lit(1) }),
      taskNode('b', 't.b', { x: ref('a') }),
      taskNode('c', 't.c', { x: ref('b') }, { cache: null }),
      taskNode('d', 't.d', { x: lit(2) }, { cache: null }),
    ]),
  );
}

describe('cancel', () => {
  test('a running run ends cancelled: dispatched attempts are cancelled, pending nodes never start', () => {
    const run = chain();
    run.tick(); // a looks up, d is dispatched
    run.looked(missOf(run.state, 'a', 'output')); // a is dispatched
    expect(run.node('a').phase).toBe('dispatched');
    expect(run.node('d').phase).toBe('dispatched');

    const decision = run.feed({ type: 'run:cancel', error: REQUEST });
    expect(run.state.run.status).toBe('cancelled');
    expect(run.state.run.error).toEqual(REQUEST);
    expect(run.state.run.finishedAt).not.toBeNull();
    // And b's first attempt: a is dispatched, so a controller that had a's result may have sent
    // b-1 beside a save that never landed (see cancelUnrecorded).
    expect(cancelled(decision).sort()).toEqual(['r1-a-1', 'r1-b-1', 'r1-d-1']);
    expect(attemptsOf(decision)).toEqual([]);
    expect(lookupsOf(decision)).toEqual([]);
    expect(writesOf(decision)).toEqual([]);
    for (const id of ['a', 'b', 'c', 'd']) expect(run.node(id).phase).toBe('cancelled');
    expect(run.node('b').startedAt).toBeNull(); // never started
    const events = eventsOf(decision);
    expect(events.filter((e) => e.type === 'node:cancelled').map((e) => e.nodeId).sort()).toEqual(['a', 'b', 'c', 'd']);
    const end = events.find((e) => e.type === 'run:cancelled');
    expect(end?.message).toBe('2 running node(s) stopped, 2 never started');
    expect(end?.error?.code).toBe('RUN_CANCELLED');
  });

  test('a result arriving with or after the cancel is dropped: no cache write, the node stays cancelled', () => {
    const run = chain();
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    const late = okResult(run.state, 'a', 10);
    // In the same round as the cancel, even ahead of it: the cancel goes first.
    const together = run.feed({ type: 'attempt:finished', result: late }, { type: 'run:cancel', error: REQUEST });
    expect(writesOf(together)).toEqual([]);
    expect(run.node('a').phase).toBe('cancelled');
    expect(run.node('a').output).toBeNull();
    // After it: nothing changes at all.
    const after = run.finished(late);
    expect(after.changed).toBe(false);
    expect(after.commands).toEqual([]);
  });

  test('a loaded run carrying a cancel request is cancelled by any decision, without the event', () => {
    const run = chain();
    run.tick();
    run.state.run = { ...run.state.run, error: REQUEST }; // what RunStore.requestCancel records
    expect(recoverCommands(run.state)).toEqual([]); // a controller taking it over repeats nothing
    const decision = run.finished(okResult(run.state, 'd', 2));
    expect(run.state.run.status).toBe('cancelled');
    expect(run.node('d').phase).toBe('cancelled'); // its result came with the round that cancelled
    // d's attempt, and a's first: a was looking up, so a controller may have sent it beside a save
    // that never landed (after a miss); nothing records it, so it is cancelled by its id.
    expect(cancelled(decision)).toEqual(['r1-a-1', 'r1-d-1']);
    expect(writesOf(decision)).toEqual([]);
  });

  test('finished nodes keep their results; a node writing its entry ends succeeded', () => {
    const run = chain();
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    run.finished(okResult(run.state, 'a', 10)); // a: writing; b runs (SKIPPED upstream-reran)
    expect(run.node('a').phase).toBe('writing');
    run.finished(okResult(run.state, 'd', 2)); // d: succeeded (uncached)
    const decision = run.feed({ type: 'run:cancel', error: REQUEST });
    expect(run.node('a').phase).toBe('succeeded');
    expect(run.node('a').output?.value).toBe(10);
    expect(run.node('d').phase).toBe('succeeded');
    expect(run.node('b').phase).toBe('cancelled');
    expect(run.node('c').phase).toBe('cancelled');
    // b's attempt, and c's first (b is dispatched: c-1 may have gone out beside a save that never landed).
    expect(cancelled(decision)).toEqual(['r1-c-1', 'r1-b-1']);
    expect(Object.values(run.state.nodes).every((n) => isTerminal(n.phase))).toBe(true);
  });

  test('cancelling a finished run changes nothing', () => {
    const run = new DecideRun(workflowSpec('wf', [taskNode('a', 't.a', { x: lit(1) }, { cache: null })]));
    run.tick();
    run.finished(okResult(run.state, 'a', 1));
    expect(run.state.run.status).toBe('succeeded');
    const decision = run.feed({ type: 'run:cancel', error: REQUEST });
    expect(decision.changed).toBe(false);
    expect(run.state.run.status).toBe('succeeded');
  });

  test('attempts one step ahead of the stored state (sent beside a save that never landed) are cancelled by the ids they would have', () => {
    const run = new DecideRun(
      workflowSpec('wf', [
        taskNode('a', 't.a', { x: lit(1) }, { cache: null, retries: 2 }),
        taskNode('b', 't.b', { x: ref('a') }, { cache: null }),
        taskNode('c', 't.c', { x: ref('b') }, { cache: null }),
        taskNode('d', 't.d', { x: lit(2) }, { cache: null }),
      ]),
    );
    run.tick(); // a-1 and d-1 dispatched
    run.finished(okResult(run.state, 'd', 2)); // d done
    const decision = run.feed({ type: 'run:cancel', error: REQUEST });
    expect(run.state.run.status).toBe('cancelled');
    // a-1 (recorded), a-2 (its retry), b-1 (a's result may have readied it); not c-1 (b has no
    // output and is not dispatched, so nothing can have sent c), nothing of d (finished).
    expect(cancelled(decision)).toEqual(['r1-a-2', 'r1-b-1', 'r1-a-1']);
  });
});
