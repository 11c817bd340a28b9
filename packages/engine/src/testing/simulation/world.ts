import { hashJson } from '../../cache/canonical-hash.js';
import type { Command, EngineEvent } from '../../controller/vocabulary/commands.js';
import { decideInPlace, recoverCommands } from '../../controller/core/decide.js';
import { workspaceOf, type RunWorkspace } from '../../controller/core/draft.js';
import { RunIndex } from '../../controller/core/run-index.js';
import type { LookupOutcome, RunEvent } from '../../controller/vocabulary/events.js';
import type { Json, NodeValue } from '../../json.js';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { CacheLookup } from '../../controller/vocabulary/commands.js';
import type { AttemptResult, TaskAttempt } from '../../ports/task-dispatcher.js';
import { validateSpec } from '../../spec/validate-spec.js';
import { newRunState } from '../../state/new-run.js';
import { nodeWrites } from '../../state/node-writes.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { compileDynamic, isDynamic, withRenamedFields, type RunPlan, type Scenario, type SimOutput } from './scenario.js';

/** A message in flight. Attempt results are durable (a queue keeps them until the controller has saved them); the rest lives in the controller's memory and dies with it. */
type Message = { kind: 'effect'; command: Command } | { kind: 'event'; event: RunEvent; durable: boolean };

/** One execution of a task body, as the simulated worker pool saw it. */
export interface Execution {
  runId: string;
  nodeId: string;
  attempt: number;
  attemptId: string;
  ok: boolean;
  key: string | null;
  output: SimOutput | null;
}

/** What a finished run left behind, for the invariants. */
export interface RunRecordOfSim {
  plan: RunPlan;
  state: RunState;
  steps: number;
  /** Decisions on events delivered after the run finished that changed something (must be none). */
  lateChanges: number;
}

export class SimulationFailure extends Error {}

const MAX_STEPS = 20_000;
const MAX_IDLE_TICKS = 50;

/**
 * The world a controller lives in, made deterministic: one run store and one catalog (the in-memory
 * adapters, which copy values in and out like the real ones), a transport whose messages are
 * delivered in an order the seed picks, sometimes twice, a worker pool that runs each attempt id
 * at most once (BullMQ's job ids), a controller that may crash between any two steps (losing what
 * it held in memory, then recovering from the store with `recoverCommands`), and catalog calls
 * that fail at the given rates. The controller is `decideInPlace` on a workspace it keeps across
 * steps (as the run driver does; dropped on a crash, loaded again from the store), saving every
 * changed node before acting. After every decision the kept index must equal one derived from
 * scratch, and the kept state the store's.
 */
export class World {
  readonly catalog = new InMemoryCacheCatalog({ clock: { now: () => this.now() } });
  readonly store = new InMemoryRunStore();
  readonly executions: Execution[] = [];
  readonly runs: RunRecordOfSim[] = [];
  readonly events: EngineEvent[] = [];
  /** Per task: how many times its hidden state has changed. */
  readonly epochs = new Map<string, number>();
  private readonly executed = new Set<string>();
  private pending: Message[] = [];
  private clock = Date.parse('2026-01-01T00:00:00.000Z');
  private random: () => number;
  /** The controller's in-memory copy of the run being simulated (undefined after a crash). */
  private workspace: RunWorkspace | undefined;

  constructor(private readonly scenario: Scenario) {
    this.random = mulberry32(scenario.seed);
  }

  now(): Date {
    return new Date(this.clock);
  }

  async run(): Promise<void> {
    for (const [index, plan] of this.scenario.runs.entries()) {
      for (const task of plan.bump) this.epochs.set(task, (this.epochs.get(task) ?? 0) + 1);
      this.runs.push(await this.runOne(`sim-r${index}`, plan));
    }
  }

  private async runOne(runId: string, plan: RunPlan): Promise<RunRecordOfSim> {
    const spec = validateSpec(plan.renameFields ? withRenamedFields(this.scenario.spec) : this.scenario.spec);
    const inputs: { [name: string]: NodeValue } = { x: { value: plan.inputs.x }, y: { value: plan.inputs.y } };
    await this.store.create(newRunState({ id: runId, spec, inputs, project: 'sim', domain: 'dev', options: { overwriteCache: plan.overwriteCache }, now: this.now() }));
    this.pending = [{ kind: 'event', event: { type: 'run:tick' }, durable: false }];
    let steps = 0;
    let idleTicks = 0;
    for (; ; steps++) {
      const state = await this.load(runId);
      if (state.run.status !== 'running' && this.pending.length === 0) break;
      if (steps > MAX_STEPS) throw new SimulationFailure(`run ${runId} did not finish within ${MAX_STEPS} steps (status ${state.run.status}, ${this.pending.length} messages in flight)`);
      this.clock += 1 + Math.floor(this.random() * 50);
      if (state.run.status === 'running' && this.chance(this.scenario.faults.crash)) {
        await this.crash(state);
        continue;
      }
      if (this.pending.length === 0) {
        // Nothing in flight but the run is not done: only a timer (a backoff, the stale-run
        // sweeper) can move it. Time passes and a tick arrives; many fruitless ticks in a row
        // mean a controller would sit on this run forever.
        if (++idleTicks > MAX_IDLE_TICKS) throw new SimulationFailure(`run ${runId} is stuck: running, nothing in flight after ${MAX_IDLE_TICKS} ticks (${describeNodes(state)})`);
        this.clock += 5_000;
        this.pending.push({ kind: 'event', event: { type: 'run:tick' }, durable: false });
        continue;
      }
      const index = Math.floor(this.random() * this.pending.length);
      const [message] = this.pending.splice(index, 1);
      if (message === undefined) continue;
      if (!(message.kind === 'event' && message.event.type === 'run:tick')) idleTicks = 0;
      await this.handle(state, message);
    }
    const state = await this.load(runId);
    if (this.workspace !== undefined) await this.checkKeptState(this.workspace);
    return { plan, state, steps, lateChanges: this.lateChanges };
  }

  private lateChanges = 0;

  private async handle(state: RunState, message: Message): Promise<void> {
    if (message.kind === 'event') {
      if (message.durable && this.chance(this.scenario.faults.duplicate)) this.pending.push({ ...message });
      const finished = state.run.status !== 'running'; // read first: a fresh workspace takes `state` over
      // The store is the truth; a controller's workspace of another run (or none) is loaded afresh.
      if (this.workspace?.state.run.id !== state.run.id) this.workspace = workspaceOf(state);
      const workspace = this.workspace;
      const expectedVersion = workspace.state.run.version;
      const decision = decideInPlace(workspace, [message.event], this.now());
      checkIndex(workspace);
      if (!decision.changed) {
        this.queueCommands(decision.commands);
        return;
      }
      if (finished) this.lateChanges += 1;
      const saved = await this.store.save({ run: decision.state.run, nodes: nodeWrites(decision.changedNodes, (id) => decision.previous.get(id), decision.state.nodes), expectedVersion });
      if (!saved) throw new SimulationFailure('a save lost a race with no other controller');
      workspace.state.run = { ...workspace.state.run, version: expectedVersion + 1 };
      this.queueCommands(decision.commands);
      return;
    }
    await this.perform(state, message.command);
  }

  private queueCommands(commands: readonly Command[]): void {
    for (const command of commands) {
      if (command.type === 'EmitEvent') this.events.push(command.event);
      else this.pending.push({ kind: 'effect', command });
    }
  }

  /** The controller dies: whatever it held in memory is gone; a new one recovers the run from the store. */
  private async crash(state: RunState): Promise<void> {
    // What the dying controller held must have been what the store holds (a divergence persists, so checking here and at the end finds it).
    if (this.workspace !== undefined) await this.checkKeptState(this.workspace);
    this.workspace = undefined;
    this.pending = this.pending.filter((m) => m.kind === 'event' && m.durable);
    this.queueCommands(recoverCommands(state));
    this.pending.push({ kind: 'event', event: { type: 'run:tick' }, durable: false });
  }

  private async perform(state: RunState, command: Command): Promise<void> {
    switch (command.type) {
      case 'EmitEvent':
        this.events.push(command.event);
        return;
      case 'LookupCache':
        this.pending.push({ kind: 'event', event: { type: 'cache:looked-up', results: await this.lookup(command.lookups) }, durable: false });
        return;
      case 'DispatchTask':
        for (const attempt of command.attempts) {
          if (this.executed.has(attempt.id)) continue; // the queue already has (or had) this job id
          this.executed.add(attempt.id);
          this.pending.push({ kind: 'event', event: { type: 'attempt:finished', result: this.execute(state, attempt) }, durable: true });
        }
        return;
      case 'WriteCache': {
        if (this.chance(this.scenario.faults.putFailure)) this.catalog.failNext('put');
        let event: RunEvent;
        try {
          await this.catalog.put(command.entries);
          event = { type: 'cache:written', writes: command.writes, ok: true };
        } catch (error) {
          event = { type: 'cache:written', writes: command.writes, ok: false, reason: error instanceof Error ? error.message : String(error) };
        }
        this.pending.push({ kind: 'event', event, durable: false });
        return;
      }
      case 'CancelAttempts':
        return; // the simulation cancels no runs
      case 'AcquireReservations': {
        // The generated scenarios have no serialized tasks; this goes through the catalog so one that
        // adds them gets the real semantics (a held key is not watched here: it would have to model releases).
        const outcomes = await this.catalog.acquireReservations(command.requests.map((r) => ({ ...r, ttlMs: 30_000 })));
        const answers = outcomes.map((o, i) => (o.outcome === 'acquired' ? { nodeId: command.requests[i]?.nodeId ?? '', key: o.key, outcome: 'acquired' as const } : { nodeId: command.requests[i]?.nodeId ?? '', key: o.key, outcome: 'held' as const, holder: o.holder }));
        this.pending.push({ kind: 'event', event: { type: 'reservation:answered', answers }, durable: false });
        return;
      }
      case 'ReleaseReservations':
        await this.catalog.releaseReservations(command.releases);
        return;
    }
  }

  private async lookup(lookups: readonly CacheLookup[]): Promise<LookupOutcome[]> {
    const outcomes: LookupOutcome[] = [];
    for (const kind of new Set(lookups.map((l) => l.kind))) {
      const wanted = lookups.filter((l) => l.kind === kind);
      if (this.chance(this.scenario.faults.lookupFailure)) this.catalog.failNext('lookup');
      try {
        const found = await this.catalog.lookup(kind, wanted.map((l) => l.key));
        for (const { nodeId, key, shadow } of wanted) {
          const base = { nodeId, key, kind, ...(shadow === undefined ? {} : { shadow }) };
          const entry = found.hits.get(key);
          const corrupt = found.corrupt.get(key);
          if (entry !== undefined) outcomes.push({ ...base, outcome: 'hit', entry });
          else if (corrupt !== undefined) outcomes.push({ ...base, outcome: 'corrupt', reason: corrupt });
          else outcomes.push({ ...base, outcome: 'miss' });
        }
      } catch (error) {
        for (const { nodeId, key, shadow } of wanted) outcomes.push({ nodeId, key, kind, ...(shadow === undefined ? {} : { shadow }), outcome: 'failure', reason: String(error) });
      }
    }
    return outcomes;
  }

  /** The simulated task body: a pure function of the inputs it reads and its hidden state; it may fail. */
  private execute(state: RunState, attempt: TaskAttempt): AttemptResult {
    const behaviour = this.scenario.tasks[attempt.task];
    const base = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: this.now(), finishedAt: this.now() };
    const record = (ok: boolean, output: SimOutput | null) =>
      this.executions.push({ runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, attemptId: attempt.id, ok, key: state.nodes[attempt.nodeId]?.cacheKey ?? null, output });
    if (behaviour === undefined) throw new SimulationFailure(`dispatched unknown task ${attempt.task}`);
    if (this.chance(this.scenario.faults.taskFailure)) {
      record(false, null);
      const retryable = this.random() < 0.7;
      return { ...base, ok: false, error: { name: 'SimError', code: 'TASK_FAILED', message: `simulated failure of ${attempt.id}`, retryable } };
    }
    if (state.nodes[attempt.nodeId] !== undefined && isDynamic(attempt.task)) {
      const compiled = compileDynamic(attempt.task, attempt.inputs, this.scenario.tasks) as unknown as Json;
      record(true, null);
      return { ...base, ok: true, output: compiled, outputHash: null };
    }
    const output = simulatedOutput(attempt.task, attempt.inputs, behaviour.ignoresA, this.epochs.get(attempt.task) ?? 0);
    record(true, output);
    return { ...base, ok: true, output, outputHash: behaviour.hashed ? hashJson(output) : null };
  }

  /** The workspace a controller keeps must be what the store holds, node for node. */
  private async checkKeptState(workspace: RunWorkspace): Promise<void> {
    const stored = await this.load(workspace.state.run.id);
    // The store leaves out a null `cacheWriteRetry` (no retry) and the other optional fields that
    // are null (`NULLABLE`); both mean the same. A record's own
    // fields are compared in name order: a store gives them in its order, a decision in the order
    // they were first set (values inside them keep theirs: their key order is the user's).
    const record = (node: NodeExecution | undefined) => (node === undefined ? node : Object.fromEntries(Object.entries(node).sort(([a], [b]) => (a < b ? -1 : 1))));
    const describe = (state: RunState) =>
      JSON.stringify({ run: state.run, nodes: Object.keys(state.nodes).sort().map((id) => record(state.nodes[id])) }, (key, value: unknown) => (NULLABLE.has(key) && value === null ? undefined : value));
    if (describe(stored) !== describe(workspace.state)) throw new SimulationFailure(`the controller's kept state of run ${stored.run.id} differs from the store's:\nkept   ${describe(workspace.state)}\nstored ${describe(stored)}`);
  }

  private async load(runId: string): Promise<RunState> {
    const state = await this.store.load(runId);
    if (state === undefined) throw new SimulationFailure(`run ${runId} vanished from the store`);
    return state;
  }

  private chance(perMille: number): boolean {
    return perMille > 0 && this.random() * 1000 < perMille;
  }
}

/** NodeExecution's optional fields, which a store gives back absent when they are null. */
const NULLABLE = new Set(['cacheWriteRetry', 'waitedFor', 'computeMs', 'savedMs', 'cutoffHint']);

/** The index a workspace kept across decisions must equal one derived from its state from scratch. */
function checkIndex(workspace: RunWorkspace): void {
  const kept = JSON.stringify(workspace.index.snapshot());
  const fresh = JSON.stringify(RunIndex.build(workspace.state).snapshot());
  if (kept !== fresh) throw new SimulationFailure(`the run index kept across decisions differs from a fresh build:\nkept  ${kept}\nfresh ${fresh}`);
}

/** What a task computes: the digest of the inputs it reads (not `a` when it ignores `a`) and its hidden state. */
export function simulatedOutput(task: string, inputs: { readonly [name: string]: Json }, ignoresA: boolean, epoch: number): SimOutput {
  const read: { [name: string]: Json } = {};
  for (const [name, value] of Object.entries(inputs)) if (!(ignoresA && name === 'a')) read[name] = value;
  return { t: task, d: hashJson(read), e: epoch };
}

function describeNodes(state: RunState): string {
  return Object.values(state.nodes)
    .map((n) => `${n.nodeId}:${n.phase}`)
    .join(' ');
}

/** A small seeded PRNG (mulberry32): the world's choices are a pure function of the scenario's seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

