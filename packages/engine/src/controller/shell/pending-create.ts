import type { Clock } from '../../ports/clock.js';
import type { LeaseRequest, RunStore } from '../../ports/run-store.js';
import type { RunState } from '../../state/run-state.js';
import type { Command } from '../vocabulary/commands.js';
import { createRun, type CreateOutcome } from './create-run.js';

/**
 * A run submitted to a driver that is not in the store yet. Its first rounds only look up the
 * cache (reads, harmless to repeat), so the run is created by the first round that must save
 * anything, in its state as of then: a fully cached run is written once, by its create, instead of
 * created and then saved whole. Until then its events are held back (a log must not show nodes of
 * a run that may never exist), and the create waits no longer than `deferUntil` (clock ms), so a
 * long cached prefix still shows up in the store soon.
 */
export interface PendingCreate {
  lease: LeaseRequest;
  deferUntil: number;
  /** The run as submitted, made afresh: what is created if a decision fails before the run exists. */
  initial: () => RunState;
  /** Called once the run is in the store, before any effect of it is performed. */
  created: (outcome: CreateOutcome) => void;
  /** Called instead if it never gets there (the create or the first decision failed, or the driver closed): the submit fails. */
  failed: (error: unknown) => void;
}

/** What a RunCreation asks of its driver. */
export interface CreationHost {
  readonly runStore: RunStore;
  /** The run as the driver holds it. */
  state(): RunState | undefined;
  execute(commands: Command[]): Promise<void>;
  /** The run is in the store as the driver holds it: nothing is left unsaved. */
  savedAll(): void;
  /** The run is in the store as submitted: the driver reads it from there, and a tick starts it. */
  restartFromStore(): void;
  /** It will never be created: the driver is done with it. */
  givenUp(): void;
}

/** A driver's side of a PendingCreate: whether the run is still to be created, its held events, and the create itself. */
export class RunCreation {
  private pending: PendingCreate | undefined;
  private readonly heldEmits: Command[] = [];

  constructor(
    pending: PendingCreate | undefined,
    private readonly host: CreationHost,
  ) {
    this.pending = pending;
  }

  /** True until the run is created (or will never be). */
  get waiting(): boolean {
    return this.pending !== undefined;
  }

  /** Whether a lookup-only round may still go unsaved, leaving the create to a later round. */
  mayDefer(clock: Clock): boolean {
    return this.pending === undefined || clock.now().getTime() < this.pending.deferUntil;
  }

  /**
   * Whether `work` settles before the deferral is up (true at once if the run is not waiting):
   * how long a driver waits on a round's lookups before it creates the run without their answers.
   */
  async settlesInTime(work: Promise<void>, clock: Clock): Promise<boolean> {
    if (this.pending === undefined) return true;
    const remainingMs = Math.max(0, this.pending.deferUntil - clock.now().getTime());
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), remainingMs)));
    try {
      return await Promise.race([work.then(() => true as const, () => true as const), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A round's commands to perform now: while the run is not created, its events are kept for later. */
  hold(commands: Command[]): Command[] {
    if (this.pending === undefined) return commands;
    const now: Command[] = [];
    // One by one, not by spread: a round may emit 100,000s of events (a spread passes each as an argument).
    for (const command of commands) (command.type === 'EmitEvent' ? this.heldEmits : now).push(command);
    return now;
  }

  /**
   * Creates the run as `state` has it (leased unless it is already finished), which is then all
   * saved; returns `commands` after the events held back until now. Rejects if the create fails
   * (and so the submit).
   */
  async create(state: RunState, commands: Command[]): Promise<Command[]> {
    const pending = this.pending;
    if (pending === undefined) throw new Error('RunCreation.create() without a pending create');
    const outcome = await createRun(this.host.runStore, state, state.run.status === 'running' ? pending.lease : undefined);
    this.pending = undefined;
    this.host.savedAll();
    pending.created(outcome);
    return [...this.heldEmits.splice(0), ...commands];
  }

  /**
   * Creates the run from the driver's state as it stands, while its lookups are still out: the
   * store shows those nodes looking up (a controller taking the run over looks them up again), and
   * their answers come as ordinary events. False if the create failed (and with it the submit).
   */
  async createAsItStands(): Promise<boolean> {
    let held: Command[];
    try {
      const state = this.host.state();
      if (state === undefined) throw new Error('a run to create has no state');
      held = await this.create(state, []);
    } catch (error) {
      this.fail(error);
      return false;
    }
    await this.host.execute(held);
    return true;
  }

  /**
   * Creates the run as submitted, dropping what its rounds decided so far (and their held events):
   * after a decision failed, the failure is handled as for any run, on the run as the store has it.
   * False if the create failed (and with it the submit).
   */
  async createAsSubmitted(): Promise<boolean> {
    const pending = this.pending;
    if (pending === undefined) return false;
    this.heldEmits.length = 0;
    try {
      await this.create(pending.initial(), []);
    } catch (error) {
      this.fail(error);
      return false;
    }
    this.host.restartFromStore();
    return true;
  }

  /** The run will never be created here: its submit fails with `error`, and the driver is done with it. */
  fail(error: unknown): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    this.heldEmits.length = 0;
    this.host.givenUp();
    pending.failed(error);
  }
}
