import { context, diag, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import { shortKey, TRACE_ATTRIBUTES as A, traceCarrierOf } from '@memoflow/engine';
import type { AttemptResult, TaskAttempt } from '@memoflow/engine';

const TRACER_NAME = '@memoflow/worker';

/**
 * Runs an attempt inside its `memoflow.attempt <task>` span (OpenTelemetry, through the API only),
 * a child of the node span whose context the attempt carries (`TaskAttempt.trace`), so in one trace
 * the worker's part sits under the controller's, across the queue or in process. The body runs
 * with the span active, so a task's own instrumented calls (HTTP, SQL) nest under it. A failed
 * attempt's span has status ERROR and the exception. With no SDK registered the span is the API's
 * non-recording one and nothing is recorded; an attempt carrying no context, or one that is not a
 * trace context (data from a queue), starts a trace of its own.
 */
export async function tracedAttempt(attempt: TaskAttempt, run: () => Promise<AttemptResult>): Promise<AttemptResult> {
  let span: Span;
  let active: Context;
  try {
    ({ span, active } = startAttemptSpan(attempt));
  } catch (error) {
    // Tracing never fails an attempt: an SDK that throws (a user's propagator) leaves it untraced.
    reportOnce(error);
    return run();
  }
  const result = await context.with(active, run);
  try {
    if (!result.ok) {
      const { name, message, code, stack } = result.error;
      span.recordException({ name, message, ...(code === undefined ? {} : { code }), ...(stack === undefined ? {} : { stack }) });
      span.setStatus({ code: SpanStatusCode.ERROR, message });
      if (code !== undefined) span.setAttribute('memoflow.error.code', code);
    }
    span.end();
  } catch (error) {
    reportOnce(error);
  }
  return result;
}

function startAttemptSpan(attempt: TaskAttempt): { span: Span; active: Context } {
  const carrier = traceCarrierOf(attempt.trace);
  const parent = carrier === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, carrier);
  const attributes: Attributes = {
    [A.runId]: attempt.runId,
    [A.nodeId]: attempt.nodeId,
    [A.task]: attempt.task,
    [A.attempt]: attempt.attempt,
    [A.attemptId]: attempt.id,
  };
  if (attempt.cacheKey !== null) {
    attributes[A.cacheKey] = attempt.cacheKey;
    attributes[A.cacheKeyShort] = shortKey(attempt.cacheKey);
  }
  const span = trace.getTracer(TRACER_NAME).startSpan(`memoflow.attempt ${attempt.task}`, { kind: SpanKind.CONSUMER, attributes }, parent);
  return { span, active: trace.setSpan(parent, span) };
}

let reported = false;
function reportOnce(error: unknown): void {
  if (!reported) diag.error('memoflow: tracing an attempt failed; it runs untraced', error);
  reported = true;
}
