/**
 * Traces across processes: the controller in the test process (an in-memory OpenTelemetry SDK), the
 * worker pool in a process of its own with an SDK printing its spans (test/fixtures/
 * traced-worker-process.ts). The trace context crosses Redis in the job data: each worker attempt
 * span is in the run's trace, the child of its node's span. A controller with no SDK carries no
 * context: the worker's spans are then traces of their own, and the run works as before.
 */
import postgres from 'postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import { TRACE_ATTRIBUTES as A } from '@memoflow/engine';
import { chain } from '../fixtures/flows.js';
import type { PrintedSpan } from '../fixtures/traced-worker-process.js';
import { installInMemoryTracing, parentSpanId, type InMemoryTracing } from '../../packages/engine/src/testing/in-memory-tracing.js';
import { DistributedEnv, resultWithin, waitFor, type Child } from './support.js';

let t: DistributedEnv;
let tracing: InMemoryTracing | undefined;
beforeEach(async () => {
  t = await DistributedEnv.create();
});
afterEach(async () => {
  await t.cleanup();
  await tracing?.uninstall();
  tracing = undefined;
}, 30_000);

async function tracedWorker(): Promise<Child> {
  const child = t.spawnScript('traced-worker-process.ts', { CONCURRENCY: '4' });
  await child.waitForLine((line) => line === 'ready', 30_000);
  return child;
}

/** The spans the worker printed for `runId` (its attempt spans). */
function printed(worker: Child, runId: string): PrintedSpan[] {
  return worker.stdout
    .filter((line) => line.startsWith('span '))
    .map((line) => JSON.parse(line.slice('span '.length)) as PrintedSpan)
    .filter((span) => span.attributes[A.runId] === runId);
}

describe('distributed: traces', () => {
  it("a worker process's attempt spans join the run's trace, each the child of its node's span", async () => {
    tracing = installInMemoryTracing();
    const worker = await tracedWorker();
    const mf = await t.connect();
    const seed = 1000 + Math.floor(Math.random() * 100_000);
    const run = await mf.run(chain, { seed, ms: 0 }, { project: 'demo', domain: 'dev' });
    expect(await resultWithin(t, mf, run)).toEqual({ out: seed + 3 });
    const nodes = await run.nodes();
    const attempts = await waitFor('the worker to print an attempt span per node', () => {
      const spans = printed(worker, run.id);
      return spans.length === nodes.length && spans;
    });

    const local = tracing.spans().filter((s) => s.attributes[A.runId] === run.id);
    const runSpan = local.find((s) => s.name === 'memoflow.run dist.chain');
    const traceId = runSpan?.spanContext().traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    for (const node of nodes) {
      const nodeSpan = local.find((s) => s.name === `memoflow.node ${node.id}`);
      expect(nodeSpan?.spanContext().traceId).toBe(traceId);
      expect(parentSpanId(nodeSpan as NonNullable<typeof nodeSpan>)).toBe(runSpan?.spanContext().spanId);
      const attempt = attempts.find((s) => s.attributes[A.nodeId] === node.id);
      expect(attempt).toMatchObject({ name: 'memoflow.attempt dist.step', traceId, parentSpanId: nodeSpan?.spanContext().spanId, status: SpanStatusCode.UNSET });
      expect(attempt?.attributes).toMatchObject({ [A.task]: 'dist.step', [A.attempt]: 1, [A.cacheKey]: node.cacheKey });
    }
    // The run's context is in its options row, for whichever controller continues the run.
    const sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql.unsafe<{ options: { trace?: { traceparent?: string } } }[]>(`SELECT options FROM "${t.schema}".runs WHERE id = $1`, [run.id]);
      expect(row?.options.trace?.traceparent).toBe(`00-${traceId}-${runSpan?.spanContext().spanId}-01`);
    } finally {
      await sql.end();
    }
  }, 60_000);

  it('a controller with no SDK carries no trace context: the run works and the worker starts a trace per attempt', async () => {
    const worker = await tracedWorker();
    const mf = await t.connect();
    const seed = 200_000 + Math.floor(Math.random() * 100_000);
    const run = await mf.run(chain, { seed, ms: 0 });
    expect(await resultWithin(t, mf, run)).toEqual({ out: seed + 3 });
    const attempts = await waitFor('an attempt span per node', () => {
      const spans = printed(worker, run.id);
      return spans.length === 3 && spans;
    });
    expect(attempts.map((s) => s.parentSpanId)).toEqual([null, null, null]);
    expect(new Set(attempts.map((s) => s.traceId)).size).toBe(3);
  }, 60_000);
});
