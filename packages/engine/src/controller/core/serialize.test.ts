/**
 * `cache: { serialize: true }` through `decide` (core/serialize.ts): a serialized node's miss asks
 * for its key's reservation; the owner looks up once more and executes, a waiter is WAITING naming
 * the owner's run and node, then HITs once the entry exists or takes over when the owner ended
 * without one; releases go out when a node ends however it ends. Pure: no catalog, no clock but `now`.
 */
import { describe, expect, test } from 'vitest';
import type { Json } from '../../json.js';
import { reservationOwner } from '../../ports/cache-reservations.js';
import { dynamicNode, ref, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import type { Decision } from './decide.js';
import { recoverCommands } from './decide.js';
import { attemptsOf, DecideRun, eventsOf, failedResult, hitOf, lookupsOf, missOf, okResult, RUN, T0 } from '../handlers/testing/run-fixtures.js';
import type { Command } from '../vocabulary/commands.js';
import type { ReservationAnswer } from '../vocabulary/events.js';

const ROWS = { value: [1, 2] };
const serialized = { serialize: true, ttlMs: 86_400_000 };
const one = workflowSpec('wf', [taskNode('a', 't.a', { rows: wfInput('rows') }, { cache: serialized, retries: 1 })], { inputs: { rows: true }, outputs: { out: ref('a') } });
/** Two nodes of one run with one key (same task, same inputs). */
const twins = workflowSpec(
  'wf',
  [taskNode('a', 't.a', { rows: wfInput('rows') }, { cache: serialized }), taskNode('b', 't.a', { rows: wfInput('rows') }, { cache: serialized })],
  { inputs: { rows: true }, outputs: { a: ref('a'), b: ref('b') } },
);

const reservationsOf = (d: Decision) => d.commands.flatMap((c) => (c.type === 'AcquireReservations' ? c.requests : []));
const releasesOf = (d: Decision) => d.commands.flatMap((c) => (c.type === 'ReleaseReservations' ? c.releases : []));
const commandTypes = (commands: readonly Command[]) => commands.map((c) => c.type).filter((t) => t !== 'EmitEvent');

function answered(run: DecideRun, ...answers: ReservationAnswer[]): Decision {
  return run.feed({ type: 'reservation:answered', answers });
}
const key = (run: DecideRun, id: string) => run.node(id).cacheKey ?? '';
const acquired = (run: DecideRun, id: string): ReservationAnswer => ({ nodeId: id, key: key(run, id), outcome: 'acquired' });
const heldBy = (run: DecideRun, id: string, owner: { runId: string; nodeId: string }): ReservationAnswer => ({
  nodeId: id,
  key: key(run, id),
  outcome: 'held',
  holder: { owner: reservationOwner(owner.runId, owner.nodeId), ...owner, expiresAt: new Date(T0.getTime() + 30_000) },
});

describe('a serialized task', () => {
  test('a miss asks for the reservation (owner: its first attempt id); acquired, it looks up once more, and a miss then executes', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    const miss = run.looked(missOf(run.state, 'a', 'output'));
    expect(attemptsOf(miss)).toEqual([]);
    expect(reservationsOf(miss)).toEqual([{ key: key(run, 'a'), kind: 'output', owner: `${RUN}-a-1`, runId: RUN, nodeId: 'a' }]);
    expect(run.node('a')).toMatchObject({ phase: 'looking-up', cacheStatus: 'MISS' });

    const again = answered(run, acquired(run, 'a'));
    expect(lookupsOf(again)).toEqual([{ nodeId: 'a', key: key(run, 'a'), kind: 'output', afterReservation: true }]);
    const executes = run.looked({ ...missOf(run.state, 'a', 'output'), afterReservation: true });
    expect(attemptsOf(executes).map((a) => a.id)).toEqual([`${RUN}-a-1`]);
    expect(reservationsOf(executes)).toEqual([]);
  });

  test('the owner releases after its entry is written, not when its output is known', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    answered(run, acquired(run, 'a'));
    run.looked({ ...missOf(run.state, 'a', 'output'), afterReservation: true });
    const done = run.finished(okResult(run.state, 'a', [1, 2]));
    expect(commandTypes(done.commands)).toEqual(['WriteCache']);
    const written = run.feed({ type: 'cache:written', writes: [{ nodeId: 'a', kind: 'output' }], ok: true });
    expect(releasesOf(written)).toEqual([{ key: key(run, 'a'), kind: 'output', owner: `${RUN}-a-1` }]);
    expect(run.node('a').cacheStatus).toBe('POPULATED');
  });

  test('a retry keeps the reservation; the node failing for good releases it', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    answered(run, acquired(run, 'a'));
    run.looked({ ...missOf(run.state, 'a', 'output'), afterReservation: true });
    const retry = run.finished(failedResult(run.state, 'a'));
    expect(attemptsOf(retry).map((a) => a.attempt)).toEqual([2]);
    expect(releasesOf(retry)).toEqual([]);
    const failed = run.finished(failedResult(run.state, 'a'));
    expect(run.node('a').phase).toBe('failed');
    expect(releasesOf(failed)).toEqual([{ key: key(run, 'a'), kind: 'output', owner: `${RUN}-a-1` }]);
  });

  test('held by another run: WAITING, the log line names its run and node; released, it looks up again and HITs', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    const waiting = answered(run, heldBy(run, 'a', { runId: 'r0', nodeId: 'x' }));
    expect(run.node('a')).toMatchObject({ phase: 'looking-up', cacheStatus: 'WAITING', cacheReason: "reservation held by run r0 node 'x'", waitedFor: { runId: 'r0', nodeId: 'x' } });
    expect(waiting.changed).toBe(true); // saved: run.nodes() and `runs show` see WAITING
    const [line] = eventsOf(waiting);
    expect(line).toMatchObject({ type: 'node:waiting', nodeId: 'a', cacheStatus: 'WAITING' });
    expect(line?.message).toContain("run r0 node 'x' holds the reservation");
    // The same answer again (a backstop poll) changes nothing and says nothing.
    const same = answered(run, heldBy(run, 'a', { runId: 'r0', nodeId: 'x' }));
    expect(same.changed).toBe(false);
    expect(eventsOf(same)).toEqual([]);

    const woken = run.feed({ type: 'reservation:released', nodeId: 'a', key: key(run, 'a') });
    expect(lookupsOf(woken)).toEqual([{ nodeId: 'a', key: key(run, 'a'), kind: 'output' }]);
    const hit = run.looked(hitOf(run.state, 'a', 'output', [1, 2] as Json, { runId: 'r0' }));
    expect(run.node('a')).toMatchObject({ phase: 'succeeded', cacheStatus: 'HIT', waitedFor: { runId: 'r0', nodeId: 'x' } });
    expect(attemptsOf(hit)).toEqual([]);
    expect(run.state.run.status).toBe('succeeded');
  });

  test('the owner ended without an entry (failed, or its reservation expired): the waiter takes over and executes, saying so', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    answered(run, heldBy(run, 'a', { runId: 'r0', nodeId: 'x' }));
    run.feed({ type: 'reservation:released', nodeId: 'a', key: key(run, 'a') });
    const again = run.looked(missOf(run.state, 'a', 'output'));
    expect(reservationsOf(again)).toHaveLength(1);
    expect(run.node('a').cacheStatus).toBe('WAITING'); // until answered
    answered(run, acquired(run, 'a'));
    const executes = run.looked({ ...missOf(run.state, 'a', 'output'), afterReservation: true });
    expect(attemptsOf(executes)).toHaveLength(1);
    expect(run.node('a')).toMatchObject({ phase: 'dispatched', cacheStatus: 'MISS' });
    expect(run.node('a').cacheReason).toContain("took over the reservation from run r0 node 'x'");
  });

  test('acquired, but the entry landed meanwhile: HIT, and the reservation is released at once', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    answered(run, acquired(run, 'a'));
    const hit = run.looked({ ...hitOf(run.state, 'a', 'output', [1, 2] as Json), afterReservation: true });
    expect(run.node('a').cacheStatus).toBe('HIT');
    expect(releasesOf(hit)).toEqual([{ key: key(run, 'a'), kind: 'output', owner: `${RUN}-a-1` }]);
  });

  test('a LOOKUP_FAILURE executes without a reservation (the catalog is failing; the run must not hang on it)', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    const failed = run.looked({ nodeId: 'a', key: key(run, 'a'), kind: 'output', outcome: 'failure', reason: 'connection refused' });
    expect(reservationsOf(failed)).toEqual([]);
    expect(attemptsOf(failed)).toHaveLength(1);
    expect(run.node('a').cacheStatus).toBe('LOOKUP_FAILURE');
  });

  test('the catalog failing to answer the reservation: the node executes without one, with a warning', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    const failure = answered(run, { nodeId: 'a', key: key(run, 'a'), outcome: 'failure', reason: 'timeout' });
    expect(eventsOf(failure)).toMatchObject([{ type: 'node:waiting', level: 'warn' }]);
    expect(lookupsOf(failure)).toEqual([{ nodeId: 'a', key: key(run, 'a'), kind: 'output', afterReservation: true }]);
  });

  test('stale answers and releases (a node that moved on, another key) are ignored', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'));
    expect(answered(run, { nodeId: 'a', key: 'other-key', outcome: 'acquired' }).commands).toEqual([]);
    expect(run.feed({ type: 'reservation:released', nodeId: 'a', key: key(run, 'a') }).commands).toEqual([]); // not WAITING
  });

  test('caching off or a skip never reserves', () => {
    const run = new DecideRun(one, { rows: ROWS });
    run.state = { ...run.state, run: { ...run.state.run, options: { overwriteCache: true } } };
    const d = run.tick();
    expect(reservationsOf(d)).toEqual([]);
    expect(attemptsOf(d)).toHaveLength(1);
    expect(run.node('a').cacheStatus).toBe('SKIPPED');
  });
});

describe('two nodes of one run with one key', () => {
  test('both ask in one batch; the one the catalog gives it to executes, the other WAITS, then HITs', () => {
    const run = new DecideRun(twins, { rows: ROWS });
    run.tick();
    const asks = run.looked(missOf(run.state, 'a', 'output'), missOf(run.state, 'b', 'output'));
    expect(reservationsOf(asks).map((r) => r.owner)).toEqual([`${RUN}-a-1`, `${RUN}-b-1`]);
    answered(run, acquired(run, 'a'), heldBy(run, 'b', { runId: RUN, nodeId: 'a' }));
    expect(run.node('b')).toMatchObject({ cacheStatus: 'WAITING', cacheReason: "reservation held by node 'a' of this run" });
    run.looked({ ...missOf(run.state, 'a', 'output'), afterReservation: true });
    run.finished(okResult(run.state, 'a', [1, 2]));
    const written = run.feed({ type: 'cache:written', writes: [{ nodeId: 'a', kind: 'output' }], ok: true });
    expect(releasesOf(written)).toHaveLength(1);
    run.feed({ type: 'reservation:released', nodeId: 'b', key: key(run, 'b') });
    run.looked(hitOf(run.state, 'b', 'output', [1, 2] as Json, { runId: RUN }));
    expect([run.node('a').cacheStatus, run.node('b').cacheStatus]).toEqual(['POPULATED', 'HIT']);
    expect(run.state.run.status).toBe('succeeded');
  });
});

describe('a serialized dynamic node', () => {
  const sub = workflowSpec('t.dyn', [taskNode('c0', 't.c', { x: wfInput('rows') }, { cache: null })], { inputs: { rows: true }, outputs: { result: ref('c0') } });
  const dyn = workflowSpec('wf', [dynamicNode('d', 't.dyn', { rows: wfInput('rows') }, { cache: serialized })], { inputs: { rows: true }, outputs: { out: ref('d') } });

  test('reserves before its body runs and holds the reservation until its output is written (the body and its children run once)', () => {
    const run = new DecideRun(dyn, { rows: ROWS });
    run.tick();
    const asks = run.looked(missOf(run.state, 'd', 'output'), missOf(run.state, 'd', 'future'));
    expect(reservationsOf(asks)).toHaveLength(1);
    const again = answered(run, acquired(run, 'd'));
    expect(lookupsOf(again).map((l) => [l.kind, l.afterReservation])).toEqual([['output', true], ['future', true]]);
    const body = run.looked({ ...missOf(run.state, 'd', 'output'), afterReservation: true }, { ...missOf(run.state, 'd', 'future'), afterReservation: true });
    expect(attemptsOf(body)).toHaveLength(1);
    const expanded = run.finished(okResult(run.state, 'd', sub as unknown as Json));
    expect(run.node('d').phase).toBe('expanded');
    expect(releasesOf(expanded)).toEqual([]);
    // Recovery while expanded: the reservation is asked for again (renewed, and heartbeated from then on).
    expect(recoverCommands(run.state).filter((c) => c.type === 'AcquireReservations')).toMatchObject([{ requests: [{ owner: `${RUN}-d-1` }] }]);
    run.finished(okResult(run.state, 'd.c0', 3));
    const written = run.feed({ type: 'cache:written', writes: [{ nodeId: 'd', kind: 'output' }], ok: true });
    expect(releasesOf(written)).toEqual([{ key: key(run, 'd'), kind: 'output', owner: `${RUN}-d-1` }]);
  });
});

describe('recovery', () => {
  test('a WAITING or reserving node is looked up again (a miss asks again); an executing one renews its reservation', () => {
    const run = new DecideRun(twins, { rows: ROWS });
    run.tick();
    run.looked(missOf(run.state, 'a', 'output'), missOf(run.state, 'b', 'output'));
    answered(run, acquired(run, 'a'), heldBy(run, 'b', { runId: RUN, nodeId: 'a' }));
    run.looked({ ...missOf(run.state, 'a', 'output'), afterReservation: true });
    const commands = recoverCommands(run.state);
    expect(commandTypes(commands)).toEqual(['LookupCache', 'DispatchTask', 'AcquireReservations']);
    expect(commands.find((c) => c.type === 'LookupCache')).toMatchObject({ lookups: [{ nodeId: 'b', kind: 'output' }] });
    expect(commands.find((c) => c.type === 'AcquireReservations')).toMatchObject({ requests: [{ nodeId: 'a', owner: `${RUN}-a-1` }] });
  });
});
