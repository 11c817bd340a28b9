/**
 * `cache: { serialize: true }` end to end, distributed (Postgres, BullMQ, a `memoflow worker` pool in
 * its own process): identical concurrent runs execute the body once and the others HIT after
 * WAITING; an owner that fails hands over to one waiter; an owner whose process is SIGKILLed stops
 * heartbeating, and a waiter takes over within one reservation lease.
 */
import type { EngineEvent } from '@memoflow/sdk';
import { describe, expect, it } from 'vitest';
import { serial } from '../fixtures/flows.js';
import { exitOf, waitFor, distributedEnvPerTest } from './support.js';

const t = distributedEnvPerTest();

/** Longer than the whole test may take, so no waiter is woken by the poll. */
const BACKSTOP_POLL_MS = 60_000;
const salt = () => 10_000 + Math.floor(Math.random() * 100_000);

describe('distributed: serialized cache keys', () => {
  it('50 identical concurrent runs execute the body once: 1 POPULATED, 49 WAITING then HIT, with WAITING in run.nodes() and the logs', async () => {
    await t.startCliWorker(8);
    const events: EngineEvent[] = [];
    // The backstop poll is a minute here: the waiters can only finish in time if the release is announced.
    const mf = await t.connect(events, { reservationPollMs: BACKSTOP_POLL_MS });
    const inputs = { salt: salt(), ms: 2_500, failFirst: false };
    const started = Date.now();
    const runs = await Promise.all(Array.from({ length: 50 }, () => mf.run(serial, inputs)));
    // While the owner runs, the others are WAITING in the store, naming the owner's run and node.
    const owner = await waitFor('the body to start', () => t.executions().find((l) => l.phase === 'start'), 20_000, 10);
    const waiting = await waitFor('a waiter to be WAITING in the store', async () => {
      for (const run of runs.filter((r) => r.id !== owner.runId).slice(0, 5)) {
        const [node] = await run.nodes();
        if (node?.cacheStatus === 'WAITING') return node;
      }
      return undefined;
    }, 10_000, 50);
    expect(waiting.cacheReason).toBe(`reservation held by run ${owner.runId} node 'serialSquare'`);

    const results = await Promise.all(runs.map((run) => run.result()));
    const elapsed = Date.now() - started;
    expect(results).toEqual(Array(50).fill({ y: 49 + inputs.salt }));
    expect(t.executions().filter((l) => l.phase === 'start')).toHaveLength(1);
    const nodes = (await Promise.all(runs.map(async (run) => (await run.nodes())[0]))).filter((n) => n !== undefined);
    expect(nodes.map((n) => n.cacheStatus).sort()).toEqual(['POPULATED', ...Array(49).fill('HIT')].sort());
    const waited = nodes.filter((n) => n.waitedFor !== null);
    expect(waited).toHaveLength(49);
    for (const node of waited) expect(node.waitedFor).toEqual({ runId: owner.runId, nodeId: 'serialSquare' });
    // The log lines: one node:waiting per waiter, WAITING status, naming the owner.
    const waitLines = events.filter((e) => e.type === 'node:waiting');
    expect(waitLines).toHaveLength(49);
    for (const line of waitLines) {
      expect(line.cacheStatus).toBe('WAITING');
      expect(line.message).toContain(`run ${owner.runId} node 'serialSquare' holds the reservation`);
    }
    // Waiters learn of the release when it is announced (LISTEN/NOTIFY), not at the backstop poll:
    // the body's 2.5 s plus a loaded machine's submitting and dispatching, well short of a minute.
    expect(elapsed).toBeLessThan(BACKSTOP_POLL_MS / 2);
  }, 60_000);

  it('the owner fails: one waiter takes over and executes, the others HIT its entry', async () => {
    await t.startCliWorker(8);
    const mf = await t.connect();
    const inputs = { salt: salt(), ms: 1_000, failFirst: true };
    const runs = await Promise.all(Array.from({ length: 5 }, () => mf.run(serial, inputs)));
    const reports = await Promise.all(runs.map((run) => run.wait()));
    expect(reports.map((r) => r.status).sort()).toEqual(['failed', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);
    const lines = t.executions();
    expect(lines.map((l) => l.phase).sort()).toEqual(['done', 'failed', 'start', 'start']);
    const [first, second] = lines.filter((l) => l.phase === 'start');
    expect(first?.runId).not.toBe(second?.runId);
    const succeeded = reports.filter((r) => r.status === 'succeeded').map((r) => r.nodes[0]);
    expect(succeeded.map((n) => n?.cacheStatus).sort()).toEqual(['HIT', 'HIT', 'HIT', 'POPULATED']);
    const takeover = succeeded.find((n) => n?.cacheStatus === 'POPULATED');
    expect(takeover?.cacheReason).toContain(`took over the reservation from run ${first?.runId ?? '?'}`);
  }, 60_000);

  it("the owner's process is SIGKILLed: its reservation expires unrenewed and a waiter takes over within one lease", async () => {
    const ttlMs = 3_000;
    await t.startCliWorker(4);
    const seed = salt();
    const owner = t.spawnScript('submit-run.ts', { SEED: String(seed), MS: '5000', WORKFLOW: 'serial', MEMOFLOW_RESERVATION_TTL_MS: String(ttlMs) });
    const ownerRun = (await owner.waitForLine((l) => l.startsWith('run '), 30_000)).slice('run '.length);
    await waitFor("the owner's body to start", () => t.executions().some((l) => l.phase === 'start' && l.runId === ownerRun), 20_000, 10);
    // The waiter's controller needs no short lease of its own: it wakes at the holder's expiry.
    const mf = await t.connect();
    const waiter = await mf.run(serial, { salt: seed, ms: 5_000, failFirst: false });
    await waitFor('the waiter to be WAITING', async () => (await waiter.nodes())[0]?.cacheStatus === 'WAITING', 10_000, 50);
    owner.process.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await exitOf(owner)).toBe('SIGKILL');
    const takeover = await waitFor('the waiter to execute', () => t.executions().find((l) => l.phase === 'start' && l.runId === waiter.id), ttlMs + 5_000, 20);
    expect(takeover).toBeDefined();
    expect(Date.now() - killedAt).toBeLessThan(ttlMs + 2_000);
    expect(await waiter.result()).toEqual({ y: 49 + seed });
    const [node] = await waiter.nodes();
    expect(node?.cacheStatus).toBe('POPULATED');
    expect(node?.cacheReason).toContain(`took over the reservation from run ${ownerRun}`);
  }, 60_000);
});
