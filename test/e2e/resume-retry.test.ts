import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoflowError, task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

/**
 *   rows ─▶ load (uncached) ─▶ clean (cached) ─▶ total (cached)
 *   rows ─▶ count (uncached)
 * `breakTotal` makes total fail (a bug later fixed) until it is set back.
 */
function pipeline() {
  const ran: string[] = [];
  const state = { breakTotal: false };
  const name = uniqueName('rr');
  const load = task({ name: `${name}.load`, inputs: { rows: z.array(z.number()) }, output: z.array(z.number()) }, async ({ rows }) => {
    ran.push('load');
    return rows;
  });
  const clean = task({ name: `${name}.clean`, inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' } }, async ({ rows }) => {
    ran.push('clean');
    return rows.filter((r) => r >= 0);
  });
  const total = task({ name: `${name}.total`, inputs: { rows: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ rows }) => {
    ran.push('total');
    if (state.breakTotal) throw new Error('total is broken');
    return rows.reduce((a, b) => a + b, 0);
  });
  const count = task({ name: `${name}.count`, inputs: { rows: z.array(z.number()) }, output: z.number() }, async ({ rows }) => {
    ran.push('count');
    return rows.length;
  });
  const main = workflow({ name: `${name}.main`, inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ total: total({ rows: clean({ rows: load({ rows }) }) }), count: count({ rows }) }));
  const other = workflow({ name: `${name}.other`, inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ count: count({ rows }) }));
  return { ran, state, main, other };
}

const statuses = (nodes: readonly { id: string; cacheStatus: string | null; cacheReason: string | null }[]) =>
  Object.fromEntries(nodes.map((n) => [n.id, n.cacheStatus === 'SKIPPED' ? `SKIPPED(${n.cacheReason})` : n.cacheStatus]));

describe.each(MODES)('resume and retry end to end ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('resumes from a node: what is not downstream is RECOVERED (uncached too), the node reruns SKIPPED(resume), its downstream reruns', async () => {
    const { ran, main } = pipeline();
    const first = await t.mf.run(main, { rows: [1, -2, 3] });
    expect(await first.result()).toEqual({ total: 4, count: 3 });
    ran.length = 0;
    const resumed = await t.mf.run(main, { rows: [1, -2, 3] }, { resumeFrom: { run: first.id, node: 'clean' } });
    expect(await resumed.result()).toEqual({ total: 4, count: 3 });
    expect(statuses(await resumed.nodes())).toEqual({ load: 'RECOVERED', clean: 'SKIPPED(resume)', total: 'SKIPPED(upstream-reran)', count: 'RECOVERED' });
    expect(ran.sort()).toEqual(['clean', 'total']);
    // The plan was announced before any node of the run moved.
    const ofRun = t.events.filter((e) => e.runId === resumed.id);
    expect(ofRun[0]).toMatchObject({ type: 'run:reuse-planned', plan: { fromRun: first.id, reason: 'resume', reuse: ['load', 'count'], run: ['clean', 'total'] } });
    expect(ofRun.filter((e) => e.type === 'node:recovered').map((e) => e.nodeId).sort()).toEqual(['count', 'load']);
    expect((await t.mf.runs.show(resumed.id)).resumedFrom).toEqual({ run: first.id, node: 'clean' });
  });

  it('retries a failed run: reuses what succeeded, runs what failed and what it aborted', async () => {
    const { ran, state, main } = pipeline();
    state.breakTotal = true;
    const first = await t.mf.run(main, { rows: [5, 6] }, { project: 'p1', domain: 'd1' });
    await expect(first.result()).rejects.toMatchObject({ code: 'RUN_FAILED' });
    state.breakTotal = false;
    ran.length = 0;
    const retried = await t.mf.retry<{ total: number; count: number }>(first.id, { workflow: main });
    expect(await retried.result()).toEqual({ total: 11, count: 2 });
    expect(statuses(await retried.nodes())).toEqual({ load: 'RECOVERED', clean: 'RECOVERED', total: 'POPULATED', count: 'RECOVERED' });
    expect(ran).toEqual(['total']);
    const report = await t.mf.runs.show(retried.id);
    expect(report).toMatchObject({ project: 'p1', domain: 'd1', retryOf: first.id, workflow: main.workflowName });
    // Without the workflow, the recorded one runs (this connection registered its tasks with the first run).
    const again = await t.mf.retry(retried.id);
    expect(statuses((await again.wait()).nodes)).toEqual({ load: 'RECOVERED', clean: 'RECOVERED', total: 'RECOVERED', count: 'RECOVERED' });
  });

  it('a resume point that does not exist, a run of another workflow or a run that does not exist is a clear error before anything runs', async () => {
    const { ran, main, other } = pipeline();
    const first = await t.mf.run(main, { rows: [1] });
    await first.result();
    const otherRun = await t.mf.run(other, { rows: [1] });
    await otherRun.result();
    ran.length = 0;
    const before = (await t.mf.runs.list()).length;
    const refused = async (action: () => Promise<unknown>, code: string, text: RegExp) => {
      const error = await action().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MemoflowError);
      expect(error).toMatchObject({ code, message: expect.stringMatching(text) });
    };
    await refused(() => t.mf.run(main, { rows: [1] }, { resumeFrom: { run: first.id, node: 'nope' } }), 'NODE_NOT_FOUND', /has no such node \(its nodes: load, clean, total, count\)/);
    await refused(() => t.mf.run(main, { rows: [1] }, { resumeFrom: { run: otherRun.id, node: 'count' } }), 'WORKFLOW_MISMATCH', new RegExp(`it is a run of workflow '${other.workflowName}'`));
    await refused(() => t.mf.run(main, { rows: [1] }, { resumeFrom: { run: 'r0nosuchrun', node: 'clean' } }), 'RUN_NOT_FOUND', /cannot resume from run 'r0nosuchrun': no such run/);
    await refused(() => t.mf.run(main, { rows: [1] }, { resumeFrom: 'r1:clean' as never }), 'INVALID_OPTION', /resumeFrom must be \{ run, node \}/);
    await refused(() => t.mf.retry('r0nosuchrun'), 'RUN_NOT_FOUND', /cannot retry run 'r0nosuchrun'/);
    await refused(() => t.mf.retry(otherRun.id, { workflow: main }), 'WORKFLOW_MISMATCH', /it is a run of workflow/);
    expect(ran).toEqual([]);
    expect(await t.mf.runs.list()).toHaveLength(before);
  });
});
