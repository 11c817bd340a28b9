/**
 * Regression (found by the controllers-under-chaos property test): a controller that leased a run to
 * take it over and then failed to read it kept the lease and no driver. Nobody else could take the
 * run (its lease was renewed with the controller's others), its own sweep skipped it (leased), and a
 * result for it was driven by a fresh driver that never repeated the last owner's effects, so a
 * node the last owner left `dispatched` (its job never queued) or `writing` waited forever.
 *
 * Now a takeover whose read fails gives the lease back, a driver recovering without a state reads
 * it in a round (retried like any round, the effects repeated), and a heartbeat gives back any lease
 * the store holds under the controller's id that it does not drive (a release that failed too).
 */
import { afterEach, describe, expect, test } from 'vitest';
import { within } from '../fuzz/fuzz-settings.js';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type AttemptResult } from '@memoflow/engine';
import { SharedTransport, type SharedTransportDispatcher } from '../../packages/engine/src/testing/shared-transport.js';
import { times10OrSum, wideSum } from '../../packages/engine/src/testing/spec-builders.js';

const LEASE_MS = 300; // heartbeats every 100 ms
const spec = wideSum();
const run = times10OrSum;

const controllers: Controller[] = [];
afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
});

function world() {
  const store = new InMemoryRunStore();
  const catalog = new InMemoryCacheCatalog();
  const transport = new SharedTransport(run);
  const controller = (): { controller: Controller; dispatcher: SharedTransportDispatcher } => {
    const dispatcher = transport.dispatcher();
    const c = new Controller({ catalog, runStore: store, dispatcher, waitPollMs: 10, leaseMs: LEASE_MS });
    controllers.push(c);
    return { controller: c, dispatcher };
  };
  return { store, transport, controller };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}


/** A run whose first owner saved `sum` as dispatched, lost the dispatch, and closed: a takeover must repeat it. */
async function orphanedRun(w: ReturnType<typeof world>): Promise<string> {
  const a = w.controller();
  w.transport.lose.add('sum');
  const id = await a.controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
  await until('sum to be dispatched', async () => (await w.store.load(id))?.nodes['sum']?.phase === 'dispatched');
  await a.controller.close();
  await a.dispatcher.close();
  return id;
}

describe('a takeover whose read of the run fails', () => {
  test('gives the lease back: the next sweep takes the run over and finishes it', async () => {
    const w = world();
    const b = w.controller();
    const id = await orphanedRun(w);
    w.store.failNext('load');
    await expect(b.controller.recoverUnowned()).rejects.toThrow(/simulated load failure/);
    expect(b.controller.ownedRuns).toBe(0);
    expect(w.store.leaseOf(id)).toBeNull();
    expect(await b.controller.recoverUnowned()).toEqual([id]);
    expect((await within(b.controller.wait(id), 2_000, 'the run')).run.outputs).toEqual({ total: 30 });
  });

  test('a result for the run that arrives next takes it over properly: the lost dispatch is repeated', async () => {
    const w = world();
    const b = w.controller();
    const id = await orphanedRun(w);
    w.store.failNext('load');
    await expect(b.controller.recoverUnowned()).rejects.toThrow(/simulated load failure/);
    // A's result of `a`, delivered once more (a claim that raced its ack), reaches B.
    const again: AttemptResult = { attemptId: `${id}-a-1`, runId: id, nodeId: 'a', attempt: 1, startedAt: new Date(), finishedAt: new Date(), ok: true, output: 10, outputHash: null };
    const deliver = (b.controller as unknown as { deliverResults(rs: AttemptResult[]): Promise<void>[] }).deliverResults([again])[0];
    await deliver;
    expect((await within(b.controller.wait(id), 2_000, 'the run')).run.outputs).toEqual({ total: 30 });
    expect(w.transport.executed.filter((attempt) => attempt === `${id}-sum-1`)).toHaveLength(1);
  });

  test('and whose release fails too: the next heartbeat gives the lease back, and a sweep finishes the run', async () => {
    const w = world();
    const b = w.controller();
    const id = await orphanedRun(w);
    w.store.failNext('load');
    const release = w.store.releaseLeases.bind(w.store);
    let failed = false;
    w.store.releaseLeases = async (owner, runIds) => {
      if (!failed) {
        failed = true; // the release right after the failed read
        throw new Error('simulated release failure');
      }
      return release(owner, runIds);
    };
    await expect(b.controller.recoverUnowned()).rejects.toThrow(/simulated load failure/);
    expect(b.controller.ownedRuns).toBe(0);
    await until('the stray lease to be given back', () => w.store.leaseOf(id) === null);
    expect(await b.controller.recoverUnowned()).toEqual([id]);
    expect((await within(b.controller.wait(id), 2_000, 'the run')).run.outputs).toEqual({ total: 30 });
  });
});
