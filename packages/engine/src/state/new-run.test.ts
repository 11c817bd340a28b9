import { describe, expect, test } from 'vitest';
import { lit, ref, taskNode, wfInput, workflowSpec } from '../testing/spec-builders.js';
import { newRunState, type NewRunRequest } from './new-run.js';
import { newRunId } from './run-id.js';

const now = new Date('2025-03-01T12:00:00.000Z');
const spec = workflowSpec('wf', [taskNode('a', 't.a', { x: wfInput('x') }), taskNode('b', 't.b', { y: ref('a'), z: lit(1) })], { inputs: { x: true } });
const request = (overrides: Partial<NewRunRequest> = {}): NewRunRequest => ({
  id: 'r1',
  spec,
  inputs: { x: { value: 1 } },
  project: 'demo',
  domain: 'dev',
  options: { overwriteCache: false },
  now,
  ...overrides,
});

describe('newRunState', () => {
  test('every node pending, run running at version 0', () => {
    const state = newRunState(request());
    expect(state.run).toMatchObject({ id: 'r1', workflow: 'wf', status: 'running', version: 0, outputs: null, error: null, createdAt: now, updatedAt: now, finishedAt: null });
    expect(Object.keys(state.nodes)).toEqual(['a', 'b']);
    expect(state.nodes['b']).toEqual({
      runId: 'r1', nodeId: 'b', task: 't.b', phase: 'pending', cacheStatus: null, cacheReason: null, cacheKey: null, cacheKeyParts: null,
      attempts: 0, inputs: null, output: null, error: null, startedAt: null, finishedAt: null, subWorkflow: null,
    });
  });

  test('a missing or unknown workflow input names the field', () => {
    expect(() => newRunState(request({ inputs: {} }))).toThrow(expect.objectContaining({ code: 'MISSING_INPUT', location: { workflow: 'wf', field: 'x' } }));
    expect(() => newRunState(request({ inputs: { x: { value: 1 }, y: { value: 2 } } }))).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_INPUT', location: { workflow: 'wf', field: 'y' } }),
    );
  });

  test('project and domain are restricted to safe characters', () => {
    expect(() => newRunState(request({ project: 'a/b' }))).toThrow(expect.objectContaining({ code: 'INVALID_SPEC', location: { workflow: 'wf', field: 'project' } }));
    expect(() => newRunState(request({ domain: '' }))).toThrow(expect.objectContaining({ code: 'INVALID_SPEC', location: { workflow: 'wf', field: 'domain' } }));
  });
});

describe('newRunId', () => {
  test('time-ordered, unique, and free of the job-id separators', () => {
    // Base-36 milliseconds are 8 characters from 1972 to 2059; ids sort by creation within that range.
    const early = newRunId(new Date('2024-01-01T00:00:00.000Z'));
    const late = newRunId(new Date('2058-12-31T00:00:00.000Z'));
    expect(early < late).toBe(true);
    expect(newRunId(now)).not.toBe(newRunId(now));
    expect(newRunId(now)).toMatch(/^r[0-9a-z]+$/);
  });
});
