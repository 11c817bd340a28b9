import type { AttemptResult } from '@memoflow/engine';
import { describe, expect, it } from 'vitest';
import { makeAttempt } from '../testing/fixtures.js';
import { parseRedisUrl } from './redis-connection.js';
import { assertJobId, taskQueueName } from './queue-names.js';
import { decodeAttempt, decodeResult, encodeResult } from './wire-format.js';

describe('wire format', () => {
  it('round-trips results through JSON, dates included', () => {
    const ok: AttemptResult = {
      attemptId: 'r-n-1', runId: 'r', nodeId: 'n', attempt: 1,
      startedAt: new Date('2025-01-01T00:00:00Z'), finishedAt: new Date('2025-01-01T00:00:01Z'),
      ok: true, output: { a: [1, null] }, outputHash: 'h',
    };
    const { output: _output, outputHash: _hash, ...base } = ok;
    const failed: AttemptResult = { ...base, ok: false, error: { name: 'Error', message: 'x', code: 'C', retryable: true } };
    for (const result of [ok, failed]) {
      expect(decodeResult(JSON.parse(JSON.stringify(encodeResult(result))))).toEqual(result);
    }
  });

  it('rejects malformed job data, naming the field', () => {
    expect(() => decodeResult({ attemptId: 1 })).toThrow(/attemptId must be a string/);
    expect(() => decodeAttempt({ ...makeAttempt({ task: 't' }), inputs: 'code()' })).toThrow(/attempt.inputs must be an object/);
    expect(decodeAttempt(JSON.parse(JSON.stringify(makeAttempt({ task: 't', id: 'a-b-1' }))))).toMatchObject({ id: 'a-b-1' });
  });
});

describe('names and connections', () => {
  it('escapes ":" in queue names and refuses job ids BullMQ cannot store', () => {
    expect(taskQueueName('etl.clean')).toBe('task.etl.clean');
    expect(taskQueueName('a:b%c')).toBe('task.a%3Ab%25c');
    expect(() => assertJobId('r1-n1-1')).not.toThrow();
    expect(() => assertJobId('r1:n1')).toThrow(/no ':'/);
    expect(() => assertJobId('123')).toThrow();
  });

  it('parses Redis URLs', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380/2')).toEqual({ host: '127.0.0.1', port: 6380, db: 2 });
    expect(parseRedisUrl('rediss://u:p%40ss@h')).toEqual({ host: 'h', port: 6379, username: 'u', password: 'p@ss', tls: {} });
    expect(() => parseRedisUrl('http://secret:pw@h')).toThrow(/\*\*\*/);
  });
});
