/**
 * An OpenTelemetry SDK for tests: a global tracer provider exporting to memory, the W3C trace
 * context propagator and an AsyncLocalStorage context manager, as a user's `NodeSDK` would install
 * them. Tests only (the packages depend on `@opentelemetry/api` alone).
 */
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { context, propagation, trace } from '@opentelemetry/api';

export interface InMemoryTracing {
  /** The spans ended so far. */
  spans(): ReadableSpan[];
  /** The ended spans named `name` (e.g. `memoflow.node a`). */
  named(name: string): ReadableSpan[];
  /** Unregisters everything: the API is back to its no-op state. */
  uninstall(): Promise<void>;
}

export function installInMemoryTracing(): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const uninstall = installTracing(exporter);
  return {
    spans: () => exporter.getFinishedSpans(),
    named: (name) => exporter.getFinishedSpans().filter((span) => span.name === name),
    uninstall,
  };
}

/** Registers the SDK globally, each span exported to `exporter` as it ends; returns how to unregister it. */
export function installTracing(exporter: SpanExporter): () => Promise<void> {
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(contextManager)) throw new Error('a context manager is registered already');
  if (!propagation.setGlobalPropagator(new W3CTraceContextPropagator())) throw new Error('a propagator is registered already');
  if (!trace.setGlobalTracerProvider(provider)) throw new Error('a tracer provider is registered already');
  return async () => {
    trace.disable();
    propagation.disable();
    context.disable();
    await provider.shutdown();
  };
}

/** The span's parent span id, whichever SDK field holds it. */
export function parentSpanId(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}
