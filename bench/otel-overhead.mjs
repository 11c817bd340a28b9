// What traces cost the controller and the in-process worker (issue 11, item 7): N no-op nodes with
// in-memory stores, first with no OpenTelemetry SDK registered (the default: the API's no-op spans,
// which must cost next to nothing), then with an SDK exporting to memory (what tracing costs when
// on). Prints wall and CPU time per node, the best of `--repeat` runs each.
//
// Usage: node bench/otel-overhead.mjs [--nodes=8000] [--repeat=3]
import { performance } from 'node:perf_hooks';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore } from '@memoflow/engine';
import { task, workflow, z } from '@memoflow/sdk';
import { InProcessTaskDispatcher, silentLogger } from '@memoflow/worker';

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const NODES = Number(args.nodes ?? 8000);
const REPEAT = Number(args.repeat ?? 3);

const noop = task({ name: 'otel.noop', inputs: { i: z.number() }, output: z.number() }, ({ i }) => i);
const wide = workflow({ name: `otel.wide-${NODES}`, inputs: {} }, () => ({ out: Array.from({ length: NODES }, (_, i) => noop({ i })) }));

async function once() {
  const tasks = new Map([...wide.tasks].map(([name, t]) => [name, t.implementation]));
  const dispatcher = new InProcessTaskDispatcher({ tasks, logger: silentLogger });
  const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: new InMemoryRunStore(), dispatcher });
  const cpu = process.cpuUsage();
  const started = performance.now();
  const state = await controller.wait(await controller.submit({ spec: wide.spec, inputs: {}, project: 'bench', domain: 'dev' }));
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await controller.close();
  await dispatcher.close();
  if (state.run.status !== 'succeeded') throw new Error(`run ${state.run.status}`);
  return { ms, cpuMs: (used.user + used.system) / 1000 };
}

async function best(label) {
  const all = [];
  for (let i = 0; i < REPEAT; i++) all.push(await once());
  const ms = Math.min(...all.map((r) => r.ms));
  const cpuMs = Math.min(...all.map((r) => r.cpuMs));
  console.log(`${label.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms (${((ms / NODES) * 1000).toFixed(0)} µs/node), CPU ${cpuMs.toFixed(0)} ms (${((cpuMs / NODES) * 1000).toFixed(0)} µs/node)`);
}

console.log(`otel overhead: node ${process.version}, ${NODES} no-op nodes, in-memory stores, best of ${REPEAT}`);
await once(); // warm up
await best('no SDK registered (the default)');
const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
await best('SDK registered, spans exported to memory');
console.log(`spans per run: ${exporter.getFinishedSpans().length / REPEAT} (a run span, a node and an attempt span per node)`);
