/**
 * The shell's reservations (reservation-keeper.ts) on fake timers and a fake clock (STYLE.md 11):
 * heartbeats keep an executing owner's reservation alive past its ttl, a dead owner's expires and
 * its waiter is woken at the expiry, a release wakes waiters at once, and the backstop poll wakes
 * them even if nothing was heard.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import type { Clock } from '../../ports/clock.js';
import { ReservationKeeper } from './reservation-keeper.js';
import type { ReservationAsk } from '../vocabulary/commands.js';

const clock: Clock = { now: () => new Date(Date.now()) }; // Date is faked with the timers
const ask = (owner: string): ReservationAsk => ({ key: 'k', kind: 'output', owner, runId: `run-${owner}`, nodeId: 'n' });

describe('ReservationKeeper', () => {
  let catalog: InMemoryCacheCatalog;
  const keepers: ReservationKeeper[] = [];
  const keeper = (pollMs = 60_000) => {
    const made = new ReservationKeeper(catalog, clock, () => undefined, { ttlMs: 3_000, pollMs });
    keepers.push(made);
    return made;
  };

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') });
    catalog = new InMemoryCacheCatalog({ clock });
  });
  afterEach(async () => {
    for (const k of keepers.splice(0)) await k.close();
    vi.useRealTimers();
  });

  test('heartbeats keep an executing owner\'s reservation past its ttl; once released, the waiter is woken at once', async () => {
    const owner = keeper();
    const waiter = keeper();
    expect(await owner.acquire([ask('a')], () => undefined)).toMatchObject([{ outcome: 'acquired' }]);
    const woken: string[] = [];
    expect(await waiter.acquire([ask('b')], (answer) => woken.push(answer.nodeId))).toMatchObject([{ outcome: 'held', holder: { owner: 'a', runId: 'run-a' } }]);
    await vi.advanceTimersByTimeAsync(10_000); // three ttls: heartbeats every second
    expect(owner.heldOwners).toEqual(['a']);
    // Still held: the waiter's expiry timer fired at the first expiry, it asked again and is held again.
    expect(await waiter.acquire([ask('b')], (answer) => woken.push(`again ${answer.nodeId}`))).toMatchObject([{ outcome: 'held' }]);
    await owner.release([{ key: 'k', kind: 'output', owner: 'a' }], 'run-a', 'wf');
    expect(owner.heldOwners).toEqual([]);
    expect(woken).toContain('again n');
  });

  test('an owner that stops heartbeating (its controller died) expires; its waiter is woken at the expiry and takes over', async () => {
    const owner = keeper();
    const waiter = keeper();
    await owner.acquire([ask('a')], () => undefined);
    await owner.close(); // no more heartbeats, nothing released
    const woken: number[] = [];
    await waiter.acquire([ask('b')], () => woken.push(Date.now()));
    const start = Date.now();
    await vi.advanceTimersByTimeAsync(2_999);
    expect(woken).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(woken).toEqual([start + 3_000]);
    expect(await waiter.acquire([ask('b')], () => undefined)).toMatchObject([{ outcome: 'acquired' }]);
  });

  test('a release heard while the acquire was on its way still wakes the waiter', async () => {
    const owner = keeper();
    const waiter = keeper();
    await owner.acquire([ask('a')], () => undefined);
    await waiter.acquire([ask('warm-up')], () => undefined); // subscribed from here on
    const woken: string[] = [];
    const acquire = catalog.acquireReservations.bind(catalog);
    vi.spyOn(catalog, 'acquireReservations').mockImplementationOnce(async (requests) => {
      const outcomes = await acquire(requests); // held by a
      await owner.release([{ key: 'k', kind: 'output', owner: 'a' }], 'run-a', 'wf'); // released before the watch is set
      return outcomes;
    });
    expect(await waiter.acquire([ask('b')], (answer) => woken.push(answer.nodeId))).toMatchObject([{ outcome: 'held' }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(woken).toEqual(['n']);
  });

  test('the backstop poll wakes waiters though nothing was heard', async () => {
    const owner = keeper();
    const waiter = keeper(500);
    await owner.acquire([ask('a')], () => undefined);
    const woken: number[] = [];
    await waiter.acquire([ask('b')], () => woken.push(Date.now()));
    await vi.advanceTimersByTimeAsync(500);
    expect(woken).toHaveLength(1);
  });

  test('a failing catalog answers failure (the node executes without a reservation) instead of rejecting', async () => {
    const k = keeper();
    catalog.failNext('acquireReservations', new Error('catalog down'));
    expect(await k.acquire([ask('a')], () => undefined)).toEqual([{ nodeId: 'n', key: 'k', outcome: 'failure', reason: 'catalog down' }]);
  });
});
