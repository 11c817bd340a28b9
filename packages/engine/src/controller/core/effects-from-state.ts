import { signatureDigest } from '../../cache/cache-key.js';
import { encodeValueHash } from '../../cache/value-hash.js';
import type { Json } from '../../json.js';
import type { CacheEntryKind, NewCacheEntry } from '../../ports/cache-catalog.js';
import { attemptId, type TaskAttempt } from '../../ports/task-dispatcher.js';
import type { NodeSpec } from '../../spec/workflow-spec.js';
import { cancelRequestOf } from '../../state/cancel-request.js';
import type { RunState } from '../../state/run-state.js';
import { handlerFor } from '../handlers/registry.js';
import type { CacheLookup, Command, ReservationAsk } from '../vocabulary/commands.js';
import type { CacheWrite } from '../vocabulary/events.js';
import { entryDurationMs } from './compute.js';
import { runNodes } from './expand.js';
import { compactFuture } from './future.js';
import type { RunIndex } from './run-index.js';
import { executingWithReservation, reservationAsk } from './serialize.js';

/*
 * Effects derived from saved state alone, so a controller that loads a run can repeat them: the
 * entry a write puts, the attempt a dispatched node runs, what a recovering controller repeats, and
 * when the run next needs a decision without an event.
 */

/** The entry a node's result (or a dynamic node's future) is written as; derived from saved state so a recovering controller can repeat it. */
export function cacheEntryFor(state: RunState, nodeId: string, kind: CacheEntryKind = 'output'): NewCacheEntry {
  const node = state.nodes[nodeId];
  const value: Json | undefined = kind === 'future' ? (node?.subWorkflow == null ? undefined : compactFuture(node.subWorkflow)) : node?.output?.value;
  if (node?.cacheKey == null || node.cacheKeyParts === null || value === undefined) {
    throw new Error(`node '${nodeId}' has no cache key or ${kind} to write`);
  }
  return {
    key: node.cacheKey,
    kind,
    project: state.run.project,
    domain: state.run.domain,
    task: node.task,
    parts: node.cacheKeyParts,
    value,
    valueHash: kind === 'output' && node.output != null ? encodeValueHash(node.output, node.subWorkflow == null ? 'task' : 'container') : null,
    runId: state.run.id,
    nodeId,
    durationMs: entryDurationMs(state, nodeId, kind),
  };
}

/** The task attempt a dispatched node's saved state describes (its current attempt number). */
export function attemptFor(state: RunState, spec: NodeSpec): TaskAttempt {
  const node = state.nodes[spec.id];
  if (node === undefined) throw new Error(`run ${state.run.id} has no node '${spec.id}'`);
  const inputs: { [name: string]: Json } = {};
  for (const [name, value] of Object.entries(node.inputs ?? {})) inputs[name] = value.value;
  const attempt: TaskAttempt = {
    id: attemptId(state.run.id, spec.id, node.attempts),
    runId: state.run.id,
    nodeId: spec.id,
    task: spec.task,
    attempt: node.attempts,
    inputs,
    timeoutMs: spec.timeoutMs,
    cacheKey: node.cacheKey,
    // What the node promises about the code: a worker whose task has another interface refuses it.
    signature: signatureDigest(spec.signature),
  };
  // The version only where a result is written under a key that contains it. An uncached node
  // writes nothing, and its derived version (the body's text) differs between loaders (tsx, tsc, a
  // bundler), so checking it would refuse the same code loaded two ways for no cache's sake.
  if (spec.taskVersion !== undefined && node.cacheKey !== null) attempt.taskVersion = spec.taskVersion;
  return attempt;
}

/**
 * The effects a controller taking over a run must repeat: lookups, attempts and writes that were
 * saved as started but may not have happened. Each is idempotent (attempt ids are deterministic,
 * writes are upserts), so repeating one that did happen is harmless. (A dynamic node's future
 * write is not repeated: losing it only costs a later retry the body.) A serialized node that is
 * executing asks for its reservation again (the same owner renews it, and the shell heartbeats it
 * from then on); one waiting or reserving is simply looked up again, which asks again on a miss.
 */
export function recoverCommands(state: RunState): Command[] {
  // A run with a cancel request repeats nothing: its next decision cancels what was in flight.
  if (state.run.status !== 'running' || cancelRequestOf(state.run) !== null) return [];
  const lookups: CacheLookup[] = [];
  const attempts: TaskAttempt[] = [];
  const writes: CacheWrite[] = [];
  const reservations: ReservationAsk[] = [];
  const { byId } = runNodes(state);
  for (const node of Object.values(state.nodes)) {
    const spec = byId.get(node.nodeId);
    if (spec === undefined) continue;
    if (executingWithReservation(spec, node)) reservations.push(reservationAsk(state, node.nodeId));
    switch (node.phase) {
      case 'looking-up':
        if (node.cacheKey !== null) {
          for (const kind of handlerFor(spec).lookups) lookups.push({ nodeId: node.nodeId, key: node.cacheKey, kind });
        }
        break;
      case 'dispatched':
        attempts.push(attemptFor(state, spec));
        break;
      case 'writing':
        // A write whose retry is scheduled is put when it is due (`nextWakeAt`, `retryDueWrites`).
        if (node.cacheWriteRetry?.retryAtMs == null) writes.push({ nodeId: node.nodeId, kind: 'output' });
        break;
      case 'pending':
      case 'expanded':
      case 'succeeded':
      case 'failed':
      case 'aborted':
      case 'cancelled':
        break;
    }
  }
  const commands: Command[] = [];
  if (lookups.length > 0) commands.push({ type: 'LookupCache', lookups });
  if (attempts.length > 0) commands.push({ type: 'DispatchTask', attempts });
  if (writes.length > 0) commands.push({ type: 'WriteCache', writes, entries: writes.map((w) => cacheEntryFor(state, w.nodeId, w.kind)) });
  if (reservations.length > 0) commands.push({ type: 'AcquireReservations', requests: reservations });
  return commands;
}

/**
 * When the run next needs a decision without any event arriving: the earliest scheduled retry of a
 * failed cache write (ms since the epoch), or null. The shell sets a timer for it and delivers
 * `run:tick`; `decide` itself only compares against `now`.
 */
export function nextWakeAt(state: RunState, index?: RunIndex): number | null {
  if (state.run.status !== 'running') return null;
  let earliest: number | null = null;
  // The index knows the scheduled writes; without one, every node is looked at.
  const candidates = index === undefined ? Object.values(state.nodes) : [...index.scheduledWrites].map((id) => state.nodes[id]);
  for (const node of candidates) {
    if (node === undefined) continue;
    const due = node.phase === 'writing' ? node.cacheWriteRetry?.retryAtMs : null;
    if (due != null && (earliest === null || due < earliest)) earliest = due;
  }
  return earliest;
}
