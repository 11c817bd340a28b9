/**
 * Traces end to end, in every mode: with an OpenTelemetry SDK installed (in memory), a run is one
 * trace: its `memoflow.run` span, a `memoflow.node` span per node under it (a HIT, and a node that
 * executed), and the worker's `memoflow.attempt` span under the executed node's span (in process,
 * or across BullMQ with the worker pool in this process). A failed node is in error all the way up.
 * (test/distributed/traces.test.ts has the worker in a process of its own.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { NonRetryableError, task, workflow, z } from '@memoflow/sdk';
import { TRACE_ATTRIBUTES as A } from '@memoflow/engine';
import { installInMemoryTracing, parentSpanId, type InMemoryTracing } from '../../packages/engine/src/testing/in-memory-tracing.js';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

function pipeline(failTotal = false) {
  const clean = task({ name: uniqueName('trace.clean'), inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' } }, async ({ rows }) => rows.filter((r) => r >= 0));
  // No cache: it executes on every run, after clean's HIT.
  const total = task({ name: uniqueName('trace.total'), inputs: { rows: z.array(z.number()) }, output: z.number() }, async ({ rows }) => {
    if (failTotal) throw new NonRetryableError('total refused the rows');
    return rows.reduce((a, b) => a + b, 0);
  });
  const etl = workflow({ name: uniqueName('trace.etl'), inputs: { rows: z.array(z.number()) } }, ({ rows }) => ({ total: total({ rows: clean({ rows }) }) }));
  return { clean, total, etl };
}

const ids = (span: ReadableSpan) => ({ trace: span.spanContext().traceId, span: span.spanContext().spanId, parent: parentSpanId(span) });

describe.each(MODES)('traces ($name)', (mode) => {
  let t: TestConnection;
  let tracing: InMemoryTracing;
  beforeEach(async () => {
    tracing = installInMemoryTracing();
    t = await mode.open();
  });
  afterEach(async () => {
    await t.cleanup();
    await tracing.uninstall();
  });

  /** The one span of `runId` named `name`. */
  const span = (name: string, runId: string): ReadableSpan => {
    const found = tracing.spans().filter((s) => s.name === name && s.attributes[A.runId] === runId);
    expect(found.map((s) => s.name), name).toEqual([name]);
    return found[0] as ReadableSpan;
  };

  it('one trace per run: the run span, a HIT node and an executed node under it, the attempt under its node', async () => {
    const { clean, total, etl } = pipeline();
    await (await t.mf.run(etl, { rows: [1, -2, 3] }, { project: 'demo', domain: 'dev' })).result();
    const run = await t.mf.run(etl, { rows: [1, -2, 3] }, { project: 'demo', domain: 'dev' });
    expect(await run.result()).toEqual({ total: 4 });
    const nodes = await run.nodes();

    const runSpan = span(`memoflow.run ${etl.workflowName}`, run.id);
    expect(runSpan.attributes).toMatchObject({ [A.workflow]: etl.workflowName, [A.project]: 'demo', [A.domain]: 'dev', [A.runStatus]: 'succeeded' });
    const nodeOf = (name: string) => nodes.find((n) => n.task === name);
    const hit = span(`memoflow.node ${nodeOf(clean.taskName)?.id}`, run.id);
    const executed = span(`memoflow.node ${nodeOf(total.taskName)?.id}`, run.id);
    const cleanKey = nodeOf(clean.taskName)?.cacheKey ?? '';
    expect(hit.attributes).toMatchObject({ [A.task]: clean.taskName, [A.cacheStatus]: 'HIT', [A.cacheKey]: cleanKey, [A.cacheKeyShort]: cleanKey.slice(0, 10), [A.attempt]: 0 });
    expect(executed.attributes).toMatchObject({ [A.task]: total.taskName, [A.cacheStatus]: 'DISABLED', [A.attempt]: 1, [A.nodePhase]: 'succeeded' });
    for (const node of [hit, executed]) expect(ids(node)).toMatchObject({ trace: ids(runSpan).trace, parent: ids(runSpan).span });

    const attempt = span(`memoflow.attempt ${total.taskName}`, run.id);
    expect(ids(attempt)).toMatchObject({ trace: ids(runSpan).trace, parent: ids(executed).span });
    expect(attempt.attributes).toMatchObject({ [A.task]: total.taskName, [A.attempt]: 1, [A.nodeId]: executed.attributes[A.nodeId] });
    // The HIT ran nothing.
    expect(tracing.spans().filter((s) => s.name === `memoflow.attempt ${clean.taskName}` && s.attributes[A.runId] === run.id)).toEqual([]);
  });

  it("a failing node's span, its attempt's and the run's have status ERROR with the exception", async () => {
    const { total, etl } = pipeline(true);
    const run = await t.mf.run(etl, { rows: [5] }, { project: 'demo', domain: 'dev' });
    await expect(run.result()).rejects.toThrow(/total refused the rows/);
    const node = (await run.nodes()).find((n) => n.task === total.taskName);
    const failed = [span(`memoflow.node ${node?.id}`, run.id), span(`memoflow.attempt ${total.taskName}`, run.id), span(`memoflow.run ${etl.workflowName}`, run.id)];
    for (const s of failed) {
      expect(s.status.code, s.name).toBe(SpanStatusCode.ERROR);
      expect(s.events.find((e) => e.name === 'exception')?.attributes?.['exception.message'], s.name).toContain('total refused the rows');
    }
  });
});
