import type { AttemptResult } from '@memoflow/engine';
import fc from 'fast-check';
import type { Json } from '@memoflow/engine';
import { describe, expect, it } from 'vitest';
import { makeAttempt } from '../testing/fixtures.js';
import { parseRedisUrl } from './redis-connection.js';
import { assertJobId, taskQueueName } from './queue-names.js';
import { decodeAttempt, decodeQueuedAttempt, decodeReceivedResult, decodeResult, encodeResult, replyToOf } from './wire-format.js';

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

describe('wire format: values by reference', () => {
  const hash = 'a'.repeat(64);

  it('decodes inputs and outputs passed by reference, and refuses them where a complete value is required', () => {
    const { inputs: _inputs, ...queued } = makeAttempt({ task: 't', id: 'a-b-1' });
    const attempt = { ...queued, inlineInputs: { s: null, i: 1 }, inputRefs: { s: hash } };
    expect(decodeQueuedAttempt(attempt)).toEqual({ attempt: makeAttempt({ task: 't', id: 'a-b-1', nodeId: attempt.nodeId, inputs: { s: null, i: 1 } }), inputRefs: { s: hash } });
    expect(() => decodeAttempt(attempt)).toThrow(/by reference/);
    expect(() => decodeQueuedAttempt({ ...attempt, inlineInputs: undefined })).toThrow(/attempt.inlineInputs must be an object/);
    expect(() => decodeQueuedAttempt({ ...attempt, inputRefs: { s: 'not-a-hash' } })).toThrow(/attempt.inputRefs.s must be a SHA-256/);
    expect(() => decodeQueuedAttempt({ ...attempt, inputRefs: { other: hash } })).toThrow(/names no input/);

    const at = '2025-01-01T00:00:00.000Z';
    const byRef = { attemptId: 'r-n-1', runId: 'r', nodeId: 'n', attempt: 1, startedAt: at, finishedAt: at, ok: true, outputRef: hash, outputHash: null };
    expect(decodeReceivedResult(byRef)).toEqual({ ...byRef, startedAt: new Date(at), finishedAt: new Date(at) });
    expect(() => decodeResult(byRef)).toThrow(/by reference/);
    expect(() => decodeReceivedResult({ ...byRef, outputRef: 42 })).toThrow(/result.outputRef must be a SHA-256/);
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

  it('carries the definition version and signature digest; a job from an older controller has neither', () => {
    const attempt = makeAttempt({ task: 't', taskVersion: 'src-0123abcd', signature: 'f'.repeat(64) });
    expect(decodeAttempt(JSON.parse(JSON.stringify(attempt)))).toEqual(attempt);
    const { taskVersion: _version, signature: _signature, ...old } = attempt;
    const decoded = decodeAttempt(JSON.parse(JSON.stringify(old)));
    expect(decoded).toEqual(old);
    expect(decoded).not.toHaveProperty('taskVersion');
    expect(decoded).not.toHaveProperty('signature');
    expect(() => decodeAttempt({ ...attempt, taskVersion: 2 })).toThrow(/attempt.taskVersion must be a string/);
    expect(() => decodeAttempt({ ...attempt, signature: null })).toThrow(/attempt.signature must be a string/);
  });

  it('reads the reply-to address beside the attempt; a job of an earlier release, or an address that is not one, has none', () => {
    const attempt = makeAttempt({ task: 't' });
    expect(replyToOf({ ...attempt, replyTo: 'host-1234-0a1b2c3d' })).toBe('host-1234-0a1b2c3d');
    expect(decodeAttempt({ ...attempt, replyTo: 'host-1234-0a1b2c3d' })).toEqual(attempt); // not part of the attempt
    expect(replyToOf(attempt)).toBeNull();
    for (const bad of ['', 'a:b', 'a b', 'x'.repeat(201), 7, null]) expect(replyToOf({ ...attempt, replyTo: bad })).toBeNull();
    expect(replyToOf(null)).toBeNull();
  });

  it('keeps inputs and outputs byte for byte through the JSON wire (__proto__ keys, unicode, deep nesting)', () => {
    // Objects built with fromEntries: `__proto__` is then an own key, as JSON.parse makes it.
    const key = fc.oneof(fc.constant('__proto__'), fc.constant('constructor'), fc.string({ unit: 'grapheme', maxLength: 6 }));
    const { json } = fc.letrec<{ json: Json }>((tie) => ({
      json: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n)),
        fc.string({ unit: 'grapheme' }),
        fc.array(tie('json'), { maxLength: 4 }),
        fc.array(fc.tuple(key, tie('json')), { maxLength: 4 }).map((entries) => Object.fromEntries(entries) as Json),
      ),
    }));
    const deep = fc.integer({ min: 1, max: 1000 }).map((depth) => {
      let value: Json = 'leaf';
      for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : (Object.fromEntries([['__proto__', value]]));
      return value;
    });
    fc.assert(
      fc.property(fc.oneof(json, deep), (value) => {
        const attempt = makeAttempt({ task: 't', inputs: { value } });
        const decoded = decodeAttempt(JSON.parse(JSON.stringify(attempt)));
        expect(JSON.stringify(decoded.inputs)).toBe(JSON.stringify(attempt.inputs));
        expect(decoded.inputs).toEqual(attempt.inputs);
        const result: AttemptResult = { attemptId: attempt.id, runId: 'r', nodeId: 'n', attempt: 1, startedAt: new Date(0), finishedAt: new Date(1), ok: true, output: value, outputHash: null };
        const back = decodeResult(JSON.parse(JSON.stringify(encodeResult(result))));
        expect(back.ok && JSON.stringify(back.output)).toBe(JSON.stringify(value));
      }),
      { numRuns: 300 },
    );
  });
});
