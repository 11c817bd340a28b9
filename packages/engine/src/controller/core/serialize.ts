import { reservationOwner } from '../../ports/cache-reservations.js';
import type { NodeSpec } from '../../spec/workflow-spec.js';
import type { CacheStatus } from '../../state/cache-status.js';
import { isTerminal, type NodePhase } from '../../state/node-phase.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { handlerFor } from '../handlers/registry.js';
import type { ReservationAsk } from '../vocabulary/commands.js';
import type { LookupOutcome, ReservationAnswer } from '../vocabulary/events.js';
import type { Draft } from './draft.js';

/*
 * `cache: { serialize: true }` (DESIGN.md "Cache controls"): a serialized node whose lookup missed
 * takes its key's reservation before it executes, so concurrent executions with one key run once.
 *
 *   looking-up ──miss──▶ (reserving) ──acquired──▶ look up again ──hit──▶ HIT (release)
 *        ▲                    │                          └──miss──▶ executes as any node (release when it ends)
 *        │                    └──held by another──▶ WAITING ──released / expired / poll──┐
 *        └───────────────────────────────────────────────────────────────────────────────┘
 *
 * The node stays `looking-up` throughout (nothing it does is lost by a crash: a controller taking
 * over looks it up again). The second lookup after acquiring closes the race where the owner wrote
 * its entry and released between this node's miss and its acquire. The owner is the node's first
 * attempt id; retries keep the reservation. A LOOKUP_FAILURE executes without a reservation: the
 * catalog is failing, and a run must not hang on it (the node still runs, as any LOOKUP_FAILURE).
 * Releases go out whenever a node that may hold a reservation ends (Draft.update), whatever ended
 * it: success (after the entry is written), failure, and cancel.
 */

/** Whether a node's key is serialized. */
export function isSerialized(spec: NodeSpec): boolean {
  return spec.cache?.enabled === true && spec.cache.serialize;
}

/**
 * Whether the node may hold its key's reservation: serialized, keyed and not served or skipped
 * without a lookup. An over-approximation on purpose: releasing or extending a reservation that is
 * not the owner's touches nothing, so a HIT served at the first lookup costing a no-op release is
 * cheaper than recording which nodes acquired.
 */
export function mayHoldReservation(spec: NodeSpec, node: NodeExecution): boolean {
  return isSerialized(spec) && node.cacheKey !== null && node.cacheStatus !== 'SKIPPED' && node.cacheStatus !== 'DISABLED' && node.phase !== 'pending' && node.phase !== 'aborted';
}

/** Phases in which a node that holds a reservation is executing (its heartbeat keeps it). */
const EXECUTING: readonly NodePhase[] = ['dispatched', 'expanded', 'writing'];

export function executingWithReservation(spec: NodeSpec, node: NodeExecution): boolean {
  return EXECUTING.includes(node.phase) && mayHoldReservation(spec, node);
}

/** The reservation a node asks for. */
export function reservationAsk(state: RunState, nodeId: string): ReservationAsk {
  const key = state.nodes[nodeId]?.cacheKey;
  if (key == null) throw new Error(`node '${nodeId}' has no cache key to reserve`);
  return { key, kind: 'output', owner: reservationOwner(state.run.id, nodeId), runId: state.run.id, nodeId };
}

/** Whether a node moving from `before` to `after` ends holding what may be a reservation (Draft.update releases it). */
export function endsReservation(spec: NodeSpec | undefined, before: NodeExecution, after: NodeExecution): boolean {
  return spec !== undefined && !isTerminal(before.phase) && isTerminal(after.phase) && mayHoldReservation(spec, after);
}

/**
 * The output lookup missed (`status`): a serialized node that does not hold its reservation yet
 * asks for it instead of executing. Returns true when it did (the caller stops there).
 */
export function reserveInsteadOfExecuting(draft: Draft, spec: NodeSpec, outcomes: readonly LookupOutcome[], status: CacheStatus, reason: string | null): boolean {
  if (!isSerialized(spec) || status === 'LOOKUP_FAILURE' || outcomes.some((o) => o.afterReservation === true)) return false;
  const node = draft.node(spec.id);
  // A WAITING node asking again stays WAITING until it is answered (no flapping status, no extra save).
  if (node.cacheStatus !== 'WAITING') draft.update(spec.id, { cacheStatus: status, cacheReason: reason });
  draft.reserve(spec.id);
  return true;
}

/** Acquire answers: the owner looks up once more, a waiter becomes WAITING, a failing catalog does not hold the node up. */
export function applyReservationAnswers(draft: Draft, answers: readonly ReservationAnswer[]): void {
  for (const answer of answers) {
    const node = draft.state.nodes[answer.nodeId];
    if (node?.phase !== 'looking-up' || node.cacheKey !== answer.key) continue; // stale (or a recovery's renewal)
    const spec = draft.spec(answer.nodeId);
    switch (answer.outcome) {
      case 'acquired':
        lookUp(draft, spec, true);
        break;
      case 'failure':
        draft.emit('node:waiting', spec.id, { message: `reserving its key failed, executing without a reservation: ${answer.reason}` }, 'warn');
        lookUp(draft, spec, true);
        break;
      case 'held': {
        const { holder } = answer;
        if (node.cacheStatus === 'WAITING' && node.waitedFor?.runId === holder.runId && node.waitedFor.nodeId === holder.nodeId) break; // still the same wait
        const whose = holder.runId === draft.run.id ? `node '${holder.nodeId}' of this run` : `run ${holder.runId} node '${holder.nodeId}'`;
        draft.update(spec.id, { cacheStatus: 'WAITING', cacheReason: `reservation held by ${whose}`, waitedFor: { runId: holder.runId, nodeId: holder.nodeId } });
        draft.emit('node:waiting', spec.id, { message: `${whose} holds the reservation on this key (until ${holder.expiresAt.toISOString()}); waiting for its result` });
        break;
      }
    }
  }
}

/** A reservation a WAITING node waits on may be free: look up again (a HIT ends it; a miss asks for the reservation again). */
export function applyReservationReleased(draft: Draft, nodeId: string, key: string): void {
  const node = draft.state.nodes[nodeId];
  if (node?.phase !== 'looking-up' || node.cacheStatus !== 'WAITING' || node.cacheKey !== key) return;
  lookUp(draft, draft.spec(nodeId), false);
}

/** Why a node that waited executes after all: its owner failed, or its reservation expired. */
export function takeoverReason(node: NodeExecution, reason: string | null): string | null {
  if (node.waitedFor == null) return reason;
  const took = `took over the reservation from run ${node.waitedFor.runId} node '${node.waitedFor.nodeId}' (it ended without an entry, or expired)`;
  return reason === null ? took : `${reason}; ${took}`;
}

function lookUp(draft: Draft, spec: NodeSpec, afterReservation: boolean): void {
  for (const kind of handlerFor(spec).lookups) draft.lookup(spec.id, kind, afterReservation);
}

/**
 * The cancel hook: releases every reservation the run's unfinished nodes may hold. A cancel that
 * moves nodes to a terminal phase through Draft.update needs nothing more (update releases them);
 * one that ends the run without touching its nodes calls this in the same decision.
 */
export function releaseUnfinishedReservations(draft: Draft): void {
  for (const node of Object.values(draft.state.nodes)) {
    if (isTerminal(node.phase)) continue;
    const spec = draft.index.byId.get(node.nodeId);
    if (spec !== undefined && mayHoldReservation(spec, node)) draft.release(node.nodeId);
  }
}
