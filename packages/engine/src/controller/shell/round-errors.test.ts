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
    expect(recordableReplacement({ type: 'cache:written', writes: [{ nodeId: 'a', kind: 'output' }], ok: true }, 'x')).toMatchObject({ ok: false, reason: 'x' });
    expect(recordableReplacement({ type: 'run:tick' }, 'x')).toBeNull();
  });
});
