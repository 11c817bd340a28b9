import type { RunRecord, RunState, RunStore } from '@memoflow/engine';
import { cancelError, cancelRequestOf } from '@memoflow/engine';
import { expect, it } from 'vitest';

/**
 * The cancel half of the RunStore contract (ports/run-store.ts: requestCancel, cancelRequested),
 * run inside describeRunStoreContract against every implementation. `store` reads the current one.
 */
export function runCancelCases(store: () => RunStore): void {
  const request = cancelError('stopped by a test');
  const at = new Date('2030-01-01T00:00:03.000Z');

  it('requestCancel records the request on a running run: its error, updatedAt and version, status still running', async () => {
    await store().create(runState('c1'));
    expect(await store().requestCancel('c1', request, at)).toEqual({ kind: 'requested' });
    const loaded = await store().load('c1');
    expect(loaded?.run.status).toBe('running');
    expect(loaded?.run.version).toBe(1);
    expect(loaded?.run.updatedAt).toEqual(at);
    expect(cancelRequestOf(loaded?.run ?? { status: 'succeeded', error: null })).toEqual(request);
    expect(await store().cancelRequested(['c1', 'other', 'missing'])).toEqual(['c1']);
    // Asking again changes nothing.
    expect(await store().requestCancel('c1', cancelError('again'), at)).toEqual({ kind: 'already-requested' });
    expect((await store().load('c1'))?.run.version).toBe(1);
  });

  it("a save from the load before the request loses the race; the run can then only end as its controller decides from the request", async () => {
    const state = runState('c2');
    await store().create(state);
    expect(await store().requestCancel('c2', request, at)).toEqual({ kind: 'requested' });
    // The owner's save of 'succeeded', decided on version 0, does not land.
    expect(await store().save({ run: finished(state.run), nodes: [], expectedVersion: 0 })).toBe(false);
    expect(await store().status('c2')).toBe('running');
    const cancelled: RunRecord = { ...state.run, status: 'cancelled', error: request, finishedAt: at, updatedAt: at };
    expect(await store().save({ run: cancelled, nodes: [], expectedVersion: 1 })).toBe(true);
    expect(await store().status('c2')).toBe('cancelled');
    expect(await store().cancelRequested(['c2'])).toEqual([]);
    expect(await store().requestCancel('c2', request, at)).toEqual({ kind: 'finished', status: 'cancelled' });
    expect((await store().list({ status: 'cancelled' })).map((r) => r.id)).toEqual(['c2']);
  });

  it('requestCancel leaves a finished run alone and says how it ended; an unknown run is missing', async () => {
    const state = runState('c3');
    await store().create(state);
    expect(await store().save({ run: finished(state.run), nodes: [], expectedVersion: 0 })).toBe(true);
    expect(await store().requestCancel('c3', request, at)).toEqual({ kind: 'finished', status: 'succeeded' });
    expect((await store().load('c3'))?.run).toMatchObject({ status: 'succeeded', error: null, version: 1 });
    expect(await store().requestCancel('nope', request, at)).toEqual({ kind: 'missing' });
    expect(await store().cancelRequested([])).toEqual([]);
  });

  it('requestCancel does not touch the lease', async () => {
    await store().create(runState('c4'), { owner: 'ctl-1', ttlMs: 60_000 });
    expect(await store().requestCancel('c4', request, at)).toEqual({ kind: 'requested' });
    expect(await store().acquireLease('c4', { owner: 'ctl-2', ttlMs: 60_000 })).toMatchObject({ kind: 'held', owner: 'ctl-1' });
  });
}

function runState(id: string): RunState {
  return {
    run: {
      id,
      workflow: 'cancel.wf',
      project: 'demo',
      domain: 'dev',
      spec: { specVersion: 1, name: 'cancel.wf', inputs: {}, hashedInputs: [], nodes: [], outputs: {} },
      inputs: {},
      options: { overwriteCache: false },
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
