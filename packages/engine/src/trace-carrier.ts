/**
 * A trace context as it crosses a process boundary: the fields the global OpenTelemetry propagator
 * writes (`propagation.inject`; with the W3C one `traceparent` and `tracestate`). A run records its
 * own in its options (so whichever controller continues it stays in the run's trace) and every
 * attempt carries its node's (so a worker's attempt span joins it across the queue).
 */
export type TraceCarrier = { [field: string]: string };

/** Propagators write a few short headers; more, or longer, is not a trace context. */
const MAX_FIELDS = 8;
const MAX_VALUE_LENGTH = 1024;
const FIELD_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The carrier in `value`, or undefined when there is none or it is not one: a carrier comes from
 * job data or a stored run, which are data, so anything odd (not an object, too many fields, a
 * field name or value that no propagator writes) is ignored rather than failing the attempt or the
 * run. The propagator then validates the values themselves (a malformed `traceparent` is ignored
 * by it, and the attempt starts a trace of its own).
 */
export function traceCarrierOf(value: unknown): TraceCarrier | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_FIELDS) return undefined;
  for (const [field, text] of entries) {
    if (!FIELD_NAME.test(field) || typeof text !== 'string' || text.length > MAX_VALUE_LENGTH) return undefined;
  }
  // fromEntries defines own properties, so a field named `__proto__` stays a field.
  return Object.fromEntries(entries) as TraceCarrier;
}
