import type { Clock } from '../../ports/clock.js';
import type { RunStore } from '../../ports/run-store.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { nodeWrites } from '../../state/node-writes.js';
import { MemoflowError } from '../../errors.js';
import type { Command } from '../vocabulary/commands.js';
import { DecisionError, describeError, roundRetryDelayMs } from './round-errors.js';
import { sortRoundFailure, type Inbound } from './round-failure.js';
import { decideInPlace, nextWakeAt, recoverCommands } from '../core/decide.js';
import { dispatchAheadSafe, earlyError, mayGoAhead, Orphans, unsent } from './dispatch-ahead.js';
import { workspaceOf, type RunWorkspace } from '../core/draft.js';
import { RunEffects, type RunEffectsDeps } from './run-effects.js';
import { RunCreation, type PendingCreate } from './pending-create.js';
import type { RunEvent } from '../vocabulary/events.js';

export interface RunDriverDeps extends RunEffectsDeps {
  runStore: RunStore;
  clock: Clock;
  /** Called once when the run reaches a terminal status. */
  onTerminal: (state: RunState) => void;
  /** The controller's lease owner id: its saves are fenced by the run's lease (RunSaveRequest.owner). */
  owner?: string;
  /** This driver's save was refused because another controller holds the run's lease (RUN_LEASED). */
  onFenced?: (driver: RunDriver) => void;
}

/**
 * The effect layer for one run: reconcile in rounds. Each round takes every event that arrived,
 * decides, saves (optimistic version; a lost race re-reads and decides again), then performs the
 * commands, whose results come back as events. Rounds for one run never overlap.
 */
export class RunDriver {
  /**
   * The run as this driver holds it between rounds (state and index), changed in place by each
   * decision; undefined until loaded, and dropped whenever it may differ from the store in a way
   * the driver does not track (a failed decision or save, a lost race).
   */
  private workspace: RunWorkspace | undefined;
  /** Unsaved lookup results were dropped with a workspace: the next round looks those nodes up again. */
  private relookup = false;
  /**
   * The next state read has its effects repeated (see `round`): a save failed and may have
   * committed anyway, or the run is being taken over and its state could not be read at once.
   */
  private repeatEffects = false;
  private readonly inbox: Inbound[] = [];
  private loop: Promise<void> | null = null;
  private closed = false;
  private terminal = false;
  /**
   * Nodes changed by lookup-only decisions and not saved yet (see `round`), each with the record
   * the store holds for it (undefined: a node the store does not hold yet), so the next save
   * writes only what changed since then.
   */
  private readonly unsaved = new Map<string, NodeExecution | undefined>();
  /** Attempts sent beside a save that did not land (see `round`, and dispatch-ahead.ts). */
  private readonly orphans = new Orphans();
  /** Effects being performed outside a round (recovery). */
  private executing = false;
  /** Events at the head of the inbox to decide one at a time (after a permanent round failure). */
  private isolating = 0;
  private idleFrom = Date.now();
  /** Ends the wait before a failed round's retry (close). */
  private endBackOff: (() => void) | null = null;
  /** Delivers `run:tick` when the next failed cache write is due again (`nextWakeAt`). */
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly effects: RunEffects;
  /** Whether the run is still to be created (a run submitted here: PendingCreate), and its held events. */
  private readonly creation: RunCreation;

  constructor(
    readonly runId: string,
    private readonly deps: RunDriverDeps,
    initial?: RunState,
    pendingCreate?: PendingCreate,
  ) {
    this.workspace = initial === undefined ? undefined : workspaceOf(initial);
    if (pendingCreate !== undefined && initial === undefined) throw new Error('a run to create needs its initial state');
    this.creation = new RunCreation(pendingCreate, {
      runStore: deps.runStore,
      state: () => this.state,
      execute: (commands) => this.execute(commands),
      savedAll: () => this.unsaved.clear(),
      restartFromStore: () => {
        this.discard();
        this.enqueue({ type: 'run:tick' });
      },
      givenUp: () => {
        this.unsaved.clear();
        this.terminal = true; // what still arrives for it (lookup results) is acknowledged and dropped
        this.clearWake();
      },
    });
    this.effects = new RunEffects(runId, deps, {
      enqueue: (event) => this.enqueue(event),
      deliver: (event) => this.deliver(event),
      workspace: () => this.workspace,
      workflow: () => this.state?.run.workflow ?? '?',
      closed: () => this.closed,
    });
  }

  private get state(): RunState | undefined {
    return this.workspace?.state;
  }

  /**
   * Queues an event; the returned promise always settles: it resolves when the event's effect has
   * been saved (or the run is already finished, so the event has nothing left to change) and
   * rejects (STALE_STATE, retryable) if the driver closes first. A transport acknowledging on the
   * promise must never be left waiting: the in-process dispatcher hands over its next batch of
   * results only once the previous one has settled.
   */
  deliver(event: RunEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(closedError());
        return;
      }
      if (this.terminal) {
        resolve();
        return;
      }
      this.inbox.push({ event, persisted: resolve, dropped: reject });
      this.kick();
    });
  }

  /**
   * Queues events together, so they are decided in one round (this one, or the next if a round is
   * running): a batch of N results costs one decision and one save, not N. One promise per event,
   * settling like `deliver`'s; a result that came before its dispatch was recorded (RESULT_EARLY)
   * rejects alone, so the transport hands only it over again.
   */
  deliverAll(events: readonly RunEvent[]): Promise<void>[] {
    if (this.closed) return events.map(() => Promise.reject(closedError()));
    if (this.terminal) return events.map(() => Promise.resolve());
    const settled = events.map((event) => new Promise<void>((persisted, dropped) => this.inbox.push({ event, persisted, dropped })));
    this.kick();
    return settled;
  }

  /**
   * Takes over the run from the store (or from `loaded`, just read from it): repeats in-flight
   * effects, then advances it. Without `loaded`, a round reads the run, so a read that fails is
   * retried as any round is, and the effects are repeated from whatever state it reads: a driver
   * whose recovery could not read the run must not go on to drive it without them (a node its last
   * owner left `writing` would wait for a write nobody makes).
   */
  async recover(loaded?: RunState): Promise<void> {
    if (loaded === undefined) {
      this.workspace = undefined;
      this.repeatEffects = true;
      await this.deliver({ type: 'run:tick' });
      return;
    }
    this.workspace = workspaceOf(loaded);
    const state = loaded;
    if (state.run.status !== 'running') {
      this.finish(state);
      return;
    }
    this.executing = true;
    try {
      await this.execute(recoverCommands(state));
    } finally {
      this.executing = false;
      this.idleFrom = Date.now();
    }
    await this.deliver({ type: 'run:tick' });
  }

  /**
   * Whether a round runs, events wait for one, or a recovery's effects are being performed: what a
   * driver replacing this one must not run beside. (Unsaved lookup results are not in flight: the
   * store shows those nodes looking up, and a driver reading it looks them up again.)
   */
  busy(): boolean {
    return this.loop !== null || this.inbox.length > 0 || this.executing;
  }

  /**
   * Since when this driver has had nothing in flight (no round, no queued event, no unsaved change),
   * or null while it is busy. An idle driver holds nothing the store lacks.
   */
  idleSince(): number | null {
    return this.loop === null && this.inbox.length === 0 && this.unsaved.size === 0 && this.orphans.none() && !this.executing && !this.creation.waiting ? this.idleFrom : null;
  }

  /** The attempts it sent beside saves that never landed and no state recorded yet (see `orphans`), forgotten here. */
  takeOrphans(): TaskAttempt[] {
    return this.orphans.take();
  }

  /** The version of the run as this driver last read or saved it; undefined when it holds no state. */
  get version(): number | undefined {
    return this.state?.run.version;
  }

  /** Settles when no round is running. */
  async idle(): Promise<void> {
    while (this.loop !== null) await this.loop;
  }

  close(): void {
    this.closed = true;
    this.clearWake();
    this.endBackOff?.(); // a round waiting to retry hands its events back now, not after its delay
    if (this.loop === null) {
      this.creation.fail(closedError());
      this.settleInbox();
    }
  }

  private kick(): void {
    if (this.loop !== null || this.closed) return;
    this.loop = this.drain().finally(() => {
      this.loop = null;
      this.idleFrom = Date.now();
      // Closed before a round got to create the run (one creating it finishes first): never created.
      if (this.closed) this.creation.fail(closedError());
      if (this.terminal || this.closed) this.settleInbox();
      else if (this.inbox.length > 0) this.kick();
      else this.scheduleWake();
    });
  }

  /**
   * Nothing is queued: if a failed cache write is due later, wake the run then. The time comes from
   * the saved state (so a controller that took over the run wakes it too) and the clock.
   */
  private scheduleWake(): void {
    this.clearWake();
    const at = this.workspace === undefined ? null : nextWakeAt(this.workspace.state, this.workspace.index);
    if (at === null || this.closed || this.terminal) return;
    const delay = Math.max(0, at - this.deps.clock.now().getTime());
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.deliver({ type: 'run:tick' }).catch(() => undefined); // rejects only once closed
    }, delay);
    this.wakeTimer.unref();
  }

  private clearWake(): void {
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }

  /** Settles events that will not be decided on: acknowledged for a finished run, rejected when closed. */
  private settleInbox(): void {
    for (const item of this.inbox.splice(0)) {
      if (this.terminal) item.persisted?.();
      else item.dropped?.(closedError());
    }
  }

  private async drain(): Promise<void> {
    let failures = 0;
    while (this.inbox.length > 0 && !this.closed) {
      // After a permanent failure the events it held go one at a time, so one bad event cannot
      // take the others down with it.
      const batch = this.isolating > 0 ? this.inbox.splice(0, 1) : this.inbox.splice(0);
      if (this.isolating > 0) this.isolating -= 1;
      let outcome: RoundOutcome;
      try {
        outcome = await this.round(batch.map((item) => item.event));
        failures = 0;
      } catch (error) {
        // Before the run exists: a failed create fails the submit (nothing of the run is in the
        // store, nothing to retry against); a failed decision is handled as for any run, once the
        // run is created as submitted (its events isolated, or replaced by what can be recorded).
        if (this.creation.waiting && !(error instanceof DecisionError && (await this.creation.createAsSubmitted()))) {
          this.creation.fail(error);
          for (const item of batch) item.dropped?.(closedError());
          return;
        }
        // Nothing was acted on, so whatever happens next is safe.
        let next: 'retry' | 'next';
        try {
          next = this.onRoundFailure(batch, error, ++failures);
        } catch (sorting) {
          // Even sorting failed (a malformed event): drop the batch, saying so, rather than stop the loop.
          this.deps.emit({ type: 'controller:round-failed', level: 'error', runId: this.runId, workflow: this.state?.run.workflow ?? '?', message: `${batch.length} event(s) dropped: they could not be decided (${describeError(error)}) nor sorted (${describeError(sorting)})` });
          for (const item of batch) item.persisted?.();
          next = 'next';
        }
        if (next === 'retry') await this.backOff(roundRetryDelayMs(failures));
        continue;
      }
      const early = new Set(outcome.early);
      for (const item of batch) {
        if (early.size > 0 && item.event.type === 'attempt:finished' && early.has(item.event.result.attemptId)) item.dropped?.(earlyError(item.event.result.attemptId));
        else item.persisted?.();
      }
      const performing = Promise.all([outcome.dispatching, this.execute(this.creation.hold(outcome.commands))]).then(() => undefined);
      // A run not created yet is created once its deferral is up, even if a lookup never answers
      // (a query on a dropped connection can hang): the submit must answer, and the run show.
      if (this.creation.waiting && !(await this.creation.settlesInTime(performing, this.deps.clock)) && !(await this.creation.createAsItStands())) return;
      await performing;
      const state = this.state;
      if (state !== undefined && state.run.status !== 'running') {
        this.finish(state);
        return;
      }
    }
  }

  /** Waits `ms` before a failed round's retry, or until the driver closes. */
  private async backOff(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.endBackOff = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.endBackOff = null;
  }

  /** Applies what `sortRoundFailure` decided for a failed round; returns whether to wait before the next. */
  private onRoundFailure(batch: Inbound[], error: unknown, failures: number): 'retry' | 'next' {
    const verdict = sortRoundFailure(this.runId, batch, error, failures);
    const workflow = this.state?.run.workflow ?? '?';
    this.deps.emit({ type: 'controller:round-failed', level: verdict.warning.level, runId: this.runId, workflow, message: verdict.warning.message });
    if (verdict.discard) this.discard();
    if (verdict.requeue.length > 0) {
      // Back at the head, in order; not by spread (a batch of results may hold 100,000s).
      const rest = this.inbox.splice(0);
      for (const item of verdict.requeue) this.inbox.push(item);
      for (const item of rest) this.inbox.push(item);
    }
    this.isolating += verdict.isolate;
    if (verdict.unknownRun) {
      this.terminal = true; // nothing here will ever take this run's events
      for (const item of this.inbox.splice(0)) verdict.acknowledge.push(item);
    }
    for (const item of verdict.acknowledge) item.persisted?.();
    return verdict.next;
  }

  /**
   * Decide and save, re-reading on a lost race. Returns the commands to perform, and the dispatch
   * already under way.
   *
   * A decision that only applied lookup results and whose only effects are more lookups is not
   * saved first: a lookup is a read, and repeating it after a crash is harmless. Its changes are kept in memory and go out with the next
   * save, so a fully cached run saves once at the end instead of once per DAG level. If this
   * driver's state is discarded before that save (a lost race, a fresh read), lookups it had
   * in flight may be lost with it: the nodes the store shows as `looking-up` are looked up again.
   *
   * A decision that is saved dispatches its attempts while its save is in flight (Flyte's
   * propeller acts before it writes the status too), when any re-decision would dispatch the same
   * attempts with the same inputs (`dispatchAheadSafe`): attempt ids are deterministic, so a
   * re-decided dispatch of one finds it queued or finished. Its result is not read before the save
   * lands (the transport hands over the next batch once this one is saved), and one that reaches
   * another decider first waits for its dispatch to be recorded (`Decision.early`). An attempt the
   * re-decided state never records is an orphan (see `orphans`).
   */
  private async round(events: RunEvent[]): Promise<RoundOutcome> {
    // A run not created yet has no store to read: the workspace is all there is.
    let fresh = this.workspace === undefined || this.creation.waiting;
    let discarded = this.relookup;
    this.relookup = false;
    // A save that failed may have committed all the same (the connection dropped after COMMIT): the
    // store then holds a decision whose effects never happened, and its events, now stale, would
    // decide nothing. So the state read after a failed save has its effects repeated (all
    // idempotent), as a recovering controller's are.
    const repeat = this.repeatEffects;
    this.repeatEffects = false;
    let dispatching: Promise<void> | null = null;
    /** Attempt ids this round dispatched beside a save (see below). */
    const sent = new Set<string>();
    const outcome = (commands: Command[], early: readonly string[]): RoundOutcome => ({ commands, dispatching, early });
    try {
      for (;;) {
        const loading = this.workspace === undefined;
        const workspace = this.workspace ?? (await this.load());
        const repeated = repeat && loading ? recoverCommands(workspace.state) : [];
        const expectedVersion = workspace.state.run.version;
        // In place: from here until a save lands, a failure leaves the workspace ahead of the store.
        const decision = decideOrThrow(workspace, events, this.deps.clock.now());
        if (!decision.changed) {
          // Only a save checks the version. Events that change nothing in a state kept from an earlier
          // round may be ones another controller made current (a result for the attempt it started):
          // decide once more on a fresh read before treating them as stale.
          if (fresh) return outcome(this.orphans.cancelsAfter(this.withRepeats(decision.commands, repeated, discarded), decision.state), decision.early);
          fresh = true;
          discarded = this.discard() || discarded;
          continue;
        }
        // Only when the events are re-derivable too: a task result or a write confirmation must be
        // saved before it is acknowledged, or a crash (or a lost race) would lose it for good.
        const lookupsOnly =
          decision.state.run.status === 'running' &&
          this.creation.mayDefer(this.deps.clock) &&
          events.every((e) => e.type === 'cache:looked-up' || e.type === 'run:tick') &&
          decision.commands.every((c) => c.type === 'LookupCache' || c.type === 'EmitEvent');
        if (lookupsOnly) {
          for (const id of decision.changedNodes) if (!this.unsaved.has(id)) this.unsaved.set(id, decision.previous.get(id));
          // Repeated effects are the saved state's own: they need no save either.
          return outcome(this.withRepeats(decision.commands, repeated, discarded), decision.early);
        }
        if (this.creation.waiting) return outcome(await this.creation.create(decision.state, decision.commands), decision.early);
        // Each node's changes since the store last had it: what it held before this decision
        // (`previous`), or before the unsaved lookup-only decisions that changed it first.
        const ids = new Set([...this.unsaved.keys(), ...decision.changedNodes]);
        const stored = (id: string) => (this.unsaved.has(id) ? this.unsaved.get(id) : decision.previous.get(id));
        const early = !repeat && this.unsaved.size === 0 && dispatchAheadSafe(events);
        // What an earlier pass of this round (before a lost race) sent already is under way: not sent twice.
        const commands = unsent(decision.commands, sent);
        const speculative = early ? commands.flatMap((c) => (c.type === 'DispatchTask' ? c.attempts.filter((a) => mayGoAhead(a, decision, workspace)) : [])) : [];
        if (speculative.length > 0) {
          for (const attempt of speculative) sent.add(attempt.id);
          const started = this.execute([{ type: 'DispatchTask', attempts: speculative }]);
          dispatching = dispatching === null ? started : Promise.all([dispatching, started]).then(() => undefined);
        }
        let saved: boolean;
        try {
          saved = await this.deps.runStore.save({
            run: decision.state.run,
            nodes: nodeWrites(ids, stored, decision.state.nodes),
            expectedVersion,
            ...(this.deps.owner === undefined ? {} : { owner: this.deps.owner }),
          });
        } catch (error) {
          this.repeatEffects = true;
          this.orphans.adopt(speculative);
          if (error instanceof MemoflowError && error.code === 'RUN_LEASED') this.deps.onFenced?.(this);
          throw error;
        }
        if (saved) {
          this.unsaved.clear();
          workspace.state.run = { ...workspace.state.run, version: expectedVersion + 1 };
          const rest = unsent(commands, new Set(speculative.map((a) => a.id)));
          return outcome(this.orphans.cancelsAfter(this.withRepeats(rest, repeated, discarded), decision.state), decision.early);
        }
        // Another controller moved the run on: re-read and decide again.
        this.orphans.adopt(speculative);
        discarded = this.discard() || discarded;
        fresh = true;
      }
    } catch (error) {
      // The workspace may be ahead of the store (decided, not saved): the next round loads afresh.
      this.relookup = this.discard() || discarded;
      this.repeatEffects ||= repeat;
      // A dispatch under way goes on (it is idempotent, and retries until the driver closes); nothing waits for it.
      dispatching?.catch(() => undefined);
      throw error;
    }
  }

  /** Drops the in-memory state; true if it held changes that were never saved. */
  private discard(): boolean {
    const hadUnsaved = this.unsaved.size > 0;
    this.unsaved.clear();
    this.workspace = undefined;
    return hadUnsaved;
  }

  /**
   * A round's commands, after the effects repeated from the state read after a failed save (which
   * include its lookups, so a discard needs no relookups on top of them).
   */
  private withRepeats(commands: Command[], repeated: Command[], discarded: boolean): Command[] {
    return repeated.length === 0 ? this.withRelookups(commands, discarded) : [...repeated, ...commands];
  }

  /** After unsaved changes were discarded, looks up again every node the saved state has looking up. */
  private withRelookups(commands: Command[], discarded: boolean): Command[] {
    if (!discarded || this.state === undefined) return commands;
    const again = recoverCommands(this.state).filter((c) => c.type === 'LookupCache');
    return [...again, ...commands];
  }

  private async load(): Promise<RunWorkspace> {
    const state = await this.deps.runStore.load(this.runId);
    if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${this.runId}' is not in the run store`);
    this.workspace = workspaceOf(state);
    return this.workspace;
  }

  /** Performs commands (run-effects.ts); their results come back as events. */
  private execute(commands: Command[]): Promise<void> {
    return this.effects.execute(commands);
  }

  private enqueue(event: RunEvent): void {
    this.inbox.push({ event });
  }

  private finish(state: RunState): void {
    if (this.terminal) return;
    this.terminal = true;
    this.clearWake();
    this.deps.onTerminal(state);
  }
}

/** `decide`, with anything it throws marked as the decision's fault (see DecisionError). */
function decideOrThrow(workspace: RunWorkspace, events: readonly RunEvent[], now: Date): ReturnType<typeof decideInPlace> {
  try {
    return decideInPlace(workspace, events, now);
  } catch (error) {
    throw new DecisionError(error);
  }
}

/** What a round leaves to perform: its commands, the dispatch it started beside its save, and the results that came early. */
interface RoundOutcome {
  commands: Command[];
  dispatching: Promise<void> | null;
  early: readonly string[];
}

function closedError(): MemoflowError {
  return new MemoflowError('STALE_STATE', 'controller is closed', { retryable: true });
}
