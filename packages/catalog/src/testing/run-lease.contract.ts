import type { RunRecord, RunState, RunStore } from '@memoflow/engine';
import { describe, expect, it } from 'vitest';
import { fixturePerSuite } from './fixture-per-suite.js';
import { FakeClock } from './fake-clock.js';
import type { RunStoreFixture } from './run-store.contract.js';

/**
 * The lease half of the RunStore contract (ports/run-store.ts: acquireLease, renewLeases,
 * releaseLeases, listUnleased, and create's lease). Every implementation runs it on a fake clock:
 * `open` gets the clock the store must measure leases by.
 */
export function describeRunLeaseContract(name: string, open: (clock: FakeClock) => Promise<RunStoreFixture>): void {
  describe(`RunStore lease contract: ${name}`, () => {
    const clock = new FakeClock();
    let store: RunStore;
    fixturePerSuite(() => open(clock), (opened) => {
      store = opened.runStore;
    });

    const expiresIn = (ms: number) => new Date(clock.now().getTime() + ms);

    it('a run created with a lease is its creator\'s: another controller is told who holds it and until when', async () => {
      await store.create(runState('r1'), { owner: 'c1', ttlMs: 2_000 });
      expect(await store.acquireLease('r1', { owner: 'c2', ttlMs: 2_000 })).toEqual({ kind: 'held', owner: 'c1', expiresAt: expiresIn(2_000) });
      // The holder acquiring again renews it.
      clock.advance(500);
      expect(await store.acquireLease('r1', { owner: 'c1', ttlMs: 2_000 })).toEqual({ kind: 'acquired', expiresAt: expiresIn(2_000), previousOwner: null });
      expect(await store.listUnleased()).toEqual([]);
    });

    it('an expired lease is taken over; the old owner\'s heartbeat no longer returns the run', async () => {
      await store.create(runState('r1'), { owner: 'c1', ttlMs: 1_000 });
      clock.advance(999);
      expect((await store.acquireLease('r1', { owner: 'c2', ttlMs: 1_000 })).kind).toBe('held');
      clock.advance(1);
      expect((await store.listUnleased()).map((r) => r.id)).toEqual(['r1']);
      expect(await store.acquireLease('r1', { owner: 'c2', ttlMs: 1_000 })).toEqual({ kind: 'acquired', expiresAt: expiresIn(1_000), previousOwner: 'c1' });
      expect(await store.renewLeases({ owner: 'c1', ttlMs: 1_000 })).toEqual([]);
      expect(await store.acquireLease('r1', { owner: 'c1', ttlMs: 1_000 })).toMatchObject({ kind: 'held', owner: 'c2' });
    });

    it('a run created without a lease (as every run of an earlier release) is free', async () => {
      await store.create(runState('old'));
      expect((await store.listUnleased()).map((r) => r.id)).toEqual(['old']);
      expect(await store.acquireLease('old', { owner: 'c1', ttlMs: 1_000 })).toEqual({ kind: 'acquired', expiresAt: expiresIn(1_000), previousOwner: null });
    });

    it('a lease held by a controller known to be gone is taken at once when the caller names it', async () => {
      await store.create(runState('r1'), { owner: 'dead', ttlMs: 60_000 });
      expect((await store.acquireLease('r1', { owner: 'c2', ttlMs: 1_000, replacing: 'someone-else' })).kind).toBe('held');
      expect(await store.acquireLease('r1', { owner: 'c2', ttlMs: 1_000, replacing: 'dead' })).toEqual({ kind: 'acquired', expiresAt: expiresIn(1_000), previousOwner: 'dead' });
    });

    it('one heartbeat renews every running run of its owner, releases its finished ones, and leaves the rest alone', async () => {
      await store.create(runState('a'), { owner: 'c1', ttlMs: 1_000 });
      await store.create(runState('b'), { owner: 'c1', ttlMs: 1_000 });
      await store.create(runState('done'), { owner: 'c1', ttlMs: 1_000 });
      await store.create(runState('theirs'), { owner: 'c2', ttlMs: 1_000 });
      expect(await store.save({ run: finished(runState('done').run), nodes: [], expectedVersion: 0 })).toBe(true);
      clock.advance(900);
      expect((await store.renewLeases({ owner: 'c1', ttlMs: 1_000 })).sort()).toEqual(['a', 'b']);
      clock.advance(900); // c1's runs were renewed at 900; c2's lease expired at 1,000
      expect((await store.listUnleased()).map((r) => r.id)).toEqual(['theirs']);
      expect(await store.acquireLease('a', { owner: 'c2', ttlMs: 1_000 })).toEqual({ kind: 'held', owner: 'c1', expiresAt: new Date(clock.now().getTime() + 100) });
      expect(await store.acquireLease('done', { owner: 'c2', ttlMs: 1_000 })).toEqual({ kind: 'finished' });
      // Nothing of the runs themselves changed: not even the version.
      expect((await store.load('a'))?.run.version).toBe(0);
    });

    it('an expired lease nobody took is renewed by its owner\'s heartbeat', async () => {
      await store.create(runState('r1'), { owner: 'c1', ttlMs: 1_000 });
      clock.advance(5_000);
      expect(await store.renewLeases({ owner: 'c1', ttlMs: 1_000 })).toEqual(['r1']);
      expect((await store.acquireLease('r1', { owner: 'c2', ttlMs: 1_000 })).kind).toBe('held');
    });

    it('releasing frees the owner\'s leases (all, or the ones named) and never another\'s', async () => {
      await store.create(runState('a'), { owner: 'c1', ttlMs: 60_000 });
      await store.create(runState('b'), { owner: 'c1', ttlMs: 60_000 });
      await store.create(runState('c'), { owner: 'c1', ttlMs: 60_000 });
      await store.create(runState('theirs'), { owner: 'c2', ttlMs: 60_000 });
      await store.releaseLeases('c1', ['a']);
      expect((await store.listUnleased()).map((r) => r.id)).toEqual(['a']);
      await store.releaseLeases('c1', []);
      await store.releaseLeases('c1');
      expect((await store.listUnleased()).map((r) => r.id).sort()).toEqual(['a', 'b', 'c']);
      await store.releaseLeases('c1', ['theirs']);
      expect((await store.acquireLease('theirs', { owner: 'c3', ttlMs: 1_000 })).kind).toBe('held');
    });

    it('finished and unknown runs cannot be leased', async () => {
      await store.create(runState('done'));
      expect(await store.save({ run: finished(runState('done').run), nodes: [], expectedVersion: 0 })).toBe(true);
      expect(await store.acquireLease('done', { owner: 'c1', ttlMs: 1_000 })).toEqual({ kind: 'finished' });
      expect(await store.acquireLease('missing', { owner: 'c1', ttlMs: 1_000 })).toEqual({ kind: 'missing' });
      expect(await store.listUnleased()).toEqual([]);
    });

    it('of many controllers racing for one expired lease, exactly one acquires it', async () => {
      await store.create(runState('r1'), { owner: 'dead', ttlMs: 1_000 });
      clock.advance(1_000);
      const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => store.acquireLease('r1', { owner: `c${i}`, ttlMs: 1_000 })));
      const winners = outcomes.flatMap((outcome, i) => (outcome.kind === 'acquired' ? [`c${i}`] : []));
      expect(winners).toHaveLength(1);
      expect(outcomes.filter((o) => o.kind === 'held')).toHaveLength(7);
      expect(await store.renewLeases({ owner: winners[0] as string, ttlMs: 1_000 })).toEqual(['r1']);
    });

    it('saves leave the lease alone, and a lease leaves the version check alone', async () => {
      const state = runState('r1');
      await store.create(state, { owner: 'c1', ttlMs: 1_000 });
      // The lease decides who drives; the version still decides which save wins, whoever makes it.
      expect(await store.save({ run: state.run, nodes: [], expectedVersion: 0 })).toBe(true);
      expect(await store.save({ run: state.run, nodes: [], expectedVersion: 0 })).toBe(false);
      expect((await store.acquireLease('r1', { owner: 'c2', ttlMs: 1_000 })).kind).toBe('held');
      expect((await store.load('r1'))?.run).toEqual({ ...state.run, version: 1 });
    });

    it("a save that names its controller is refused while another holds a live lease, and writes nothing; free, expired or its own, it lands", async () => {
      const state = runState('r1');
      await store.create(state, { owner: 'c1', ttlMs: 1_000 });
      const stale = { run: { ...state.run, status: 'failed' as const, updatedAt: new Date('2030-01-01T00:00:05.000Z') }, nodes: [], expectedVersion: 0 };
      await expect(store.save({ ...stale, owner: 'c2' })).rejects.toMatchObject({ code: 'RUN_LEASED', retryable: true, retryAfterMs: 1_000 });
      expect((await store.load('r1'))?.run).toEqual({ ...state.run, version: 0 });
      // A version that does not match is a lost race, whoever holds the lease.
      expect(await store.save({ ...stale, expectedVersion: 7, owner: 'c2' })).toBe(false);
      // The holder's save lands; so does one naming no controller (the version alone decides).
      expect(await store.save({ run: state.run, nodes: [], expectedVersion: 0, owner: 'c1' })).toBe(true);
      expect(await store.save({ run: state.run, nodes: [], expectedVersion: 1 })).toBe(true);
      // Expired: nobody took the run over, so the slow owner's save lands (and so would anyone's).
      clock.advance(1_000);
      expect(await store.save({ run: state.run, nodes: [], expectedVersion: 2, owner: 'c2' })).toBe(true);
      expect((await store.acquireLease('r1', { owner: 'c2', ttlMs: 1_000 })).kind).toBe('acquired');
      clock.advance(400);
      await expect(store.save({ run: state.run, nodes: [], expectedVersion: 3, owner: 'c1' })).rejects.toMatchObject({ code: 'RUN_LEASED', retryAfterMs: 600 });
      await store.releaseLeases('c2');
      expect(await store.save({ run: state.run, nodes: [], expectedVersion: 3, owner: 'c1' })).toBe(true);
      expect((await store.load('r1'))?.run.version).toBe(4);
    });

    it('lists unleased runs least recently updated first, up to the limit', async () => {
      for (const [id, second] of [['late', 30], ['early', 10], ['middle', 20]] as const) {
        const state = runState(id);
        state.run.updatedAt = new Date(`2030-01-01T00:00:${second}.000Z`);
        await store.create(state);
      }
      expect((await store.listUnleased()).map((r) => r.id)).toEqual(['early', 'middle', 'late']);
      expect((await store.listUnleased(2)).map((r) => r.id)).toEqual(['early', 'middle']);
      expect((await store.listUnleased(2))[0]).toMatchObject({ id: 'early', status: 'running', workflow: 'lease.wf', options: { overwriteCache: false, pool: 'bullmq:memoflow' } });
    });
  });
}

function runState(id: string): RunState {
  return {
    run: {
      id,
      workflow: 'lease.wf',
      project: 'demo',
      domain: 'dev',
      spec: { specVersion: 1, name: 'lease.wf', inputs: {}, hashedInputs: [], nodes: [], outputs: {} },
      inputs: {},
      options: { overwriteCache: false, pool: 'bullmq:memoflow' },
      status: 'running',
      outputs: null,
      error: null,
      version: 0,
      createdAt: new Date('2030-01-01T00:00:00.000Z'),
      updatedAt: new Date('2030-01-01T00:00:00.000Z'),
      finishedAt: null,
    },
    nodes: {},
  };
}

function finished(run: RunRecord): RunRecord {
  return { ...run, status: 'succeeded', outputs: {}, finishedAt: new Date('2030-01-01T00:00:05.000Z') };
}
