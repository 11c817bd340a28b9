import type { CacheCatalog, ReleasedReservation, ReservationRequest } from '@memoflow/engine';
import { describe, expect, it, vi } from 'vitest';
import { fixturePerSuite } from './fixture-per-suite.js';
import type { CacheCatalogFixture } from './cache-catalog.contract.js';
import { FakeClock } from './fake-clock.js';

/**
 * The reservation half of the CacheCatalog contract (engine ports/cache-reservations.ts), on a fake
 * clock: `open` gets the clock the catalog must measure expiry by. `reset` must also free every
 * reservation.
 */
export function describeCacheReservationContract(name: string, open: (clock: FakeClock) => Promise<CacheCatalogFixture>): void {
  describe(`CacheCatalog reservation contract: ${name}`, () => {
    const clock = new FakeClock();
    let catalog: CacheCatalog;
    fixturePerSuite(() => open(clock), (opened) => {
      catalog = opened.catalog;
    });

    const expiresIn = (ms: number) => new Date(clock.now().getTime() + ms);
    const ask = (owner: string, overrides: Partial<ReservationRequest> = {}): ReservationRequest => ({ key: 'k1', kind: 'output', owner, runId: `run-of-${owner}`, nodeId: `node-of-${owner}`, ttlMs: 1_000, ...overrides });

    it('the first asker acquires; another is told who holds it (owner, run, node) and until when', async () => {
      expect(await catalog.acquireReservations([ask('a')])).toEqual([{ key: 'k1', kind: 'output', owner: 'a', outcome: 'acquired', expiresAt: expiresIn(1_000) }]);
      clock.advance(200);
      expect(await catalog.acquireReservations([ask('b')])).toEqual([
        { key: 'k1', kind: 'output', owner: 'b', outcome: 'held', holder: { owner: 'a', runId: 'run-of-a', nodeId: 'node-of-a', expiresAt: expiresIn(800) } },
      ]);
    });

    it('the same owner acquiring again renews its reservation', async () => {
      await catalog.acquireReservations([ask('a')]);
      clock.advance(900);
      expect(await catalog.acquireReservations([ask('a', { ttlMs: 5_000 })])).toMatchObject([{ outcome: 'acquired', expiresAt: expiresIn(5_000) }]);
      clock.advance(4_999);
      expect(await catalog.acquireReservations([ask('b')])).toMatchObject([{ outcome: 'held', holder: { owner: 'a' } }]);
    });

    it('an expired reservation is taken over; the old owner no longer holds or extends it', async () => {
      await catalog.acquireReservations([ask('a')]);
      clock.advance(999);
      expect(await catalog.acquireReservations([ask('b')])).toMatchObject([{ outcome: 'held' }]);
      clock.advance(1);
      expect(await catalog.acquireReservations([ask('b')])).toEqual([{ key: 'k1', kind: 'output', owner: 'b', outcome: 'acquired', expiresAt: expiresIn(1_000) }]);
      expect(await catalog.extendReservations(['a'], 1_000)).toEqual([]);
      expect(await catalog.acquireReservations([ask('a')])).toMatchObject([{ outcome: 'held', holder: { owner: 'b', runId: 'run-of-b', nodeId: 'node-of-b' } }]);
    });

    it('heartbeats extend every reservation of the given owners in one call, expired ones nobody took included', async () => {
      await catalog.acquireReservations([ask('a', { key: 'k1' }), ask('a2', { key: 'k2' }), ask('c', { key: 'k3' })]);
      clock.advance(1_500); // all expired, none taken
      expect((await catalog.extendReservations(['a', 'a2', 'nobody'], 2_000)).sort()).toEqual(['a', 'a2']);
      clock.advance(1_999);
      const outcomes = await catalog.acquireReservations([ask('b', { key: 'k1' }), ask('b', { key: 'k2' }), ask('b', { key: 'k3' })]);
      expect(outcomes.map((o) => o.outcome)).toEqual(['held', 'held', 'acquired']);
      expect(await catalog.extendReservations([], 1_000)).toEqual([]);
    });

    it('a release by a non-owner does nothing; the owner\'s frees the key and tells watchers', async () => {
      const released: ReleasedReservation[] = [];
      const subscription = await catalog.watchReleases((r) => released.push(r));
      try {
        await catalog.acquireReservations([ask('a')]);
        await catalog.releaseReservations([{ key: 'k1', kind: 'output', owner: 'b' }]);
        expect(await catalog.acquireReservations([ask('b')])).toMatchObject([{ outcome: 'held', holder: { owner: 'a' } }]);
        await catalog.releaseReservations([{ key: 'k1', kind: 'output', owner: 'a' }]);
        await vi.waitFor(() => expect(released).toEqual([{ key: 'k1', kind: 'output' }]), { timeout: 5_000, interval: 10 });
        expect(await catalog.acquireReservations([ask('b')])).toMatchObject([{ outcome: 'acquired' }]);
        // Releasing what is already free announces nothing.
        await catalog.releaseReservations([{ key: 'k1', kind: 'output', owner: 'a' }, { key: 'nope', kind: 'output', owner: 'a' }, { key: 'k1', kind: 'output', owner: 'b' }]);
        await vi.waitFor(() => expect(released).toHaveLength(2), { timeout: 5_000, interval: 10 });
        expect(released[1]).toEqual({ key: 'k1', kind: 'output' });
      } finally {
        await subscription.close();
      }
      await catalog.acquireReservations([ask('c')]);
      await catalog.releaseReservations([{ key: 'k1', kind: 'output', owner: 'c' }]);
      // A closed subscription hears nothing more (give a notification time to arrive, if it were sent).
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(released).toHaveLength(2);
    });

    it('kinds are separate reservations; two asks for one key in one batch: the first acquires, the second is held by it', async () => {
      const outcomes = await catalog.acquireReservations([ask('a'), ask('b'), ask('b', { kind: 'future' })]);
      expect(outcomes).toMatchObject([
        { owner: 'a', outcome: 'acquired' },
        { owner: 'b', outcome: 'held', holder: { owner: 'a' } },
        { owner: 'b', kind: 'future', outcome: 'acquired' },
      ]);
    });

    it('of many racing askers exactly one acquires', async () => {
      const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => catalog.acquireReservations([ask(`o${i}`)])));
      const winners = outcomes.flat().filter((o) => o.outcome === 'acquired');
      expect(winners).toHaveLength(1);
      const winner = winners[0]?.owner;
      for (const outcome of outcomes.flat()) if (outcome.outcome === 'held') expect(outcome.holder.owner).toBe(winner);
    });
  });
}
