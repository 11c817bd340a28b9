import { describe, expect, test } from 'vitest';
import { MemoflowError } from '../../errors.js';
import { DecisionError } from './round-errors.js';
import { sortRoundFailure, type Inbound } from './round-failure.js';

const tick = (): Inbound => ({ event: { type: 'run:tick' } });
const result = (ok: boolean): Inbound => {
  const at = new Date(0);
  const base = { attemptId: 'r-a-1', runId: 'r', nodeId: 'a', attempt: 1, startedAt: at, finishedAt: at };
  return { event: { type: 'attempt:finished', result: ok ? { ...base, ok: true, output: 1, outputHash: null } : { ...base, ok: false, error: { name: 'E', code: 'X', message: 'm', retryable: false } } } };
};

describe('sortRoundFailure: what a driver does after a failed round', () => {
  test('a store outage: every event back at the head of the inbox, retried after a backoff, state kept', () => {
    const batch = [result(true), tick()];
    const verdict = sortRoundFailure('r', batch, new Error('connection terminated unexpectedly'), 3);
    expect(verdict).toMatchObject({ next: 'retry', isolate: 0, acknowledge: [], unknownRun: false, discard: false });
    expect(verdict.requeue).toEqual(batch);
    expect(verdict.warning.level).toBe('warn');
    expect(verdict.warning.message).toContain('(attempt 3)');
  });

  test('a run the store does not have: acknowledged and dropped, the run given up', () => {
    const batch = [result(true)];
    const verdict = sortRoundFailure('r', batch, new MemoflowError('RUN_NOT_FOUND', 'gone'), 1);
    expect(verdict).toMatchObject({ next: 'next', requeue: [], unknownRun: true, acknowledge: batch });
    expect(verdict.warning.message).toContain("run 'r' is not in this store");
  });

  test('a permanent failure of several events: each decided alone, on a fresh read', () => {
    const batch = [result(true), result(true), tick()];
    const verdict = sortRoundFailure('r', batch, new DecisionError(new TypeError('boom')), 1);
    expect(verdict).toMatchObject({ next: 'next', isolate: 3, discard: true, acknowledge: [] });
    expect(verdict.requeue).toEqual(batch);
  });

  test('a permanent failure of one result: replaced by a failure that can be recorded, acknowledged with it', () => {
    const item = result(true);
    const verdict = sortRoundFailure('r', [item], new DecisionError(new TypeError('boom')), 1);
    expect(verdict).toMatchObject({ isolate: 1, discard: true, acknowledge: [] });
    const [replacement] = verdict.requeue;
    expect(replacement?.event).toMatchObject({ type: 'attempt:finished', result: { ok: false, error: { code: 'RESULT_NOT_RECORDED' } } });
    expect(replacement?.persisted).toBe(item.persisted);
  });

  test('a permanent failure of an event with nothing to record instead: dropped, saying so', () => {
    const item = tick();
    const verdict = sortRoundFailure('r', [item], new DecisionError(new TypeError('boom')), 1);
    expect(verdict).toMatchObject({ requeue: [], isolate: 0, discard: true, acknowledge: [item] });
    expect(verdict.warning).toMatchObject({ level: 'error' });
    expect(verdict.warning.message).toContain('could not be recorded and was dropped');
  });
});
