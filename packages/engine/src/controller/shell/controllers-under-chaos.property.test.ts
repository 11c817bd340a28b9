/**
 * Controllers under chaos: real Controllers and RunDrivers (dispatch beside the save, deferred
 * lookups, pending creates, leases, takeovers, cancels) over a run store and a catalog whose calls
 * are delayed and fail, before or after they take effect, at seeded rates; a transport that hands
 * results over in random batches and orders, sometimes twice; and controllers killed mid-run. For
 * every seed: every run ends; a succeeded run holds exactly what its DAG computes (a cache hit
 * too, dynamic and sub-workflow nodes with their children); no node runs more than the attempts it
 * may, and one that hit, or replayed its compiled sub-workflow, runs none; a cancelled run was
 * cancelled; a submit that failed on a live controller left no run; every result is acknowledged.
 *
 * CHAOS_SEED=<n> replays one seed; CHAOS_RUNS=<n> sets how many seeds are tried (default 12).
 */
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ChaosWorld } from '../../testing/chaos/chaos-world.js';

const RUNS = Number(process.env['CHAOS_RUNS'] ?? 12);
/** A seed takes 0.2-2 s (more when a round backs off), so the time allowed grows with the seeds tried. */
const TIMEOUT_MS = Math.max(120_000, RUNS * 4_000);
const ONE_SEED = process.env['CHAOS_SEED'] === undefined ? undefined : Number(process.env['CHAOS_SEED']);

/** What went wrong in the world of `seed`, as sentences (none: all held). */
async function violations(seed: number, settings: { kills: number; pauses: number; cancels: boolean; hangs?: number }): Promise<string[]> {
  const world = new ChaosWorld(seed);
  const problems: string[] = [];
  try {
    await world.play({ runs: 4, ...settings });
    await world.settled(8_000);
    const answers = await Promise.all(world.runs.map((run) => run.submitted));
    const created = new Set<string>();
    // Without kills, no controller is gone before it has cancelled what it sent.
    const noDeaths = world.killed.length === 0;
    for (const [i, answer] of answers.entries()) {
      const run = world.runs[i];
      if (run === undefined || !answer.ok) continue;
      created.add(answer.id);
      const state = await world.store.load(answer.id);
      if (state === undefined) {
        problems.push(`${answer.id}: submitted, but not in the store`);
        continue;
      }
      const { status } = state.run;
      if (status === 'cancelled' && !run.cancelRequested) problems.push(`${answer.id}: cancelled, never asked to be`);
      if (status !== 'succeeded' && status !== 'cancelled') problems.push(`${answer.id}: ended ${status} (${state.run.error?.message ?? ''})`);
      const executions = world.transport.executions.filter((e) => e.runId === answer.id);
      for (const node of Object.values(state.nodes)) {
        const ran = executions.filter((e) => e.nodeId === node.nodeId);
        const ids = new Set(ran.map((e) => e.attemptId));
        // One execution per attempt id (the transport's job ids), and only the attempts the node may
        // have: 1, and 2 for a flaky one; a sub-workflow call runs none of its own (its children do).
        const call = run.calls.has(node.nodeId);
        const allowed = call ? 0 : run.flaky.has(node.nodeId) ? 2 : 1;
        if (ids.size !== ran.length || ran.some((e) => e.attempt > allowed)) problems.push(`${answer.id}/${node.nodeId}: ran attempts ${ran.map((e) => e.attemptId).join(', ')}`);
        if (status !== 'succeeded') continue;
        if (node.phase !== 'succeeded') problems.push(`${answer.id}/${node.nodeId}: ${node.phase} in a succeeded run`);
        if (JSON.stringify(node.output?.value) !== JSON.stringify(run.expected.get(node.nodeId))) problems.push(`${answer.id}/${node.nodeId}: output ${JSON.stringify(node.output?.value)}, its DAG computes ${JSON.stringify(run.expected.get(node.nodeId))} (${node.cacheStatus})`);
        // A HIT runs nothing; a dynamic node whose compiled sub-workflow came from the catalog does not run its body.
        const reused = node.cacheStatus === 'HIT' || node.cacheStatus === 'FUTURE_HIT';
        if (reused && ran.length > 0) problems.push(`${answer.id}/${node.nodeId}: a ${node.cacheStatus} whose attempt ran`);
        if (!reused && !call && (ran.length !== allowed || node.attempts !== allowed)) problems.push(`${answer.id}/${node.nodeId}: ${node.cacheStatus}, recorded ${node.attempts} attempt(s), ran ${ran.length} (${allowed} expected)`);
      }
      if (status === 'succeeded') {
        // Every node of the DAG is in the run, and so is every child of a container that expanded
        // (one whose output came from the catalog whole, a HIT, has none).
        for (const id of run.expected.keys()) {
          const container = id.includes('.') ? state.nodes[id.slice(0, id.indexOf('.'))] : undefined;
          if (state.nodes[id] === undefined && container?.cacheStatus !== 'HIT') problems.push(`${answer.id}/${id}: its DAG has it, the succeeded run does not (${container === undefined ? 'a node' : `a child of ${container.nodeId}, ${container.cacheStatus}`})`);
        }
        for (const id of Object.keys(state.nodes)) if (!run.expected.has(id)) problems.push(`${answer.id}/${id}: in the run, not in its DAG`);
      }
      // Once a run is saved cancelled, none of its attempts starts: the cancel names every one that
      // may have gone out, and a stopped driver's unrecorded ones are cancelled by its controller's
      // OrphanWatch. Not promised once a controller died: what it sent unrecorded dies with it.
      const cancelledAt = world.cancelledAt.get(answer.id);
      if (cancelledAt !== undefined && noDeaths) {
        const late = executions.filter((e) => e.at > cancelledAt && !world.transport.cancels.has(e.attemptId));
        for (const e of late) problems.push(`${answer.id}: attempt ${e.attemptId} started after the run was saved cancelled, and no cancel named it; cancels named [${[...world.transport.cancels.keys()].filter((id) => id.startsWith(`${answer.id}-`)).join(', ')}]; ${await world.describe(answer.id)}`);
      }
    }
    // A run the store holds that no submit answered for: only a submit whose controller died may leave one.
    const stray = (await world.store.list()).filter((run) => !created.has(run.id));
    const lostSubmits = answers.filter((a) => !a.ok && !a.processAlive).length;
    if (stray.length > lostSubmits) problems.push(`runs no submit answered for: ${stray.map((r) => r.id).join(', ')} (${lostSubmits} submit(s) died with their controller)`);
    for (const answer of answers) if (!answer.ok && answer.processAlive && !isRetryable(answer.error)) problems.push(`a submit failed for a reason a caller cannot retry: ${String(answer.error)}`);
    // A round that failed three times in a row waits 2 s, then 4 s, before its next try (roundRetryDelayMs).
    for (let i = 0; i < 1_200 && world.transport.unacknowledged.length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const left of world.transport.unacknowledged) {
      problems.push(`the result of ${left.attemptId} (sent by ${left.sentBy}, held by ${left.heldBy ?? 'nobody'}) was never acknowledged; last refused: ${left.refusal ?? 'never'}; ${await world.describe(left.runId)}`);
    }
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  } finally {
    await world.close();
  }
  const found = problems.map((p) => `seed ${seed} (killed ${world.killed.join(', ') || 'none'}; paused ${world.paused.join(', ') || 'none'}): ${p}`);
  // The assertion's diff shortens long messages: CHAOS_DUMP=<dir> writes them whole.
  if (found.length > 0 && process.env['CHAOS_DUMP'] !== undefined) writeFileSync(`${process.env['CHAOS_DUMP']}/chaos-${seed}.txt`, found.join('\n\n'));
  return found;
}

function isRetryable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && ((error as { retryable?: unknown }).retryable === true || (error as { cause?: { retryable?: unknown } }).cause?.retryable === true);
}

const seeds = ONE_SEED === undefined ? fc.integer({ min: 1, max: 2 ** 31 - 1 }) : fc.constant(ONE_SEED);

describe('controllers under chaos', () => {
  test(
    'faulty store and catalog, shuffled and repeated results, cancels: every run ends with what its DAG computes, and nothing starts after a cancel',
    async () => {
      await fc.assert(
        fc.asyncProperty(seeds, async (seed) => {
          expect(await violations(seed, { kills: 0, pauses: 0, cancels: true })).toEqual([]);
        }),
        { numRuns: ONE_SEED === undefined ? RUNS : 1, endOnFailure: true },
      );
    },
    TIMEOUT_MS,
  );

  test(
    'with controllers killed, and stalled past their lease then back: the same',
    async () => {
      await fc.assert(
        fc.asyncProperty(seeds, async (seed) => {
          expect(await violations(seed, { kills: 2, pauses: 1, cancels: true })).toEqual([]);
        }),
        { numRuns: ONE_SEED === undefined ? RUNS : 1, endOnFailure: true },
      );
    },
    TIMEOUT_MS,
  );

  test(
    'with store and catalog calls that never answer (a connection that died without a word), besides a kill and a stall: the same',
    async () => {
      await fc.assert(
        fc.asyncProperty(seeds, async (seed) => {
          expect(await violations(seed, { kills: 1, pauses: 1, cancels: true, hangs: 0.01 })).toEqual([]);
        }),
        { numRuns: ONE_SEED === undefined ? RUNS : 1, endOnFailure: true },
      );
    },
    TIMEOUT_MS,
  );
});
