/**
 * Regression: a client connected without Redis that called `getRun(id).result()` on a running
 * distributed run "recovered" it with its own in-process runner, which failed it within 40 ms
 * ("task ... is not registered with this worker"). A run records the worker pool that drives it;
 * a client that cannot reach that pool only reads the run.
 */
import { describe, expect, it } from 'vitest';
import { connect } from '@memoflow/sdk';
import { wide, wideOutputs } from '../fixtures/flows.js';
import { resultWithin, distributedEnvPerTest } from '../distributed/support.js';

const t = distributedEnvPerTest();

describe('regression: reading a run never takes it over', () => {
  it('a client without Redis waits for a distributed run and gets its result; the run is not failed', async () => {
    await t.startCliWorker(4);
    const owner = await t.connect();
    const salt = 17000 + Math.floor(Math.random() * 1000);
    const run = await owner.run(wide, { salt, ms: 600 });

    const reader = await connect({ databaseUrl: t.databaseUrl, schema: t.schema, log: 'silent' });
    t.clients.push(reader);
    const read = reader.getRun(run.id);
    expect(await read.result()).toEqual(wideOutputs(salt));
    expect(await resultWithin(t, owner, run)).toEqual(wideOutputs(salt));
    expect((await read.nodes()).every((n) => n.status === 'succeeded' && n.attempts === 1)).toBe(true);
  }, 60_000);
});
