import { describe, expect, it } from 'vitest';
import { wide, wideOutputs, WIDTH } from '../fixtures/flows.js';
import { countBy, exitOf, resultWithin, waitFor, distributedEnvPerTest } from './support.js';

const t = distributedEnvPerTest();

// Issue 10, item 6: a controller SIGKILLed in the middle of a resumed run. The reuse plan is part of
// the run as saved when it was created, so the controller that takes the run over decides exactly
// as the dead one would have: the reused nodes stay RECOVERED, the resume point and its downstream
// run, each once.
describe('distributed: the controller of a resumed run is killed', () => {
  it('another controller finishes it: reused nodes are not executed, the resume point and its downstream run once', async () => {
    await t.startCliWorker(12);
    const salt = 7000 + Math.floor(Math.random() * 1000);
    const mf = await t.connect();
    const first = await mf.run(wide, { salt, ms: 300 });
    expect(await resultWithin(t, mf, first, 30_000)).toEqual(wideOutputs(salt));

    const submitter = t.spawnScript('submit-run.ts', { SEED: String(salt), MS: '300', WORKFLOW: 'wide', RESUME_FROM: `${first.id}:square` });
    const runId = (await submitter.waitForLine((l) => l.startsWith('run '), 30_000)).slice('run '.length);
    // The resume point is running on the worker: kill its controller now.
    await waitFor('the resume point to start', () => t.executions().some((l) => l.runId === runId && l.nodeId === 'square' && l.phase === 'start'), 20_000, 5);
    submitter.process.kill('SIGKILL');
    expect(await exitOf(submitter)).toBe('SIGKILL');

    const again = await t.connect();
    expect(await resultWithin(t, again, again.getRun(runId), 30_000)).toEqual(wideOutputs(salt));
    const done = [...countBy(t.executions().filter((l) => l.runId === runId), 'done')];
    expect(done.sort()).toEqual([[`${runId}/square`, 1], [`${runId}/sum`, 1]]);
    const nodes = await again.getRun(runId).nodes();
    const recovered = nodes.filter((n) => n.cacheStatus === 'RECOVERED').map((n) => n.id);
    expect(recovered).toHaveLength(WIDTH - 1);
    expect(nodes.find((n) => n.id === 'square')).toMatchObject({ cacheStatus: 'SKIPPED', cacheReason: 'resume', status: 'succeeded' });
    expect(nodes.find((n) => n.id === 'sum')).toMatchObject({ cacheStatus: 'SKIPPED', cacheReason: 'upstream-reran', status: 'succeeded' });
  }, 60_000);
});
