/**
 * The worker's `memoflow.attempt <task>` spans (packages/worker/src/attempt-tracing.ts): a child of the node span the attempt carries, in
 * process and across BullMQ (real Redis, a prefix of the test's own); in error for a failed
 * attempt; a trace of its own for an attempt carrying no context or a hostile one, which never
 * fails the attempt; and nothing recorded with no SDK registered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { systemClock, TRACE_ATTRIBUTES as A } from '@memoflow/engine';
import type { AttemptResult, TaskAttempt, TraceCarrier } from '@memoflow/engine';
import { installInMemoryTracing, parentSpanId, type InMemoryTracing } from '../../packages/engine/src/testing/in-memory-tracing.js';
import { BullMqTaskDispatcher, decodeQueuedAttempt, InProcessTaskDispatcher, runAttempt, silentLogger, startWorker } from '@memoflow/worker';
import { eachResult, makeAttempt, taskOf, waitFor } from '../../packages/worker/src/testing/fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from '../../packages/worker/src/testing/redis.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const NODE_SPAN = '00f067aa0ba902b7';
const nodeContext: TraceCarrier = { traceparent: `00-${TRACE_ID}-${NODE_SPAN}-01` };

/** What a queue could hold in `trace`: none of it may fail an attempt. */
const HOSTILE: unknown[] = [
  { traceparent: 'garbage' },
  { traceparent: `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01` }, // all-zero ids: invalid by the spec
  { traceparent: `ff-${TRACE_ID}-${NODE_SPAN}-01` }, // version ff is forbidden
  { traceparent: `00-${TRACE_ID}-${NODE_SPAN}-01`, tracestate: 'x'.repeat(100_000) },
  { traceparent: 42 },
  'traceparent',
  null,
  [nodeContext],
  Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, 'v'])),
];

const echo = taskOf('echo', ({ value }) => value ?? null);
const broken = taskOf('broken', () => {
  throw new Error('the body broke');
});
const registry = new Map([echo, broken].map((t) => [t.name, t]));

let tracing: InMemoryTracing | undefined;
const closers: (() => Promise<void>)[] = [];
let prefix = '';
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  if (prefix !== '') await cleanUpPrefix(prefix);
  prefix = '';
  await tracing?.uninstall();
  tracing = undefined;
});

const attemptSpan = (t: InMemoryTracing, attemptId: string) => {
  const spans = t.spans().filter((s) => s.attributes[A.attemptId] === attemptId);
  expect(spans).toHaveLength(1);
  return spans[0]!;
};

describe('attempt spans', () => {
  it("an attempt's span is its node span's child, with the attempt's attributes, and the body runs inside it", async () => {
    tracing = installInMemoryTracing();
    let active: string | undefined;
    const spy = taskOf('spy', () => {
      active = trace.getSpan(context.active())?.spanContext().spanId;
      return null;
    });
    const attempt = makeAttempt({ task: 'spy', cacheKey: 'k'.repeat(64), trace: nodeContext });
    const result = await runAttempt(new Map([[spy.name, spy]]), attempt, systemClock);
    expect(result.ok).toBe(true);
    const span = attemptSpan(tracing, attempt.id);
    expect(span.name).toBe('memoflow.attempt spy');
    expect(span.kind).toBe(SpanKind.CONSUMER);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(parentSpanId(span)).toBe(NODE_SPAN);
    expect(span.attributes).toMatchObject({ [A.runId]: attempt.runId, [A.nodeId]: attempt.nodeId, [A.task]: 'spy', [A.attempt]: attempt.attempt, [A.cacheKey]: 'k'.repeat(64), [A.cacheKeyShort]: 'k'.repeat(10) });
    expect(active).toBe(span.spanContext().spanId);
  });

  it("a failed attempt's span has status ERROR and the exception", async () => {
    tracing = installInMemoryTracing();
    const attempt = makeAttempt({ task: 'broken', trace: nodeContext });
    const result = await runAttempt(registry, attempt, systemClock);
    expect(result.ok).toBe(false);
    const span = attemptSpan(tracing, attempt.id);
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'the body broke' });
    expect(span.events.find((e) => e.name === 'exception')?.attributes?.['exception.message']).toBe('the body broke');
  });

  it('a hostile trace context (decoded from job data or handed in process) is ignored: the attempt runs, in a trace of its own', async () => {
    tracing = installInMemoryTracing();
    for (const [i, hostile] of HOSTILE.entries()) {
      const data = { ...makeAttempt({ task: 'echo', id: `hostile-${i}`, inputs: { value: i } }), trace: hostile };
      const decoded = decodeQueuedAttempt(data).attempt;
      // Given straight to runAttempt too, as an in-process caller could.
      for (const attempt of [decoded, data as TaskAttempt]) {
        const result = await runAttempt(registry, attempt, systemClock);
        expect(result).toMatchObject({ ok: true, output: i });
      }
      for (const span of tracing.spans().filter((s) => s.attributes[A.attemptId] === `hostile-${i}`)) {
        expect(parentSpanId(span)).toBeUndefined();
        expect(span.spanContext().traceId).not.toBe('0'.repeat(32));
      }
    }
    expect(decodeQueuedAttempt({ ...makeAttempt({ task: 'echo' }), trace: nodeContext }).attempt.trace).toEqual(nodeContext);
  });

  it('whatever a job holds in `trace`, decoding the attempt never fails on it and keeps only a carrier', () => {
    const base = makeAttempt({ task: 'echo' });
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.anything()))), (trace) => {
        const decoded = decodeQueuedAttempt({ ...base, trace }).attempt;
        expect(decoded.id).toBe(base.id);
        if (decoded.trace !== undefined) expect(Object.values(decoded.trace).every((value) => typeof value === 'string')).toBe(true);
      }),
    );
  });

  it('a propagator that throws never fails an attempt: it runs untraced', async () => {
    tracing = installInMemoryTracing();
    propagation.disable();
    propagation.setGlobalPropagator({
      inject: () => undefined,
      extract: () => {
        throw new Error('broken propagator');
      },
      fields: () => [],
    });
    const attempt = makeAttempt({ task: 'echo', inputs: { value: 'still runs' }, trace: nodeContext });
    expect(await runAttempt(registry, attempt, systemClock)).toMatchObject({ ok: true, output: 'still runs' });
    expect(tracing.spans().filter((s) => s.attributes[A.attemptId] === attempt.id)).toEqual([]);
  });

  it('with no SDK registered an attempt runs as before and nothing is propagated into its body', async () => {
    let active: unknown = 'unset';
    const spy = taskOf('spy', () => {
      active = trace.getSpan(context.active())?.isRecording();
      const carrier: TraceCarrier = {};
      propagation.inject(context.active(), carrier);
      return Object.keys(carrier).length;
    });
    const result = await runAttempt(new Map([[spy.name, spy]]), makeAttempt({ task: 'spy', trace: nodeContext }), systemClock);
    expect(result).toMatchObject({ ok: true, output: 0 });
    // No context manager: no span is active at all (with a bare API one would be a non-recording one).
    expect(active === undefined || active === false).toBe(true);
  });

  it('in process: the dispatcher runs an attempt under the node span it carries', async () => {
    tracing = installInMemoryTracing();
    const dispatcher = new InProcessTaskDispatcher({ tasks: registry, logger: silentLogger });
    closers.push(() => dispatcher.close());
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => void results.push(r)));
    const attempt = makeAttempt({ task: 'echo', inputs: { value: 'in process' }, trace: nodeContext });
    await dispatcher.dispatch([attempt]);
    await waitFor(() => results.length === 1);
    const span = attemptSpan(tracing, attempt.id);
    expect([span.spanContext().traceId, parentSpanId(span)]).toEqual([TRACE_ID, NODE_SPAN]);
  });

  it('across BullMQ: the job carries the node span, and hostile trace data in a job fails nothing', async () => {
    tracing = installInMemoryTracing();
    prefix = testPrefix();
    const pool = await startWorker({ tasks: [echo, broken], redisUrl: REDIS_URL, prefix, logger: silentLogger });
    closers.push(() => pool.close());
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, noWorkerGraceMs: null, logger: silentLogger });
    closers.push(() => dispatcher.close());
    const results: AttemptResult[] = [];
    dispatcher.onResults(eachResult(async (r) => void results.push(r)));
    const carried = makeAttempt({ task: 'echo', inputs: { value: 'queued' }, trace: nodeContext });
    const failing = makeAttempt({ task: 'broken', trace: nodeContext });
    const hostile = HOSTILE.map((trace, i) => ({ ...makeAttempt({ task: 'echo', inputs: { value: i } }), trace }) as TaskAttempt);
    await dispatcher.dispatch([carried, failing, ...hostile]);
    await waitFor(() => results.length === hostile.length + 2, 15_000, 'every result');
    expect(results.filter((r) => r.ok)).toHaveLength(hostile.length + 1);
    const span = attemptSpan(tracing, carried.id);
    expect([span.spanContext().traceId, parentSpanId(span)]).toEqual([TRACE_ID, NODE_SPAN]);
    expect(attemptSpan(tracing, failing.id).status.code).toBe(SpanStatusCode.ERROR);
    for (const attempt of hostile) expect(parentSpanId(attemptSpan(tracing, attempt.id))).toBeUndefined();
  });
});
