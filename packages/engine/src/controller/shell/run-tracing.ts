import { context, diag, propagation, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import { shortKey } from '../../cache/cache-key.js';
import { toErrorInfo, type ErrorInfo } from '../../errors.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import { isTerminal } from '../../state/node-phase.js';
import type { NodeExecution, RunRecord, RunState } from '../../state/run-state.js';
import { TRACE_ATTRIBUTES as A } from '../../trace-attributes.js';
import { traceCarrierOf, type TraceCarrier } from '../../trace-carrier.js';
import type { RunWorkspace } from '../core/draft.js';
import type { EngineEvent } from '../vocabulary/commands.js';

const TRACER_NAME = '@memoflow/engine';

/** Why a tenure ends before its run does. */
export type HandOver = 'controller-closed' | 'lease-lost';

/**
 * One controller's stretch of driving one run: its `memoflow.run <workflow>` span and the node
 * spans it opened under it.
 */
interface Tenure {
  span: Span;
  context: Context;
  startedAt: Date;
  /** False with no SDK installed (or a run its sampler dropped): then no node span is made at all. */
  recording: boolean;
  /** Node spans open, by node id. */
  readonly open: Map<string, Span>;
  /** Nodes whose span ended in this tenure: a later event of a terminal node opens none. */
  readonly ended: Set<string>;
  /** Not recording: what every attempt carries (an unsampled context stays unsampled downstream), if anything. */
  carrier: TraceCarrier | undefined;
}

/**
 * The OpenTelemetry spans of the runs a controller drives, through `@opentelemetry/api` alone: with
 * no SDK registered every span is the API's non-recording one, nodes get none, and attempts carry
 * nothing (next to no cost). Spans start and end from what the shell already handles: the run's
 * submit, the events the core emits (`EmitEvent`) and the attempts it dispatches. The core knows
 * nothing of tracing.
 *
 * A run outlives a controller, a span cannot: so a run's trace is one span per controller's tenure.
 * - Submit starts the first, `memoflow.run <workflow>` under the caller's active context, and its
 *   context is recorded in the run's options (`RunOptions.trace`, written once at create).
 * - A controller that takes the run over (the owner closed or died, `run:taken-over`), or finds
 *   itself driving a run it has no tenure of, starts another `memoflow.run <workflow>` span, a child
 *   of the recorded context, with `memoflow.run.taken_over_from`; nodes it drives from then on are
 *   traced under it. So one trace holds every controller's part.
 * - A tenure ends with the run (status, and for a failed run ERROR with the exception), or when its
 *   controller closes or loses the lease (`memoflow.handed_over`: its open node spans end too, so
 *   nothing is left unexported). A controller that dies loses its open spans: the later tenures and
 *   the workers' attempt spans still show in the trace, under a parent the backend never received.
 * - `memoflow.node <nodeId>` spans are children of their tenure (a container's children of the
 *   container's span), opened at the node's first event or dispatch with the node's start time, and
 *   ended once the node is terminal (after its cache write): attributes task, key (full and short),
 *   cache status and reason, attempts, run, workflow, project, domain; a failed node has status
 *   ERROR and an exception event. Every node event is a span event.
 * - Each attempt carries its node span's context (`TaskAttempt.trace`), so the worker's
 *   `memoflow.attempt <task>` span is the node span's child, in whichever process it runs.
 */
export class RunTracing {
  private readonly tenures = new Map<string, Tenure>();
  private reported = false;

  constructor(private readonly now: () => Date) {}

  /**
   * A run is being submitted: starts its first tenure and returns the context to record in its
   * options (undefined when no propagator is installed, so nothing is stored).
   */
  submitted(run: Pick<RunRecord, 'id' | 'workflow' | 'project' | 'domain'>): TraceCarrier | undefined {
    return this.guard(undefined, () => {
      const tenure = this.begin(run, context.active(), {});
      return inject(tenure.context);
    });
  }

  /** The submit failed before the run was created: its span ends in error. */
  abandoned(runId: string, error: unknown): void {
    this.guard(undefined, () => {
      const tenure = this.tenures.get(runId);
      if (tenure === undefined) return;
      this.tenures.delete(runId);
      fail(tenure.span, toErrorInfo(error), this.now());
      tenure.span.end(this.now());
    });
  }

  /** This controller took the run over from `previousOwner` (null: its lease was free): a tenure of its own begins. */
  takenOver(state: RunState, previousOwner: string | null): void {
    this.guard(undefined, () => {
      this.release(state.run.id, 'lease-lost'); // a tenure left from an earlier stretch here
      this.begin(state.run, recordedContext(state), { [A.takenOverFrom]: previousOwner ?? '' });
    });
  }

  /** An event the shell performs: a node's opens, annotates or ends its span; the run's end ends the tenure. */
  observe(event: EngineEvent, workspace: RunWorkspace | undefined): void {
    this.guard(undefined, () => {
      if (workspace === undefined) return;
      const nodeId = event.nodeId;
      if (nodeId === undefined) {
        if (event.type === 'run:succeeded' || event.type === 'run:failed' || event.type === 'run:cancelled') this.runEnded(workspace.state, event);
        return;
      }
      const tenure = this.tenure(workspace.state);
      if (!tenure.recording) return;
      const span = this.nodeSpan(tenure, nodeId, workspace);
      if (span === undefined) return;
      span.addEvent(event.type, eventAttributes(event), this.now());
      const node = workspace.state.nodes[nodeId];
      if (node !== undefined && isTerminal(node.phase)) this.endNode(tenure, nodeId, span, node);
    });
  }

  /** The attempts with their node span's context to carry across the queue (the same array when there is none). */
  carry(attempts: TaskAttempt[], workspace: RunWorkspace | undefined): TaskAttempt[] {
    return this.guard(attempts, () => {
      if (workspace === undefined || attempts.length === 0) return attempts;
      const tenure = this.tenure(workspace.state);
      if (!tenure.recording) {
        const carrier = tenure.carrier;
        return carrier === undefined ? attempts : attempts.map((attempt) => ({ ...attempt, trace: carrier }));
      }
      return attempts.map((attempt) => {
        const span = this.nodeSpan(tenure, attempt.nodeId, workspace);
        const carrier = span === undefined ? undefined : inject(trace.setSpan(tenure.context, span));
        return carrier === undefined ? attempt : { ...attempt, trace: carrier };
      });
    });
  }

  /** The run is over here (its driver reported it terminal): whatever is still open ends with it. */
  finished(state: RunState): void {
    this.guard(undefined, () => {
      if (this.tenures.has(state.run.id)) this.runEnded(state, undefined);
    });
  }

  /** This controller stops driving the run while it runs on (`lease-lost`, or `controller-closed` for each at close). */
  release(runId: string, why: HandOver): void {
    this.guard(undefined, () => {
      const tenure = this.tenures.get(runId);
      if (tenure === undefined) return;
      this.tenures.delete(runId);
      const at = this.now();
      for (const span of tenure.open.values()) {
        span.setAttribute(A.handedOver, why);
        span.end(at);
      }
      tenure.span.setAttribute(A.handedOver, why);
      tenure.span.end(at);
    });
  }

  /** The controller closes: every tenure ends, handed over. */
  close(): void {
    for (const runId of [...this.tenures.keys()]) this.release(runId, 'controller-closed');
  }

  /**
   * Tracing never fails a run: whatever an SDK (a propagator, a span processor of the user's)
   * throws is reported once through the API's diagnostics and the shell goes on untraced there.
   */
  private guard<T>(fallback: T, traced: () => T): T {
    try {
      return traced();
    } catch (error) {
      if (!this.reported) diag.error('memoflow: tracing a run failed; its spans may be incomplete', error);
      this.reported = true;
      return fallback;
    }
  }

  /** Tenures open (runs this controller traces now): for tests. */
  get size(): number {
    return this.tenures.size;
  }

  private begin(run: Pick<RunRecord, 'id' | 'workflow' | 'project' | 'domain'>, parent: Context, extra: Attributes): Tenure {
    const startedAt = this.now();
    const span = trace.getTracer(TRACER_NAME).startSpan(
      `memoflow.run ${run.workflow}`,
      { startTime: startedAt, attributes: { [A.runId]: run.id, [A.workflow]: run.workflow, [A.project]: run.project, [A.domain]: run.domain, ...extra } },
      parent,
    );
    const spanContext = trace.setSpan(parent, span);
    const recording = span.isRecording();
    const tenure: Tenure = { span, context: spanContext, startedAt, recording, open: new Map(), ended: new Set(), carrier: recording ? undefined : inject(spanContext) };
    this.tenures.set(run.id, tenure);
    return tenure;
  }

  /** The run's tenure here, begun now if there is none (a run this controller continues without having taken it over). */
  private tenure(state: RunState): Tenure {
    return this.tenures.get(state.run.id) ?? this.begin(state.run, recordedContext(state), { [A.takenOverFrom]: '' });
  }

  private nodeSpan(tenure: Tenure, nodeId: string, workspace: RunWorkspace): Span | undefined {
    const open = tenure.open.get(nodeId);
    if (open !== undefined || tenure.ended.has(nodeId)) return open;
    const node = workspace.state.nodes[nodeId];
    if (node === undefined) return undefined;
    // A container's span opens first: its children's attempts may be dispatched before its own event is performed.
    const container = workspace.index.parentOf.get(nodeId);
    const containerSpan = container === undefined ? undefined : this.nodeSpan(tenure, container, workspace);
    const parent = containerSpan === undefined ? tenure.context : trace.setSpan(tenure.context, containerSpan);
    // A node started under an earlier tenure is this tenure's from when it took the run.
    const startTime = node.startedAt === null || node.startedAt < tenure.startedAt ? tenure.startedAt : node.startedAt;
    const run = workspace.state.run;
    const span = trace.getTracer(TRACER_NAME).startSpan(
      `memoflow.node ${nodeId}`,
      { startTime, attributes: { [A.runId]: run.id, [A.workflow]: run.workflow, [A.project]: run.project, [A.domain]: run.domain, [A.nodeId]: nodeId, [A.task]: node.task } },
      parent,
    );
    tenure.open.set(nodeId, span);
    return span;
  }

  private endNode(tenure: Tenure, nodeId: string, span: Span, node: NodeExecution): void {
    tenure.open.delete(nodeId);
    tenure.ended.add(nodeId);
    span.setAttributes(nodeAttributes(node));
    if (node.phase === 'failed') fail(span, node.error, this.now());
    span.end(this.now());
  }

  private runEnded(state: RunState, event: EngineEvent | undefined): void {
    const tenure = this.tenures.get(state.run.id);
    if (tenure === undefined) return;
    this.tenures.delete(state.run.id);
    const at = this.now();
    // Nodes left open (a run that failed or was cancelled around them) end with it, as they stand.
    for (const [nodeId, span] of tenure.open) {
      const node = state.nodes[nodeId];
      if (node !== undefined) span.setAttributes(nodeAttributes(node));
      span.end(at);
    }
    const status = event === undefined ? state.run.status : event.type.slice('run:'.length);
    tenure.span.setAttribute(A.runStatus, status);
    if (status === 'failed') fail(tenure.span, event?.error ?? state.run.error, at);
    tenure.span.end(at);
  }
}

/** The context recorded at submit (a run of an earlier release, or one submitted with no SDK, has none: a trace of its own). */
function recordedContext(state: RunState): Context {
  const carrier = traceCarrierOf(state.run.options.trace);
  return carrier === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, carrier);
}

function inject(from: Context): TraceCarrier | undefined {
  const carrier: TraceCarrier = {};
  propagation.inject(from, carrier);
  return Object.keys(carrier).length === 0 ? undefined : carrier;
}

function nodeAttributes(node: NodeExecution): Attributes {
  const attributes: Attributes = { [A.nodePhase]: node.phase, [A.attempt]: node.attempts };
  if (node.cacheKey !== null) {
    attributes[A.cacheKey] = node.cacheKey;
    attributes[A.cacheKeyShort] = shortKey(node.cacheKey);
  }
  if (node.cacheStatus !== null) attributes[A.cacheStatus] = node.cacheStatus;
  if (node.cacheReason !== null) attributes[A.cacheReason] = node.cacheReason;
  return attributes;
}

function eventAttributes(event: EngineEvent): Attributes {
  const attributes: Attributes = {};
  if (event.attempt !== undefined) attributes[A.attempt] = event.attempt;
  if (event.cacheStatus !== undefined && event.cacheStatus !== null) attributes[A.cacheStatus] = event.cacheStatus;
  if (event.message !== undefined) attributes['message'] = event.message;
  return attributes;
}

function fail(span: Span, error: ErrorInfo | null | undefined, at: Date): void {
  if (error === null || error === undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    return;
  }
  span.recordException({ name: error.name, message: error.message, ...(error.code === undefined ? {} : { code: error.code }), ...(error.stack === undefined ? {} : { stack: error.stack }) }, at);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}
