import { describe, expect, test } from 'vitest';
import { classifyRoundError, DecisionError, recordableReplacement, roundRetryDelayMs } from './round-errors.js';

function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('round failures', () => {
  test('classification', () => {
    expect(classifyRoundError(new DecisionError(new TypeError('x')))).toBe('permanent');
    expect(classifyRoundError(pgError('54000', 'too big'))).toBe('permanent');
    expect(classifyRoundError(new Error('wrapped', { cause: pgError('22021', 'bad utf8') }))).toBe('permanent');
    expect(classifyRoundError(pgError('57P01', 'terminating connection due to administrator command'))).toBe('temporary');
    expect(classifyRoundError(new Error('CONNECTION_CLOSED'))).toBe('temporary');
    expect([1, 2, 3, 10].map(roundRetryDelayMs)).toEqual([500, 1000, 2000, 10_000]);
  });

  test('what an unrecordable event becomes', () => {
    const now = new Date(0);
    const result = { attemptId: 'r-a-1', runId: 'r', nodeId: 'a', attempt: 1, startedAt: now, finishedAt: now, ok: true as const, output: 1, outputHash: null };
    expect(recordableReplacement({ type: 'attempt:finished', result }, 'refused')).toMatchObject({ result: { ok: false, error: { code: 'RESULT_NOT_RECORDED', retryable: false } } });
    const replaced = recordableReplacement({ type: 'attempt:finished', result }, 'refused');
    expect(replaced === null ? null : recordableReplacement(replaced, 'again')).toBeNull(); // never replaced twice
    expect(recordableReplacement({ type: 'cache:looked-up', results: [{ nodeId: 'a', key: 'k', kind: 'output', outcome: 'miss' }] }, 'x')).toMatchObject({ results: [{ outcome: 'failure' }] });
    // A shadow lookup (early cutoff) and one made holding a reservation stay what they were: only the outcome fails.
    expect(
      recordableReplacement({ type: 'cache:looked-up', results: [{ nodeId: 'b', key: 'k2', kind: 'output', shadow: { upstream: 'a' }, outcome: 'hit', entry: { key: 'k2', kind: 'output', project: 'p', domain: 'd', task: 't', parts: { format: 1, project: 'p', domain: 'd', task: 't', signature: 's', version: '1', inputs: {} }, value: 1, valueHash: null, runId: 'r0', nodeId: 'b', durationMs: null, createdAt: now } }, { nodeId: 'c', key: 'k3', kind: 'output', afterReservation: true, outcome: 'miss' }] }, 'x'),
    ).toEqual({ type: 'cache:looked-up', results: [{ nodeId: 'b', key: 'k2', kind: 'output', shadow: { upstream: 'a' }, outcome: 'failure', reason: "the lookup's result could not be recorded: x" }, { nodeId: 'c', key: 'k3', kind: 'output', afterReservation: true, outcome: 'failure', reason: "the lookup's result could not be recorded: x" }] });
    expect(recordableReplacement({ type: 'cache:written', writes: [{ nodeId: 'a', kind: 'output' }], ok: true }, 'x')).toMatchObject({ ok: false, reason: 'x' });
    expect(recordableReplacement({ type: 'run:tick' }, 'x')).toBeNull();
  });
});
