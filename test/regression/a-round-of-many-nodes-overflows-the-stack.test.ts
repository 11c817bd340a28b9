/**
 * Regression: a round that started more than ~120,000 nodes at once (a wide run's first round)
 * threw "Maximum call stack size exceeded", and so did `memoflow runs show` on a run of as many
 * nodes: the round's events were appended with `push(...items)`, held back the same way until the
 * run was created, and the tree's column width was `Math.max(...widths)`, each passing every item
 * as an argument on the stack. The run never started. Now they are appended in loops; a lint
 * rule (eslint.config.mjs) found three more, fixed too: a fan-in over 200,000 integer-named nodes
 * (validateSpec's sort), a table of 200,000 rows (`runs ls`, `cache ls`), and a cancel of 200,000
 * queued attempts in the in-process pool (whose close then logged all 200,000 ids in one line:
 * it names the first 20 and counts the rest now).
 */
import { describe, expect, test } from 'vitest';
import { newRunState, validateSpec, type Command } from '@memoflow/engine';
import { decideInPlace } from '../../packages/engine/src/controller/core/decide.js';
import { workspaceOf } from '../../packages/engine/src/controller/core/draft.js';
import { RunCreation } from '../../packages/engine/src/controller/shell/pending-create.js';
import { lit, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';
import { runTreeLines } from '../../packages/sdk/src/cli/runs-show-tree.js';
import type { NodeReport } from '../../packages/sdk/src/client/run-handle.js';
import { printTable } from '../../packages/sdk/src/cli/table.js';
import { topologicalOrder } from '../../packages/engine/src/spec/topological-order.js';
import { InProcessTaskDispatcher } from '../../packages/worker/src/in-process/in-process-task-dispatcher.js';
import { toTaskRegistry } from '../../packages/worker/src/task-registry.js';
import { makeAttempt, recordingLogger, taskOf } from '../../packages/worker/src/testing/fixtures.js';

const WIDTH = 200_000;
const T0 = new Date('2026-01-01T00:00:00.000Z');

describe('a run of 200,000 nodes side by side', () => {
  test('its first round starts every node, with an attempt and an event each', () => {
    const tasks = Array.from({ length: WIDTH }, (_, i) => taskNode(`t${i}`, 'noop', { i: lit(i) }, { cache: null }));
    const spec = validateSpec(workflowSpec('very-wide', tasks, { outputs: {} }));
    const workspace = workspaceOf(newRunState({ id: 'r1', spec, inputs: {}, project: 'demo', domain: 'dev', options: { overwriteCache: false }, now: T0 }));
    const { commands } = decideInPlace(workspace, [{ type: 'run:tick' }], T0);
    const dispatch = commands.find((c) => c.type === 'DispatchTask');
    expect(dispatch?.type === 'DispatchTask' ? dispatch.attempts.length : 0).toBe(WIDTH);
    expect(commands.filter((c) => c.type === 'EmitEvent' && c.event.type === 'node:started')).toHaveLength(WIDTH);
  }, 60_000);

  test("a round's events are held back until the run is created, however many", () => {
    const creation = new RunCreation(
      { lease: { owner: 'c1', ttlMs: 1000 }, deferUntil: Number.MAX_SAFE_INTEGER, initial: () => { throw new Error('unused'); }, created: () => undefined, failed: () => undefined },
      { runStore: undefined as never, state: () => undefined, execute: async () => undefined, savedAll: () => undefined, restartFromStore: () => undefined, givenUp: () => undefined },
    );
    const events: Command[] = Array.from({ length: WIDTH }, (_, i) => ({ type: 'EmitEvent', event: { type: 'node:started', level: 'info', runId: 'r1', workflow: 'w', nodeId: `t${i}` } }));
    expect(creation.hold([...events, { type: 'LookupCache', lookups: [] }])).toEqual([{ type: 'LookupCache', lookups: [] }]);
  });

  test('`runs show` draws its tree', () => {
    const nodes: NodeReport[] = Array.from({ length: WIDTH }, (_, i) => ({
      id: `t${i}`, parent: null, task: 'noop', status: 'succeeded', cacheStatus: 'DISABLED', cacheReason: null, cacheKey: null, waitedFor: null,
      attempts: 1, startedAt: T0, finishedAt: T0, durationMs: i, savedMs: null, cutoffHint: null, output: null, error: null,
    }));
    const report = { id: 'r1', workflow: 'w', project: 'p', domain: 'd', status: 'succeeded' as const, outputs: null, error: null, createdAt: T0, finishedAt: T0, resumedFrom: null, retryOf: null, source: null, nodes };
    const lines = runTreeLines(report, nodes.map((n) => ({ id: n.id, task: 'noop', parents: [], container: null })), 120);
    expect(lines).toHaveLength(WIDTH + 1);
  }, 60_000);

  test('a fan-in reading 200,000 integer-named nodes is sorted', () => {
    const ids = Array.from({ length: WIDTH }, (_, i) => String(i));
    const order = topologicalOrder(['sink', ...ids], (id) => (id === 'sink' ? ids : []));
    expect(order.ok && order.order.at(-1)).toBe('sink');
    expect(order.ok && order.order.length).toBe(WIDTH + 1);
  });

  test('a table of 200,000 rows is printed', () => {
    let lines = 0;
    const stream = { write: (text: string) => ((lines += text.split('\n').length - 1), true) } as unknown as NodeJS.WritableStream;
    printTable(['RUN', 'STATUS'], Array.from({ length: WIDTH }, (_, i) => [`r${i}`, 'succeeded']), stream);
    expect(lines).toBe(WIDTH + 1);
  });

  test('the in-process pool cancels one of 200,000 queued attempts', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const logger = recordingLogger();
    const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry([taskOf('held', async () => (await gate, 1))]), concurrency: 1, logger });
    try {
      const attempts = Array.from({ length: WIDTH }, (_, i) => makeAttempt({ task: 'held', nodeId: `n${i}`, id: `a${i}` }));
      await dispatcher.dispatch(attempts);
      await expect(dispatcher.cancel([{ id: 'a1', task: 'held' }])).resolves.toBeUndefined();
    } finally {
      release();
      await dispatcher.close();
    }
    const closed = logger.records.find((record) => record.message.startsWith('dispatcher closed'));
    expect(closed?.fields).toMatchObject({ count: WIDTH - 2 });
    expect((closed?.fields as { attempts: string[] }).attempts).toHaveLength(20);
    expect(closed?.message).toBe(`dispatcher closed: ${WIDTH - 2} queued attempt(s) not started (the first 20 named)`);
  }, 60_000);
});
