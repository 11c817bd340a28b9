/**
 * Redis connections dropped mid-run (CLIENT KILL of every connection of the test's prefix, the
 * client's dispatcher and results consumer as well as the worker pools'): ioredis and BullMQ
 * reconnect and the run finishes, each node executed once.
 */
import { describe, expect, it } from 'vitest';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, killRedisConnections, waitFor, resultWithin, distributedEnvPerTest } from './support.js';

const t = distributedEnvPerTest();

describe('distributed: Redis connections dropped and restored', () => {
  it('a run with sleeping tasks survives every connection of its prefix being killed, twice', async () => {
    await Promise.all([t.startCliWorker(4), t.startCliWorker(4)]);
    const mf = await t.connect();
    const salt = 7000 + Math.floor(Math.random() * 1000);
    const run = await mf.run(wide, { salt, ms: 2000 });

    // While the first attempts sleep: workers hold locked jobs, the controller waits for results.
    await waitFor('attempts to be running', () => t.executions().filter((l) => l.phase === 'start').length >= 4);
    const first = await killRedisConnections(t.prefix);
    expect(first.some((name) => name.endsWith('.memoflow-worker'))).toBe(true);
    expect(first.some((name) => name.endsWith('.memoflow-dispatcher'))).toBe(true);

    // Again once results are flowing back (some squares done, others still to run or running).
    await waitFor('some attempts to finish', () => t.executions().filter((l) => l.phase === 'done').length >= 4, 30_000);
    const second = await killRedisConnections(t.prefix);
    expect(second.length).toBeGreaterThan(0);

    expect(await resultWithin(t, mf, run)).toEqual(wideOutputs(salt));
    const lines = t.executions();
    expect([...countBy(lines, 'done').values()]).toEqual(Array(WIDTH + 1).fill(1));
    expect([...countBy(lines, 'start').values()]).toEqual(Array(WIDTH + 1).fill(1));
    expect((await run.nodes()).every((n) => n.status === 'succeeded' && n.attempts === 1)).toBe(true);
  }, 60_000);
});
