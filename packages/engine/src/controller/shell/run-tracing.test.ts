/**
 * The controller's OpenTelemetry spans (run-tracing.ts) with an in-memory SDK: a run's span, its
 * nodes' spans under it with their cache attributes, the node span's context on each attempt, a
 * failed node in error, a run taken over by another controller in the same trace; and with no SDK,
 * nothing carried and nothing recorded.
 */
import { afterEach, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import { InlineDispatcher } from '../../testing/inline-dispatcher.js';
import { installInMemoryTracing, parentSpanId, type InMemoryTracing } from '../../testing/in-memory-tracing.js';
import { SharedTransport } from '../../testing/shared-transport.js';
import { lit, ref, subworkflowNode, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import { TRACE_ATTRIBUTES as A } from '../../trace-attributes.js';
import { traceCarrierOf } from '../../trace-carrier.js';
import { newRunState } from '../../state/new-run.js';
import type { RunOptions } from '../../state/run-state.js';
import { Controller } from './controller.js';

// a (cached) -> b (caching off: it always runs) -> c (fails when told to)
const spec = (failC: boolean) =>
  workflowSpec(
    'trace.chain',
    [
      taskNode('a', 't.double', { x: lit(21) }),
      taskNode('b', 't.double', { x: ref('a') }, { cache: null }),
      taskNode('c', failC ? 't.fail' : 't.double', { x: ref('b') }, { cache: null }),
    ],
    { outputs: { c: ref('c') } },
  );

const carried: TaskAttempt[] = [];
const tasks = {
  't.double': (inputs: { [name: string]: unknown }, attempt: TaskAttempt) => {
    carried.push(attempt);
    return (inputs['x'] as number) * 2;
  },
  't.fail': (_: unknown, attempt: TaskAttempt) => {
    carried.push(attempt);
    throw new Error('c broke');
  },
};

const opened: Controller[] = [];
let tracing: InMemoryTracing | undefined;
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
  await tracing?.uninstall();
  tracing = undefined;
  carried.length = 0;
});

function controller(store = new InMemoryRunStore(), catalog = new InMemoryCacheCatalog()): Controller {
  const c = new Controller({ catalog, runStore: store, dispatcher: new InlineDispatcher(tasks) });
  opened.push(c);
  return c;
}

const only = (spans: ReadableSpan[], name: string, runId: string): ReadableSpan => {
  const found = spans.filter((s) => s.name === name && s.attributes[A.runId] === runId);
  expect(found, name).toHaveLength(1);
  return found[0] as ReadableSpan;
};

describe('run tracing', () => {
  test('a run is a span, each node a child span with task, key, cache status and attempt; each attempt carries its node span', async () => {
    tracing = installInMemoryTracing();
    const store = new InMemoryRunStore();
    const c = controller(store);
    await c.wait(await c.submit({ spec: spec(false), inputs: {}, project: 'demo', domain: 'dev' }));
    carried.length = 0;
    const runId = await c.submit({ spec: spec(false), inputs: {}, project: 'demo', domain: 'dev' });
    const state = await c.wait(runId);
    expect(state.run.status).toBe('succeeded');

    const spans = tracing.spans();
    const run = only(spans, 'memoflow.run trace.chain', runId);
    expect(run.attributes).toMatchObject({ [A.runId]: runId, [A.workflow]: 'trace.chain', [A.project]: 'demo', [A.domain]: 'dev', [A.runStatus]: 'succeeded' });
    expect(run.status.code).toBe(SpanStatusCode.UNSET);
    // The run's context is recorded in its options, for a controller that takes it over.
    const recorded = traceCarrierOf((await store.load(runId))?.run.options.trace);
    expect(recorded?.['traceparent']).toBe(`00-${run.spanContext().traceId}-${run.spanContext().spanId}-01`);

    const a = only(spans, 'memoflow.node a', runId);
    const b = only(spans, 'memoflow.node b', runId);
    for (const node of [a, b]) {
      expect(node.spanContext().traceId).toBe(run.spanContext().traceId);
      expect(parentSpanId(node)).toBe(run.spanContext().spanId);
    }
    const keyA = state.nodes['a']?.cacheKey ?? '';
    expect(a.attributes).toMatchObject({ [A.nodeId]: 'a', [A.task]: 't.double', [A.cacheStatus]: 'HIT', [A.cacheKey]: keyA, [A.cacheKeyShort]: keyA.slice(0, 10), [A.attempt]: 0, [A.nodePhase]: 'succeeded', [A.workflow]: 'trace.chain', [A.project]: 'demo', [A.domain]: 'dev' });
    expect(a.events.map((e) => e.name)).toEqual(['node:cache-hit']);
    expect(b.attributes).toMatchObject({ [A.cacheStatus]: 'DISABLED', [A.attempt]: 1 });
    expect(b.events.map((e) => e.name)).toEqual(['node:started', 'node:succeeded']);
    // The hit ran nothing; b's attempt carried b's span, as the worker's parent.
    expect(carried.map((attempt) => attempt.nodeId)).toEqual(['b', 'c']);
    expect(carried[0]?.trace?.['traceparent']).toBe(`00-${b.spanContext().traceId}-${b.spanContext().spanId}-01`);
    // Node spans sit inside the run span.
    for (const node of [a, b]) expect(node.endTime[0] * 1e9 + node.endTime[1]).toBeLessThanOrEqual(run.endTime[0] * 1e9 + run.endTime[1]);
  });

  test("a sub-workflow's nodes are children of its span; a retried node keeps one span, each attempt carrying it", async () => {
    tracing = installInMemoryTracing();
    let failures = 0;
    const flaky = (inputs: { [name: string]: unknown }, attempt: TaskAttempt) => {
      carried.push(attempt);
      if (failures++ === 0) throw new Error('first attempt fails');
      return inputs['x'] as number;
    };
    const c = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: new InMemoryRunStore(), dispatcher: new InlineDispatcher({ ...tasks, 't.flaky': flaky }) });
    opened.push(c);
    const inner = workflowSpec('trace.inner', [taskNode('m0', 't.double', { x: wfInput('a') }, { cache: null }), taskNode('m1', 't.flaky', { x: ref('m0') }, { cache: null, retries: 1 })], { inputs: { a: true }, outputs: { out: ref('m1') } });
    const outer = workflowSpec('trace.outer', [subworkflowNode('s', inner, { a: lit(5) }, { cache: null })], { outputs: { out: ref('s', 'out') } });
    const runId = await c.submit({ spec: outer, inputs: {}, project: 'demo', domain: 'dev' });
    expect((await c.wait(runId)).run.outputs).toEqual({ out: 10 });
    const spans = tracing.spans();
    const container = only(spans, 'memoflow.node s', runId);
    expect(parentSpanId(container)).toBe(only(spans, 'memoflow.run trace.outer', runId).spanContext().spanId);
    for (const child of ['s.m0', 's.m1']) expect(parentSpanId(only(spans, `memoflow.node ${child}`, runId)), child).toBe(container.spanContext().spanId);
    const retried = only(spans, 'memoflow.node s.m1', runId);
    expect(retried.attributes[A.attempt]).toBe(2);
    expect(retried.events.map((e) => e.name)).toEqual(['node:started', 'node:retrying', 'node:succeeded']);
    const parents = carried.filter((a) => a.nodeId === 's.m1').map((a) => a.trace?.['traceparent']);
    expect(parents).toEqual([`00-${retried.spanContext().traceId}-${retried.spanContext().spanId}-01`, `00-${retried.spanContext().traceId}-${retried.spanContext().spanId}-01`]);
  });

  test("a failed node's span and its run's are in error, with the exception recorded", async () => {
    tracing = installInMemoryTracing();
    const c = controller();
    const runId = await c.submit({ spec: spec(true), inputs: {}, project: 'demo', domain: 'dev' });
    expect((await c.wait(runId)).run.status).toBe('failed');
    const node = only(tracing.spans(), 'memoflow.node c', runId);
    expect(node.status).toEqual({ code: SpanStatusCode.ERROR, message: expect.stringContaining('c broke') as unknown });
    expect(node.attributes[A.nodePhase]).toBe('failed');
    const exception = node.events.find((e) => e.name === 'exception');
    expect(exception?.attributes?.['exception.message']).toContain('c broke');
    const run = only(tracing.spans(), 'memoflow.run trace.chain', runId);
    expect(run.status.code).toBe(SpanStatusCode.ERROR);
    expect(run.attributes[A.runStatus]).toBe('failed');
    expect(run.events.some((e) => e.name === 'exception')).toBe(true);
  });

  test("a user's active span at submit is the run span's parent", async () => {
    tracing = installInMemoryTracing();
    const c = controller();
    const outer = trace.getTracer('user').startSpan('user.pipeline');
    const runId = await trace.getTracer('user').startActiveSpan('user.pipeline', (span) => {
      outer.end();
      return c.submit({ spec: spec(false), inputs: {}, project: 'demo', domain: 'dev' }).finally(() => span.end());
    });
    await c.wait(runId);
    const run = only(tracing.spans(), 'memoflow.run trace.chain', runId);
    const user = tracing.named('user.pipeline').find((s) => s.spanContext().spanId === parentSpanId(run));
    expect(user?.spanContext().traceId).toBe(run.spanContext().traceId);
  });

  test("a run taken over by another controller stays in its trace: one tenure span per controller, the first ended as handed over", async () => {
    tracing = installInMemoryTracing();
    const store = new InMemoryRunStore();
    const catalog = new InMemoryCacheCatalog();
    const transport = new SharedTransport((attempt) => (attempt.inputs['x'] as number) * 2);
    const make = () => {
      const c = new Controller({ catalog, runStore: store, dispatcher: transport.dispatcher() });
      opened.push(c);
      return c;
    };
    const first = make();
    const second = make();
    const chain = workflowSpec('trace.handover', [taskNode('a', 't', { x: lit(1) }, { cache: null }), taskNode('b', 't', { x: ref('a') }, { cache: null })], { outputs: { b: ref('b') } });
    transport.lose.add('b'); // the first saves b as dispatched, then closes before it reaches the queue
    const runId = await first.submit({ spec: chain, inputs: {}, project: 'p', domain: 'd' });
    for (let i = 0; i < 400 && (await store.load(runId))?.nodes['b']?.phase !== 'dispatched'; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await first.close();
    expect(await second.recoverUnowned()).toEqual([runId]);
    expect((await second.wait(runId)).run.outputs).toEqual({ b: 4 });

    const tenures = tracing.named('memoflow.run trace.handover');
    expect(tenures).toHaveLength(2);
    const [firstTenure, secondTenure] = tenures.sort((x, y) => x.startTime[0] - y.startTime[0] || x.startTime[1] - y.startTime[1]) as [ReadableSpan, ReadableSpan];
    expect(firstTenure.attributes[A.handedOver]).toBe('controller-closed');
    // The first gave its lease back on closing, so the second took a free lease (no previous owner to name).
    expect(secondTenure.attributes).toMatchObject({ [A.takenOverFrom]: '', [A.runStatus]: 'succeeded' });
    expect(secondTenure.spanContext().traceId).toBe(firstTenure.spanContext().traceId);
    expect(parentSpanId(secondTenure)).toBe(firstTenure.spanContext().spanId);
    // a finished under the first; b's first span ended with the first tenure, its second under the second tenure.
    const a = tracing.named('memoflow.node a');
    expect(a.map(parentSpanId)).toEqual([firstTenure.spanContext().spanId]);
    const b = tracing.named('memoflow.node b');
    expect(b.map((s) => [parentSpanId(s), s.attributes[A.handedOver], s.attributes[A.nodePhase]])).toEqual([
      [firstTenure.spanContext().spanId, 'controller-closed', undefined],
      [secondTenure.spanContext().spanId, undefined, 'succeeded'],
    ]);
  });

  test('a controller that loses the lease in a pause ends its tenure as lease-lost; the new owner names it and continues the trace', async () => {
    tracing = installInMemoryTracing();
    let now = Date.parse('2030-03-01T12:00:00.000Z');
    const clock = { now: () => new Date(now) };
    const store = new InMemoryRunStore({ clock });
    const catalog = new InMemoryCacheCatalog({ clock });
    const transport = new SharedTransport((attempt) => (attempt.inputs['x'] as number) * 2);
    const make = (leaseMs: number) => {
      const c = new Controller({ catalog, runStore: store, dispatcher: transport.dispatcher(), clock, leaseMs });
      opened.push(c);
      return c;
    };
    const a = make(60); // heartbeats every 20 ms of real time; expiry on the fake clock
    const chain = workflowSpec('trace.pause', [taskNode('a', 't', { x: lit(1) }, { cache: null }), taskNode('b', 't', { x: ref('a') }, { cache: null })], { outputs: { b: ref('b') } });
    transport.lose.add('b');
    const runId = await a.submit({ spec: chain, inputs: {}, project: 'p', domain: 'd' });
    for (let i = 0; i < 400 && (await store.load(runId))?.nodes['b']?.phase !== 'dispatched'; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    const b = make(10_000);
    now += 1_000; // A pauses past its lease
    expect(await b.recoverUnowned()).toEqual([runId]);
    expect((await b.wait(runId)).run.outputs).toEqual({ b: 4 });
    for (let i = 0; i < 400 && a.ownedRuns > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));

    const [first, second] = tracing.named('memoflow.run trace.pause').sort((x, y) => (x.attributes[A.takenOverFrom] === undefined ? -1 : 1) - (y.attributes[A.takenOverFrom] === undefined ? -1 : 1)) as [ReadableSpan, ReadableSpan];
    expect(first.attributes[A.handedOver]).toBe('lease-lost');
    expect(second.attributes).toMatchObject({ [A.takenOverFrom]: a.id, [A.runStatus]: 'succeeded' });
    expect([second.spanContext().traceId, parentSpanId(second)]).toEqual([first.spanContext().traceId, first.spanContext().spanId]);
  });

  test('a submit refused before the run exists ends its span in error, naming why', async () => {
    tracing = installInMemoryTracing();
    const c = controller();
    await expect(c.submit({ spec: spec(false), inputs: {}, project: 'no spaces allowed', domain: 'dev' })).rejects.toMatchObject({ code: 'INVALID_SPEC' });
    const [refused] = tracing.named('memoflow.run trace.chain');
    expect(refused?.status.code).toBe(SpanStatusCode.ERROR);
    expect(refused?.events.find((e) => e.name === 'exception')?.attributes?.['exception.message']).toContain('project');
    expect(tracing.spans().filter((s) => s.name.startsWith('memoflow.node'))).toEqual([]);
  });

  test('a propagator that throws never fails a run: the run completes, its attempts untraced', async () => {
    tracing = installInMemoryTracing();
    propagation.disable();
    propagation.setGlobalPropagator({
      inject: () => {
        throw new Error('broken propagator');
      },
      extract: (ctx) => ctx,
      fields: () => [],
    });
    const c = controller();
    const runId = await c.submit({ spec: spec(false), inputs: {}, project: 'demo', domain: 'dev' });
    expect((await c.wait(runId)).run.outputs).toEqual({ c: 168 });
    expect(carried.map((attempt) => attempt.trace)).toEqual([undefined, undefined, undefined]);
    expect(only(tracing.spans(), 'memoflow.run trace.chain', runId).attributes[A.runStatus]).toBe('succeeded');
  });

  test('with no SDK registered a run works, its options record no context and attempts carry none', async () => {
    const store = new InMemoryRunStore();
    const c = controller(store);
    const runId = await c.submit({ spec: spec(false), inputs: {}, project: 'demo', domain: 'dev' });
    expect((await c.wait(runId)).run.outputs).toEqual({ c: 168 });
    expect((await store.load(runId))?.run.options.trace).toBeUndefined();
    expect(carried).toHaveLength(3);
    expect(carried.every((attempt) => attempt.trace === undefined)).toBe(true);
  });

  test('a stored run whose recorded context is hostile is taken over into a trace of its own, without failing', async () => {
    tracing = installInMemoryTracing();
    const store = new InMemoryRunStore();
    // What a hand-edited row could hold; every one of these runs is left unleased for a sweep.
    const hostile: unknown[] = [{ traceparent: '00-zz-yy-01' }, { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, tracestate: 'x'.repeat(5000) }, 'traceparent', 42, [1, 2], JSON.parse('{"__proto__":{"traceparent":"x"}}')];
    const ids = hostile.map((_, i) => `hostile-${i}`);
    for (const [i, trace] of hostile.entries()) {
      const options = { overwriteCache: false, pool: 'inline', trace } as unknown as RunOptions;
      await store.create(newRunState({ id: ids[i] ?? '', spec: spec(false), inputs: {}, project: 'demo', domain: 'dev', options, now: new Date() }));
    }
    const c = controller(store);
    expect((await c.recoverUnowned()).sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await c.wait(id)).run.outputs).toEqual({ c: 168 });
    for (const id of ids) {
      const run = only(tracing.spans(), 'memoflow.run trace.chain', id);
      expect(parentSpanId(run)).toBeUndefined();
      expect(run.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(run.spanContext().traceId).not.toBe('a'.repeat(32)); // the over-long tracestate voided the whole carrier
    }
  });

  test('traceCarrierOf never throws, and what it returns holds only short string fields', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer()))), (value) => {
        const carrier = traceCarrierOf(value);
        if (carrier === undefined) return;
        const entries = Object.entries(carrier);
        expect(entries.length).toBeGreaterThan(0);
        expect(entries.length).toBeLessThanOrEqual(8);
        for (const [field, text] of entries) {
          expect(field).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
          expect(typeof text).toBe('string');
          expect(text.length).toBeLessThanOrEqual(1024);
        }
      }),
    );
  });
});
