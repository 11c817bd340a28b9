import { computeCacheKey } from '../../cache/cache-key.js';
import { decodeValueHash } from '../../cache/value-hash.js';
import type { EngineErrorCode, ErrorInfo } from '../../errors.js';
import type { Json, NodeValue } from '../../json.js';
import type { AttemptResult } from '../../ports/task-dispatcher.js';
import type { NodeSpec } from '../../spec/workflow-spec.js';
import type { CacheStatus } from '../../state/cache-status.js';
import { hasOutput, mayDispatchAttempt, transition } from '../../state/node-phase.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { storableError, storageProblem, stringProblem } from '../../storable.js';
import { handlerFor } from '../handlers/registry.js';
import type { Command } from '../vocabulary/commands.js';
import type { CacheWrite, LookupOutcome, RunEvent } from '../vocabulary/events.js';
import { cancelRequestOf } from '../../state/cancel-request.js';
import { isExpired } from './cache-expiry.js';
import { cancelRun } from './cancel.js';
import { entryProblem, lostWritesMessage, scheduleWriteRetry, writeRetryDelayMs } from './cache-write-checks.js';
import { applyShadowLookup } from './cutoff.js';
import { memoizedDependencies } from './dependencies.js';
import { Draft, workspaceOf, type RunWorkspace } from './draft.js';
import { directChildren } from './expand.js';
import { resolveBinding } from './resolve-binding.js';
import { recordInputBinding } from './input-sources.js';
import { skipReason, uncachedStatus } from './start-status.js';
import { recover, reusableEntry } from './reuse.js';
import { applyReservationAnswers, applyReservationReleased, reserveInsteadOfExecuting, takeoverReason } from './serialize.js';

export interface Decision {
  /** The next state; `state.run.version` is still the loaded one (the store bumps it on save). */
  state: RunState;
  commands: Command[];
  /** Node ids whose execution record changed (or was created): what the save writes. */
  changedNodes: string[];
  /**
   * Each changed node's record as it was before this decision (undefined: the decision created
   * it), so the save can send only what changed even though `decideInPlace` replaced the record.
   */
  previous: ReadonlyMap<string, NodeExecution | undefined>;
  /**
   * Whether anything (run or nodes) changed and must be saved before the commands run (the shell
   * may dispatch beside the save when any re-decision would dispatch the same: run-driver.ts).
   */
  changed: boolean;
  /**
   * Attempt ids of results that came before the state recorded their dispatch (`earlyResult`):
   * left unapplied, and the shell must not acknowledge them, so the transport hands them over
   * again once the dispatch is recorded.
   */
  early: readonly string[];
}

/**
 * The controller's decision function: applies events to a run's state, advances every node that
 * became ready, and returns the effects to perform. Pure: no I/O, time comes from `now`, and
 * `state` is left as it was. The shell saves the returned state before it acts (but for dispatches
 * any re-decision repeats exactly, which go out beside the save), so a crash between the two
 * repeats work safely (see `recoverCommands`, and `Decision.early` for a result that outran its save).
 *
 * Costs O(nodes) to copy the state and derive its index; a controller holding a run across rounds
 * uses `decideInPlace` on its workspace instead, which costs O(what the events changed).
 *
 * Node kinds are handlers (handlers/registry.ts): the core starts nodes (inputs, key, cascade),
 * applies lookups, attempt results and cache writes, and settles the run; each kind decides what
 * executing it means, what a finished attempt does, and how its children settle it.
 */
export function decide(state: RunState, events: readonly RunEvent[], now: Date): Decision {
  return decideInPlace(workspaceOf({ run: state.run, nodes: { ...state.nodes } }), events, now);
}

/**
 * `decide` on a workspace the caller owns: changes it in place (the returned `state` is the
 * workspace's) and touches only the nodes the events reach and what they make ready. If this
 * throws, the workspace is half-changed and must be dropped.
 */
export function decideInPlace(workspace: RunWorkspace, events: readonly RunEvent[], now: Date): Decision {
  const draft = new Draft(workspace, now);
  if (draft.run.status === 'running') {
    // A cancel goes first, whether the loaded run carries its request or an event brings it; it
    // ends the run, so the round's other events (results among them) are dropped unapplied.
    const request = cancelRequestOf(draft.run);
    const cancel = events.find((event) => event.type === 'run:cancel');
    if (request !== null) cancelRun(draft, request);
    else if (cancel !== undefined) applyEvent(draft, cancel);
    else for (const event of events) applyEvent(draft, event);
  }
  advance(draft);
  applyEarlyOfThisRound(draft);
  const changedNodes = [...draft.changed];
  return { state: workspace.state, commands: draft.commands(), changedNodes, previous: draft.previous, changed: draft.runChanged || changedNodes.length > 0, early: draft.early.map((result) => result.attemptId) };
}

/** How each event applies: a mapped type, so a new event does not compile until it is handled here. */
const APPLY: { readonly [K in RunEvent['type']]: (draft: Draft, event: Extract<RunEvent, { type: K }>) => void } = {
  'run:tick': () => undefined,
  'run:cancel': (draft, event) => cancelRun(draft, event.error),
  'cache:looked-up': (draft, event) => applyLookups(draft, event.results),
  'attempt:finished': (draft, event) => applyAttempt(draft, event.result),
  'cache:written': (draft, event) => {
    for (const write of event.writes) applyWritten(draft, write, event.ok ? null : event.reason);
  },
  'reservation:answered': (draft, event) => applyReservationAnswers(draft, event.answers),
  'reservation:released': (draft, event) => applyReservationReleased(draft, event.nodeId, event.key),
};

function applyEvent(draft: Draft, event: RunEvent): void {
  (APPLY[event.type] as (draft: Draft, event: RunEvent) => void)(draft, event);
}

/**
 * Moves every node the index names as a candidate: pending nodes whose upstream settled start (or
 * abort), containers whose children are all done settle; until nothing is left to move. Pending
 * nodes go in run order (upstream first), containers innermost first, so a nested container's
 * output is there for its parent. Then due cache-write retries, then the run's end.
 */
function advance(draft: Draft): void {
  while (draft.run.status === 'running') {
    const candidates = draft.index.takeCandidates();
    if (candidates.length === 0) break;
    // Sorted by what they were when taken: a node that expands while starting is not yet settled.
    const pending = candidates.filter((id) => draft.state.nodes[id]?.phase === 'pending');
    const settled = candidates.filter((id) => draft.state.nodes[id]?.phase === 'expanded').reverse();
    for (const id of pending) {
      if (draft.state.nodes[id]?.phase === 'pending') startIfReady(draft, draft.spec(id));
    }
    for (const id of settled) {
      if (draft.state.nodes[id]?.phase !== 'expanded') continue;
      const spec = draft.spec(id);
      handlerFor(spec).childrenSettled(draft, spec, directChildren(id, draft.state).map((child) => draft.node(child)));
    }
  }
  if (draft.run.status === 'running') retryDueWrites(draft);
  finishRunIfDone(draft);
}

// --- starting a node ---------------------------------------------------------------------------

function startIfReady(draft: Draft, spec: NodeSpec): void {
  const upstream = memoizedDependencies(spec).map((id) => draft.node(id));
  if (upstream.some((u) => u.phase === 'failed' || u.phase === 'aborted' || u.phase === 'cancelled')) {
    draft.update(spec.id, { phase: 'aborted', finishedAt: draft.now });
    draft.emit('node:aborted', spec.id, { message: 'an upstream node failed' }, 'warn');
    return;
  }
  if (upstream.every((u) => hasOutput(u.phase))) start(draft, spec);
}

/** Resolves the node's inputs and key, then looks it up, or executes it (caching off, or a skip). */
function start(draft: Draft, spec: NodeSpec): void {
  const inputs: { [name: string]: NodeValue } = {};
  for (const [name, binding] of Object.entries(spec.inputs)) {
    // An optional workflow input the run left out leaves the task's input out too (not null):
    // the task sees it unset and the key does not contain it.
    if (binding.kind === 'input' && binding.path === undefined && !Object.hasOwn(draft.run.inputs, binding.name)) continue;
    // The binding goes with the value: the run store keeps it instead of a copy of other nodes' outputs.
    inputs[name] = recordInputBinding(resolveBinding(binding, draft.state), binding);
  }
  const base = { inputs, startedAt: draft.now };
  const skip = skipReason(draft, spec);
  const handler = handlerFor(spec);
  const cache = spec.cache !== null && spec.cache.enabled ? spec.cache : null;
  const cached = cache !== null;
  const { key, parts } = cache !== null ? computeCacheKey({ project: draft.run.project, domain: draft.run.domain, task: spec.task, signature: spec.signature, cache, inputs }) : { key: null, parts: null };
  const keyed = { ...base, cacheKey: key, cacheKeyParts: parts };
  // Resume and retry: reuse the earlier run's result if nothing it depends on reran or changed.
  const reusable = skip === null || skip.reason === 'overwrite' ? reusableEntry(draft.run, spec, inputs) : undefined;
  if (reusable !== undefined) {
    recover(draft, spec, reusable, keyed);
    return;
  }
  if (!cached) {
    draft.update(spec.id, { ...base, ...uncachedStatus(spec, skip), cacheKey: null, cacheKeyParts: null });
    handler.execute(draft, spec, skip?.detail);
    return;
  }
  if (skip !== null) {
    draft.update(spec.id, { ...keyed, cacheStatus: 'SKIPPED', cacheReason: skip.reason });
    // The early-cutoff report: would its own key have hit? Asked now, before its write replaces the entry (core/cutoff.ts).
    if (skip.upstream !== undefined) draft.shadowLookup(spec.id, skip.upstream);
    handler.execute(draft, spec, skip.detail);
    return;
  }
  draft.update(spec.id, { ...keyed, phase: transition(spec.id, 'pending', 'looking-up') });
  // Every kind the handler needs in the same round: a dynamic node's future may be there when
  // its output is not (a retry after a failed child).
  for (const kind of handler.lookups) draft.lookup(spec.id, kind);
}

// --- applying results --------------------------------------------------------------------------

/** Lookup results, node by node: a dynamic node's output and future arrive together. */
function applyLookups(draft: Draft, results: readonly LookupOutcome[]): void {
  const byNode = new Map<string, LookupOutcome[]>();
  for (const result of results) {
    // A shadow lookup's answer is only reported, whatever phase its node is in by now.
    if (result.shadow !== undefined) {
      if (draft.index.byId.has(result.nodeId)) applyShadowLookup(draft, draft.spec(result.nodeId), { ...result, shadow: result.shadow });
      continue;
    }
    const list = byNode.get(result.nodeId);
    if (list === undefined) byNode.set(result.nodeId, [result]);
    else list.push(result);
  }
  for (const [nodeId, outcomes] of byNode) {
    const node = draft.state.nodes[nodeId];
    const current = outcomes.filter((o) => o.key === node?.cacheKey);
    if (node?.phase !== 'looking-up' || current.length === 0) continue; // stale
    applyLookup(draft, draft.spec(nodeId), current);
  }
}

/**
 * The node's output entry: served if the catalog vouches for it (its checksum binds it to key and
 * kind) and it belongs to this node (its parts hash to its key, its value has the task's output
 * type, its hashes decode and fit the value) and has not expired; otherwise the handler is told
 * what was found (MISS, EVICTED, LOOKUP_FAILURE, a corrupt entry).
 */
function applyLookup(draft: Draft, spec: NodeSpec, outcomes: readonly LookupOutcome[]): void {
  const nodeId = spec.id;
  const output = outcomes.find((o) => o.kind === 'output');
  const ttlMs = spec.cache?.ttlMs ?? 0;
  let status: CacheStatus = 'MISS';
  let reason: string | null = null;
  switch (output?.outcome) {
    case 'hit': {
      const value = decodeValueHash(output.entry.value, output.entry.valueHash, spec.kind === 'task' ? 'task' : 'container');
      const problem = entryProblem(output, spec, draft.node(nodeId).cacheKeyParts) ?? ('corrupt' in value ? value.corrupt : undefined);
      if (problem !== undefined || 'corrupt' in value) {
        draft.emit('node:cache-corrupt', nodeId, { message: `catalog entry unusable, treated as a miss: ${String(problem)}`, cacheStatus: 'MISS' }, 'warn');
        reason = `corrupt entry: ${String(problem)}`;
        break;
      }
      if (!isExpired(output.entry.createdAt, ttlMs, draft.now)) {
        const savedMs = output.entry.durationMs;
        draft.update(nodeId, { phase: transition(nodeId, 'looking-up', 'succeeded'), cacheStatus: 'HIT', cacheReason: `from run ${output.entry.runId}`, output: value, finishedAt: draft.now, savedMs });
        draft.emit('node:cache-hit', nodeId, { savedMs });
        return;
      }
      status = 'EVICTED';
      reason = `entry expired (older than ${ttlMs} ms)`;
      break;
    }
    case 'corrupt':
      draft.emit('node:cache-corrupt', nodeId, { message: `catalog entry undecodable, treated as a miss: ${output.reason}`, cacheStatus: 'MISS' }, 'warn');
      reason = `corrupt entry: ${output.reason}`;
      break;
    case 'failure':
      status = 'LOOKUP_FAILURE';
      reason = output.reason;
      break;
    case 'miss':
    case undefined:
      break;
  }
  if (reserveInsteadOfExecuting(draft, spec, outcomes, status, reason)) return;
  if (output?.afterReservation === true) reason = takeoverReason(draft.node(nodeId), reason);
  handlerFor(spec).missed(draft, spec, outcomes, { status, reason });
}

function applyAttempt(draft: Draft, delivered: AttemptResult): void {
  const node = draft.state.nodes[delivered.nodeId];
  if (earlyResult(draft, node, delivered)) {
    draft.early.push(delivered);
    return;
  }
  if (node?.phase !== 'dispatched' || node.attempts !== delivered.attempt) return; // stale or duplicate delivery
  const spec = draft.spec(delivered.nodeId);
  handlerFor(spec).attemptFinished(draft, spec, storableResult(delivered, spec));
}

/**
 * Early results whose dispatch this decision made (a batch holding both a result and the result of
 * the attempt it leads to, in either order) are applied now, as often as that makes progress.
 */
function applyEarlyOfThisRound(draft: Draft): void {
  while (draft.early.length > 0 && draft.run.status === 'running') {
    const waiting = draft.early.splice(0);
    for (const result of waiting) applyAttempt(draft, result);
    if (draft.early.length === waiting.length) return; // none of them was dispatched
    advance(draft);
  }
}

/**
 * A result of an attempt this state has not dispatched yet for its node, which has no output yet
 * and may still get there (an attempt number above its current one, within its retries). A
 * controller dispatches a round's attempts while that round's save is in flight (run-driver.ts),
 * so when the save does not land (a lost race, a failed save, a crash) the attempt runs before any
 * stored state records it, and its result can reach the next decider before the result that leads
 * to its dispatch. Dropping it would leave the node waiting forever (its re-dispatch finds the
 * attempt finished); it is kept for later instead. Attempt ids are deterministic and an early
 * dispatch only goes out with inputs any re-decision derives the same way, so the result is the
 * one the re-decided dispatch would get. (A node the state does not hold is never early: an
 * attempt goes out beside a save only for a node the store holds.)
 */
function earlyResult(draft: Draft, node: NodeExecution | undefined, delivered: AttemptResult): boolean {
  if (node === undefined) return false;
  const most = 1 + (draft.index.byId.get(node.nodeId)?.retries ?? 0);
  return mayDispatchAttempt(node.phase) && delivered.attempt > node.attempts && delivered.attempt <= most;
}

function applyWritten(draft: Draft, write: CacheWrite, failure: string | null): void {
  const node = draft.state.nodes[write.nodeId];
  if (node === undefined) return;
  if (write.kind === 'future') {
    // The future only saves a later retry the body; losing it costs nothing now.
    draft.emit('node:cache-written', write.nodeId, { message: failure === null ? 'future stored' : `storing the future failed: ${failure}` }, failure === null ? 'info' : 'warn');
    return;
  }
  if (node.phase !== 'writing') return;
  const retry = node.cacheWriteRetry ?? null;
  if (failure !== null) {
    // A retry is already scheduled: this is a repeated report of a put already counted.
    if (retry !== null && retry.retryAtMs !== null) return;
    const failures = (retry?.failures ?? 0) + 1;
    if (retry === null || !retry.final) {
      // Not lost yet: the node keeps its status and stays `writing` (its output is known, so
      // downstream nodes are not held up); `retryDueWrites` puts it again when it is due.
      const delay = writeRetryDelayMs(failures);
      draft.update(write.nodeId, { cacheWriteRetry: scheduleWriteRetry(failures, failure, draft.now.getTime() + delay) });
      draft.emit('node:cache-written', write.nodeId, { message: `cache write failed (attempt ${failures}), retrying in ${delay} ms: ${failure}` }, 'warn');
      return;
    }
    const cacheReason = `cache write lost after ${failures} attempt(s): ${failure}`;
    draft.update(write.nodeId, { phase: transition(write.nodeId, node.phase, 'succeeded'), cacheStatus: 'PUT_FAILURE', cacheReason, cacheWriteRetry: null });
    draft.emit('node:cache-written', write.nodeId, { message: cacheReason }, 'warn');
    return;
  }
  const cacheStatus = node.cacheStatus === 'MISS' || node.cacheStatus === 'EVICTED' ? 'POPULATED' : node.cacheStatus;
  draft.update(write.nodeId, { phase: transition(write.nodeId, node.phase, 'succeeded'), cacheStatus, cacheWriteRetry: null });
  draft.emit('node:cache-written', write.nodeId, retry === null ? {} : { message: `cache write landed after ${retry.failures} failed attempt(s)` });
}

/** The last put of a failed write waits at most this long once nothing else is left in the run. */
const FINAL_WRITE_WAIT_MS = 2000;

/**
 * Puts again every failed write that is due. Once nothing but such writes is left in the run,
 * each gets one last put (at its scheduled time, but no later than FINAL_WRITE_WAIT_MS from now)
 * so the run does not wait out a long backoff before it finishes.
 */
function retryDueWrites(draft: Draft): void {
  if (draft.index.scheduledWrites.size === 0) return;
  const otherwiseDone = draft.index.onlyScheduledWritesLeft();
  const now = draft.now.getTime();
  for (const nodeId of draft.index.scheduledWritesInRunOrder()) {
    const retry = draft.node(nodeId).cacheWriteRetry;
    if (retry == null || retry.retryAtMs === null) continue;
    let next = retry;
    if (otherwiseDone && !retry.final) next = { ...retry, final: true, retryAtMs: Math.min(retry.retryAtMs, now + FINAL_WRITE_WAIT_MS) };
    if (next.retryAtMs !== null && next.retryAtMs <= now) {
      next = { ...next, retryAtMs: null };
      draft.write(nodeId, 'output');
    }
    if (next !== retry) draft.update(nodeId, { cacheWriteRetry: next });
  }
}

// --- the run -----------------------------------------------------------------------------------

function finishRunIfDone(draft: Draft): void {
  if (draft.run.status !== 'running' || draft.index.nonTerminal > 0) return;
  // Report the first failed top-level node (a failed child also fails its container).
  const failed = draft.run.spec.nodes.map((spec) => draft.node(spec.id)).find((node) => node.phase === 'failed');
  if (failed !== undefined) {
    const cause = failed.error;
    const error: ErrorInfo = {
      name: 'RunFailed',
      code: 'RUN_FAILED',
      message: `node '${failed.nodeId}' (${failed.task}) failed${cause === null ? '' : `: ${cause.message}`}`,
      retryable: false,
    };
    draft.run = { ...draft.run, status: 'failed', error, finishedAt: draft.now, updatedAt: draft.now };
    draft.runChanged = true;
    draft.emitRun('run:failed', 'error', error);
    return;
  }
  const outputs: { [name: string]: Json } = {};
  for (const [name, binding] of Object.entries(draft.run.spec.outputs)) outputs[name] = resolveBinding(binding, draft.state).value;
  draft.run = { ...draft.run, status: 'succeeded', outputs, finishedAt: draft.now, updatedAt: draft.now };
  draft.runChanged = true;
  const lost = lostWritesMessage(Object.values(draft.state.nodes));
  draft.emitRun('run:succeeded', lost === undefined ? 'info' : 'warn', undefined, lost);
}

/**
 * A result as the run store can keep it: an output that no store could save (U+0000, a lone
 * surrogate, NaN, over the size limit) turns into a non-retryable failure naming where the bad value
 * is, and a failure's texts are repaired. Without this, every save of the run failed and its rounds
 * were retried forever (robustness issue, item 1).
 */
function storableResult(result: AttemptResult, spec: NodeSpec): AttemptResult {
  if (!result.ok) return { ...result, error: storableError(result.error) };
  const problem = storageProblem(result.output, 'output') ?? (result.outputHash === null ? null : stringProblem(result.outputHash) === null ? null : 'its hashWith hash is not a storable string');
  if (problem === null) return result;
  const { output: _output, outputHash: _hash, ...base } = result;
  const what = spec.kind === 'dynamic' ? `the dynamic '${spec.task}' compiled a sub-workflow` : `task '${spec.task}' returned an output`;
  return { ...base, ok: false, error: { name: 'OutputNotStorable', code: 'OUTPUT_NOT_STORABLE' satisfies EngineErrorCode, message: `${what} that cannot be stored: ${problem}`, retryable: false } };
}

export { attemptFor, cacheEntryFor, nextWakeAt, recoverCommands } from './effects-from-state.js';
