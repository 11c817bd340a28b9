import { decideInPlace } from '../controller/core/decide.js';
import { workspaceOf, type RunWorkspace } from '../controller/core/draft.js';
import type { CacheLookup, Command } from '../controller/vocabulary/commands.js';
import type { LookupOutcome, RunEvent } from '../controller/vocabulary/events.js';
import type { NodeSpec } from '../spec/workflow-spec.js';
import { validateSpec } from '../spec/validate-spec.js';
import type { CacheStatus } from '../state/cache-status.js';
import { newRunState } from '../state/new-run.js';
import { predictPending } from './pending-predictions.js';
import { planNodes } from './plan-nodes.js';
import { withSameKeyWriters } from './same-key-writers.js';
import { Knowledge } from './knowledge.js';
import type { PlanRequest, WorkflowPlan } from './workflow-plan.js';

/** The run id of the scratch run a plan decides on; it is never saved anywhere. */
export const PLAN_RUN_ID = 'plan';

/** The hash a content-hashed output not computed yet stands in with; no key computed from it is ever looked up (see Knowledge). */
export const UNKNOWN_HASH_PREFIX = 'not computed yet: ';

/** The first cache status a node got while planned, and why (a MISS is POPULATED by the end of the scratch run). */
export interface SeenStatus {
  status: CacheStatus;
  reason: string | null;
}

/**
 * The pure planner behind `memoflow plan` / `mf.plan` (DESIGN.md "Cache controls"): walks a scratch
 * run of the workflow with the controller's own decision function (`decideInPlace`), so keys,
 * binding resolution, TTL, the cascade, dynamic futures and serialized keys are decided by the code
 * that will decide the real run. It performs no I/O and is driven in steps:
 *
 *   const planner = new WorkflowPlanner(request);
 *   for (let batch = planner.next(); batch.length > 0; batch = planner.next()) planner.answer(await lookUp(batch));
 *   const plan = planner.plan();
 *
 * Each batch is one DAG level: every node whose upstream is decided, looked up together (output
 * and future keys; a caller makes one catalog query per kind). What the decision function asks for
 * besides lookups is answered here without effect: a dispatched task "finishes" with an output no
 * one knows yet (its value stands in as null, with a stand-in hash when its type is content-hashed),
 * writes "land", serialized keys are "acquired" (a plan does not contend). A node whose key would be
 * computed from such a stand-in is not looked up: it is UNKNOWN, and so is what waits on it. A
 * dynamic node whose body runs stays running: its children are not known before it runs.
 */
export class WorkflowPlanner {
  private readonly workspace: RunWorkspace;
  private readonly now: Date;
  private readonly overwriteCache: boolean;
  private awaiting: CacheLookup[] = [];
  private readonly seen = new Map<string, SeenStatus>();
  /** Entries found, by node id and kind, for the reasons. */
  private readonly found = new Map<string, LookupOutcome>();
  private readonly levelOf = new Map<string, number>();
  /** Nodes whose key is not knowable yet: not looked up. */
  private readonly unknownKeys = new Set<string>();
  private readonly batchKinds: number[] = [];
  private keysLookedUp = 0;

  constructor(request: PlanRequest) {
    const spec = validateSpec(request.spec);
    this.now = request.now;
    this.overwriteCache = request.overwriteCache ?? false;
    const state = newRunState({ id: PLAN_RUN_ID, spec, inputs: request.inputs, project: request.project, domain: request.domain, options: { overwriteCache: this.overwriteCache }, now: request.now });
    this.workspace = workspaceOf(state);
    this.settle([{ type: 'run:tick' }]);
  }

  /** The next batch of lookups (one DAG level), or none once the plan is complete. */
  next(): CacheLookup[] {
    const batch = this.awaiting;
    this.awaiting = [];
    if (batch.length > 0) {
      for (const lookup of batch) if (!this.levelOf.has(lookup.nodeId)) this.levelOf.set(lookup.nodeId, this.batchKinds.length);
      this.batchKinds.push(new Set(batch.map((l) => l.kind)).size);
      this.keysLookedUp += batch.length;
    }
    return batch;
  }

  /** The catalog's answers to the last batch. */
  answer(outcomes: readonly LookupOutcome[]): void {
    for (const outcome of outcomes) this.found.set(foundKey(outcome.nodeId, outcome.kind), outcome);
    this.settle([{ type: 'cache:looked-up', results: [...outcomes] }]);
  }

  plan(): WorkflowPlan {
    const state = this.workspace.state;
    const planned = planNodes({
      state,
      index: this.workspace.index,
      seen: this.seen,
      pending: predictPending(state, this.workspace.index, this.unknownKeys),
      unknownKeys: this.unknownKeys,
      levelOf: this.levelOf,
      entry: (nodeId, kind) => {
        const outcome = this.found.get(foundKey(nodeId, kind));
        return outcome?.outcome === 'hit' ? outcome.entry : undefined;
      },
      knowledge: new Knowledge(state, this.workspace.index),
    });
    const nodes = withSameKeyWriters(planned, (id) => this.workspace.index.byId.get(id));
    const counts = { HIT: 0, MISS: 0, EVICTED: 0, SKIPPED: 0, DISABLED: 0, FUTURE_HIT: 0, UNKNOWN: 0 };
    for (const node of nodes) counts[node.prediction] += 1;
    return {
      workflow: state.run.workflow,
      project: state.run.project,
      domain: state.run.domain,
      overwriteCache: this.overwriteCache,
      plannedAt: this.now,
      nodes,
      counts,
      lookups: { batches: this.batchKinds.length, queries: this.batchKinds.reduce((a, b) => a + b, 0), keys: this.keysLookedUp },
    };
  }

  /** Decides until only lookups are left to wait for, answering every other command without effect. */
  private settle(initial: RunEvent[]): void {
    let events = initial;
    while (events.length > 0) {
      const decision = decideInPlace(this.workspace, events, this.now);
      for (const id of decision.changedNodes) this.noteStatus(id);
      events = this.answerCommands(decision.commands);
    }
  }

  private noteStatus(nodeId: string): void {
    const node = this.workspace.state.nodes[nodeId];
    if (node === undefined || node.cacheStatus === null) return;
    const earlier = this.seen.get(nodeId);
    // The statuses a node can first get here; WAITING and LOOKUP_FAILURE cannot happen in a plan,
    // POPULATED and PUT_FAILURE come after a status already seen. But a serialized node is MISS
    // while it takes its reservation, and what it finds holding it (a dynamic node's future: a
    // FUTURE_HIT) is the status the run reports.
    const resolvedAfterReservation = earlier?.status === 'MISS' && (node.cacheStatus === 'FUTURE_HIT' || node.cacheStatus === 'HIT');
    if (earlier !== undefined && !resolvedAfterReservation) return;
    this.seen.set(nodeId, { status: node.cacheStatus, reason: node.cacheReason });
  }

  private answerCommands(commands: readonly Command[]): RunEvent[] {
    const events: RunEvent[] = [];
    const repeated: LookupOutcome[] = [];
    for (const command of commands) {
      switch (command.type) {
        case 'LookupCache': {
          const knowledge = this.knowledge();
          for (const lookup of command.lookups) {
            // A shadow lookup only feeds the early-cutoff report of a node the cascade runs anyway
            // (core/cutoff.ts): a plan neither makes it nor lets it touch the node's prediction.
            if (lookup.shadow !== undefined) continue;
            const earlier = this.found.get(foundKey(lookup.nodeId, lookup.kind));
            // A serialized node looks up again once it holds its reservation; nothing was written
            // in between, so the catalog would say what it said.
            if (lookup.afterReservation === true && earlier !== undefined) repeated.push({ ...earlier, afterReservation: true });
            else if (knowledge.keyKnown(lookup.nodeId)) this.awaiting.push(lookup);
            else this.unknownKeys.add(lookup.nodeId);
          }
          break;
        }
        case 'DispatchTask':
          for (const attempt of command.attempts) {
            const spec = this.spec(attempt.nodeId);
            // A dynamic body would compile children no one knows yet: it stays running.
            if (spec.kind !== 'task') continue;
            const at = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: this.now, finishedAt: this.now };
            events.push({ type: 'attempt:finished', result: { ...at, ok: true, output: null, outputHash: spec.signature.outputHashed ? `${UNKNOWN_HASH_PREFIX}${attempt.nodeId}` : null } });
          }
          break;
        case 'WriteCache':
          events.push({ type: 'cache:written', writes: command.writes, ok: true });
          break;
        case 'AcquireReservations':
          events.push({ type: 'reservation:answered', answers: command.requests.map((r) => ({ nodeId: r.nodeId, key: r.key, outcome: 'acquired' as const })) });
          break;
        case 'ReleaseReservations':
        case 'CancelAttempts':
        case 'EmitEvent':
          break;
      }
    }
    if (repeated.length > 0) events.push({ type: 'cache:looked-up', results: repeated });
    return events;
  }

  private knowledge(): Knowledge {
    return new Knowledge(this.workspace.state, this.workspace.index);
  }

  private spec(nodeId: string): NodeSpec {
    const spec = this.workspace.index.byId.get(nodeId);
    if (spec === undefined) throw new Error(`the planned run has no node '${nodeId}'`);
    return spec;
  }
}

function foundKey(nodeId: string, kind: string): string {
  return `${kind}\u0000${nodeId}`;
}

