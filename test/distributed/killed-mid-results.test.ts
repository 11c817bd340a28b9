import { describe, expect, it } from 'vitest';
import { wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, exitOf, resultWithin, waitFor, distributedEnvPerTest } from './support.js';

const t = distributedEnvPerTest();

// Regression: a controller SIGKILLed while it holds task results it has read but not recorded.
// Those results stay pending in its results inbox (more arrive there until it stops counting as
// live, LEASE_MS after its last heartbeat); then another controller's heartbeat moves them to the
// shared stream, the run's lease expires, the controller waiting on it takes it over, and the run
// completes with every node executed once.
describe('distributed: a controller killed while taking results', () => {
  it('another controller finishes the run promptly, each node executed once', async () => {
    await t.startCliWorker(12);
    const salt = 9000 + Math.floor(Math.random() * 1000);
    const submitter = t.spawnScript('submit-run.ts', { SEED: String(salt), MS: '1000', WORKFLOW: 'wide', LEASE_MS: '2000' });
    const runId = (await submitter.waitForLine((l) => l.startsWith('run '), 30_000)).slice('run '.length);
    await waitFor('the first square to finish', () => t.executions().some((l) => l.phase === 'done'), 20_000, 5);
    await new Promise((resolve) => setTimeout(resolve, 15));
    submitter.process.kill('SIGKILL');
    expect(await exitOf(submitter)).toBe('SIGKILL');
    const mf = await t.connect();
    expect(await resultWithin(t, mf, mf.getRun(runId), 30_000)).toEqual(wideOutputs(salt));
    expect([...countBy(t.executions(), 'done').values()]).toEqual(Array(WIDTH + 1).fill(1));
  }, 60_000);
});
