import { describe, expect, test } from 'vitest';
import { decide } from '../controller/core/decide.js';
import { taskNode, wfInput, workflowSpec } from '../testing/spec-builders.js';
import { newRunState, pendingExecution } from './new-run.js';
import { changedFields, nodeWrite, nodeWrites } from './node-writes.js';
import type { NodeExecution } from './run-state.js';

const started: NodeExecution = {
  ...pendingExecution('r1', 'n1', 't.task'),
  phase: 'dispatched',
  attempts: 1,
  cacheKey: 'k',
  inputs: { rows: { value: [1, 2] } },
  startedAt: new Date('2030-01-01T00:00:00.000Z'),
};

describe('node writes', () => {
  test('names the fields whose values moved; kept references are unchanged', () => {
    const finished: NodeExecution = { ...started, phase: 'succeeded', output: { value: 3 }, finishedAt: new Date('2030-01-01T00:00:01.000Z') };
    expect(changedFields(started, finished)).toEqual(['phase', 'output', 'finishedAt']);
    expect(changedFields(started, { ...started })).toEqual([]);
  });

  test('dates compare by time, an absent cacheWriteRetry equals null, an equal value in a new object counts as changed', () => {
    const copy: NodeExecution = { ...started, startedAt: new Date(started.startedAt?.getTime() ?? 0), cacheWriteRetry: null };
    expect(changedFields(started, copy)).toEqual([]);
    expect(changedFields(started, { ...started, inputs: { rows: { value: [1, 2] } } })).toEqual(['inputs']);
    expect(changedFields(started, { ...started, cacheKey: null })).toEqual(['cacheKey']);
  });

  test('a node the store does not hold is written whole; an unchanged one not at all', () => {
    expect(nodeWrite(undefined, started)).toEqual({ node: started });
    expect(nodeWrite(started, started)).toBeNull();
    const moved = { ...started, attempts: 2 };
    expect(nodeWrites(['n1', 'n2'], (id) => (id === 'n1' ? started : undefined), { n1: moved, n2: started })).toEqual([{ node: moved, changed: ['attempts'] }, { node: started }]);
    expect(() => nodeWrites(['missing'], () => undefined, {})).toThrow("no node 'missing'");
  });

  test("after decide(), a started node's later writes leave out its inputs, key and key parts", () => {
    const spec = workflowSpec('wf', [taskNode('n1', 't.task', { rows: wfInput('rows') }, { cache: {} })], { inputs: { rows: true } });
    const created = newRunState({ id: 'r1', spec, inputs: { rows: { value: [1] } }, project: 'p', domain: 'd', options: { overwriteCache: false }, now: new Date(0) });
    const lookingUp = decide(created, [{ type: 'run:tick' }], new Date(1)).state;
    const first = changedFields(created.nodes['n1'] as NodeExecution, lookingUp.nodes['n1'] as NodeExecution);
    expect(first).toEqual(expect.arrayContaining(['phase', 'inputs', 'cacheKey', 'cacheKeyParts', 'startedAt']));
    const key = lookingUp.nodes['n1']?.cacheKey ?? '';
    const dispatched = decide(lookingUp, [{ type: 'cache:looked-up', results: [{ nodeId: 'n1', key, kind: 'output', outcome: 'miss' }] }], new Date(2)).state;
    const later = changedFields(lookingUp.nodes['n1'] as NodeExecution, dispatched.nodes['n1'] as NodeExecution);
    expect(later).toEqual(expect.arrayContaining(['phase', 'cacheStatus', 'attempts']));
    for (const field of ['inputs', 'cacheKey', 'cacheKeyParts', 'output', 'subWorkflow'] as const) expect(later).not.toContain(field);
  });
});
