import { describe, expect, test } from 'vitest';
import { MemoflowError } from '../../errors.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { RunStore } from '../../ports/run-store.js';
import { newRunState } from '../../state/new-run.js';
import type { RunState } from '../../state/run-state.js';
import { lit, taskNode, workflowSpec } from '../../testing/spec-builders.js';
import { createRun } from './create-run.js';

const LEASE = { owner: 'c1', ttlMs: 10_000 };

function run(id: string): RunState {
  const spec = workflowSpec('create.one', [taskNode('a', 't.double', { x: lit(1) })], {});
  return newRunState({ id, spec, inputs: {}, project: 'p', domain: 'd', options: { overwriteCache: false, pool: 'inline' }, now: new Date() });
}

/** A store whose create commits (or not) and then rejects, and whose status read fails `statusFailures` times first. */
function flakyStore(options: { commits: boolean; statusFailures: number; createFailures?: number }): { store: RunStore; statusReads: () => number; creates: () => number } {
  const inner = new InMemoryRunStore();
  let statusReads = 0;
  let creates = 0;
  let failuresLeft = options.statusFailures;
  const store = Object.create(inner) as RunStore;
  store.create = async (state, lease) => {
    creates += 1;
    if (options.createFailures !== undefined && creates > options.createFailures) return inner.create(state, lease);
    if (options.commits) await inner.create(state, lease);
    throw new MemoflowError('CATALOG_ERROR', 'runStore.create failed: write CONNECTION_CLOSED');
  };
  store.status = async (runId) => {
    statusReads += 1;
    if (failuresLeft > 0) {
      failuresLeft -= 1;
      throw new Error('connect ECONNREFUSED');
    }
    return inner.status(runId);
  };
  return { store, statusReads: () => statusReads, creates: () => creates };
}

describe('createRun: a create that rejects is asked about before the submit fails', () => {
  test('a create that answers is created, and nothing is asked', async () => {
    const plain = new InMemoryRunStore();
    let statusReads = 0;
    const status = plain.status.bind(plain);
    plain.status = (runId) => {
      statusReads += 1;
      return status(runId);
    };
    expect(await createRun(plain, run('r1'), LEASE)).toBe('created');
    expect(await status('r1')).toBe('running');
    expect(statusReads).toBe(0);
  });

  test('committed but unanswered: the run exists, so the submit goes on', async () => {
    const { store } = flakyStore({ commits: true, statusFailures: 0 });
    expect(await createRun(store, run('r2'), LEASE)).toBe('created-unanswered');
  });

  test('never committed, every try failing: the first create’s own error, after CONFIRM_TRIES more tries', async () => {
    const { store, creates } = flakyStore({ commits: false, statusFailures: 0 });
    await expect(createRun(store, run('r3'), LEASE)).rejects.toThrow('runStore.create failed: write CONNECTION_CLOSED');
    expect(creates()).toBe(4);
  });

  test('not committed the first time: the next try creates it (found in review: a create still running in Postgres could commit after the answer "no")', async () => {
    const { store, statusReads, creates } = flakyStore({ commits: false, statusFailures: 0, createFailures: 1 });
    expect(await createRun(store, run('r6'), LEASE)).toBe('created');
    expect(creates()).toBe(2);
    expect(statusReads()).toBe(0);
    expect(await store.status('r6')).toBe('running');
  });

  test('a status read that fails is asked again, then answers', async () => {
    const { store, statusReads } = flakyStore({ commits: true, statusFailures: 2 });
    expect(await createRun(store, run('r4'), LEASE)).toBe('created-unanswered');
    expect(statusReads()).toBe(3);
  });

  test('when it cannot be told, the error names the run id and workflow and says to look it up', async () => {
    const { store, statusReads } = flakyStore({ commits: true, statusFailures: 10 });
    const failure = await createRun(store, run('r5'), LEASE).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(MemoflowError);
    expect(failure).toMatchObject({ code: 'CONNECTION_FAILED', retryable: false });
    expect((failure as Error).message).toContain("run 'r5' of workflow 'create.one'");
    expect((failure as Error).message).toContain('look it up by its id');
    expect(statusReads()).toBe(3);
  });
});
