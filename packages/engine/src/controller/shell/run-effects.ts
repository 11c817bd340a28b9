import type { CacheCatalog, NewCacheEntry } from '../../ports/cache-catalog.js';
import type { ReservationRelease } from '../../ports/cache-reservations.js';
import type { AttemptToCancel, TaskAttempt, TaskDispatcher } from '../../ports/task-dispatcher.js';
import { lookupOutcomes } from '../core/lookup-outcomes.js';
import type { RunWorkspace } from '../core/draft.js';
import type { CacheLookup, Command, EngineEvent, ReservationAsk } from '../vocabulary/commands.js';
import type { CacheWrite, LookupOutcome, RunEvent } from '../vocabulary/events.js';
import type { ReservationKeeper } from './reservation-keeper.js';
import type { RunTracing } from './run-tracing.js';

/** What performing a run's commands needs from the controller. */
export interface RunEffectsDeps {
  catalog: CacheCatalog;
  dispatcher: TaskDispatcher;
  /** The controller's reservations (`cache.serialize`): acquire, heartbeat, release, watch. */
  reservations: ReservationKeeper;
  /** The controller's spans (run-tracing.ts): told of every event and attempt performed. */
  tracing: RunTracing;
  emit: (event: EngineEvent) => void;
}

/** What it needs from the run's driver: where results go, and what the driver holds. */
export interface RunEffectsHost {
  /** Queues an event for the round in progress to take next (results of the effects it performs). */
  enqueue(event: RunEvent): void;
  /** Queues an event and starts a round for it (a reservation released while no round runs). */
  deliver(event: RunEvent): Promise<void>;
  workspace(): RunWorkspace | undefined;
  workflow(): string;
  closed(): boolean;
}

const DISPATCH_RETRY_MS = [100, 250, 500, 1000, 2000, 5000];
/** Tries at cancelling a cancelled run's attempts (see `cancelAttempts`). */
const CANCEL_TRIES = 3;
/** Single-entry puts in flight at once when a batch put failed (see `write`). */
const SINGLE_PUT_CONCURRENCY = 8;

/**
 * The effects of one run's rounds (the shell's half of persist-then-act; dispatches may go beside the save): performs the commands a
 * saved decision asks for, concurrently, and feeds what they learn back to the driver as events.
 * Every effect is idempotent, so a crash between saving and acting costs a repeat, never a loss.
 */
export class RunEffects {
  constructor(
    private readonly runId: string,
    private readonly deps: RunEffectsDeps,
    private readonly host: RunEffectsHost,
  ) {}

  private emit(event: EngineEvent): void {
    this.deps.tracing.observe(event, this.host.workspace());
    this.deps.emit(event);
  }

  /** Performs commands; lookups and writes run concurrently and feed their results back as events. */
  async execute(commands: readonly Command[]): Promise<void> {
    const work: Promise<void>[] = [];
    for (const command of commands) {
      switch (command.type) {
        case 'EmitEvent':
          this.emit(command.event);
          break;
        case 'DispatchTask':
          work.push(this.dispatch(this.deps.tracing.carry(command.attempts, this.host.workspace())));
          break;
        case 'LookupCache':
          work.push(this.lookup(command.lookups));
          break;
        case 'WriteCache':
          work.push(this.write(command.writes, command.entries));
          break;
        case 'CancelAttempts':
          work.push(this.cancelAttempts(command.attempts));
          break;
        case 'AcquireReservations':
          work.push(this.reserve(command.requests));
          break;
        case 'ReleaseReservations':
          work.push(this.release(command.releases));
          break;
      }
    }
    await Promise.all(work);
  }

  /** One catalog query per entry kind in the round (outputs, and dynamic nodes' futures), run together. */
  private async lookup(lookups: CacheLookup[]): Promise<void> {
    const kinds = [...new Set(lookups.map((l) => l.kind))];
    const results = await Promise.all(
      kinds.map(async (kind): Promise<LookupOutcome[]> => {
        const wanted = lookups.filter((l) => l.kind === kind);
        try {
          const found = await this.deps.catalog.lookup(kind, wanted.map((l) => l.key));
          return lookupOutcomes(kind, wanted, found);
        } catch (error) {
          return wanted.map(({ nodeId, key, afterReservation, shadow }): LookupOutcome => ({ ...(afterReservation === true ? { afterReservation } : {}), ...(shadow === undefined ? {} : { shadow }), nodeId, key, kind, outcome: 'failure', reason: describe(error) }));
        }
      }),
    );
    this.host.enqueue({ type: 'cache:looked-up', results: results.flat() });
  }

  /**
   * One put for the whole round. If it fails and held several entries, each is put on its own, so
   * one entry the catalog refuses (a value it cannot store) does not take the others down with it,
   * again on every retry. During an outage that costs one failing statement per entry, once per
   * retry of the batch.
   */
  private async write(writes: CacheWrite[], entries: NewCacheEntry[]): Promise<void> {
    try {
      await this.deps.catalog.put(entries);
      this.host.enqueue({ type: 'cache:written', writes, ok: true });
      return;
    } catch (error) {
      if (writes.length === 1) {
        this.host.enqueue({ type: 'cache:written', writes, ok: false, reason: describe(error) });
        return;
      }
    }
    const ok: CacheWrite[] = [];
    const failed = new Map<string, CacheWrite[]>();
    for (let start = 0; start < writes.length; start += SINGLE_PUT_CONCURRENCY) {
      await Promise.all(
        writes.slice(start, start + SINGLE_PUT_CONCURRENCY).map(async (write, offset) => {
          const entry = entries[start + offset];
          if (entry === undefined) return;
          try {
            await this.deps.catalog.put([entry]);
            ok.push(write);
          } catch (error) {
            const reason = describe(error);
            failed.set(reason, [...(failed.get(reason) ?? []), write]);
          }
        }),
      );
    }
    if (ok.length > 0) this.host.enqueue({ type: 'cache:written', writes: ok, ok: true });
    for (const [reason, lost] of failed) this.host.enqueue({ type: 'cache:written', writes: lost, ok: false, reason });
  }

  /**
   * Answers come back as one event; a held key is watched, and once it may be free the waiting node
   * hears it (`reservation:released`) in a round of its own.
   */
  private async reserve(requests: ReservationAsk[]): Promise<void> {
    const answers = await this.deps.reservations.acquire(requests, (answer) => {
      this.host.deliver({ type: 'reservation:released', nodeId: answer.nodeId, key: answer.key }).catch(() => undefined); // rejects only once closed
    });
    this.host.enqueue({ type: 'reservation:answered', answers });
  }

  private release(releases: ReservationRelease[]): Promise<void> {
    return this.deps.reservations.release(releases, this.runId, this.host.workflow());
  }

  /** Dispatch is idempotent per attempt id, so a failed dispatch is simply repeated with backoff. */
  private async dispatch(attempts: TaskAttempt[]): Promise<void> {
    for (let tries = 0; ; tries++) {
      try {
        await this.deps.dispatcher.dispatch(attempts);
        return;
      } catch (error) {
        if (this.host.closed()) return;
        const first = attempts[0];
        this.deps.emit({
          type: 'node:dispatch-failed',
          level: 'warn',
          runId: this.runId,
          workflow: this.host.workflow(),
          ...(first === undefined ? {} : { nodeId: first.nodeId, task: first.task }),
          message: `dispatching ${attempts.length} attempt(s) failed, retrying: ${describe(error)}`,
        });
        await sleep(DISPATCH_RETRY_MS[Math.min(tries, DISPATCH_RETRY_MS.length - 1)] ?? 5000);
      }
    }
  }

  /**
   * Stops a cancelled run's attempts. Best effort, retried a few times: the run is already saved as
   * cancelled, so an attempt that still runs only wastes its slot; its result is dropped.
   */
  private async cancelAttempts(attempts: AttemptToCancel[]): Promise<void> {
    for (let tries = 0; tries < CANCEL_TRIES; tries++) {
      try {
        await this.deps.dispatcher.cancel(attempts);
        return;
      } catch (error) {
        if (this.host.closed()) return;
        const last = tries === CANCEL_TRIES - 1;
        this.deps.emit({
          type: 'node:dispatch-failed',
          level: 'warn',
          runId: this.runId,
          workflow: this.host.workflow(),
          message: `cancelling ${attempts.length} attempt(s) failed${last ? '; they run to the end and their results are dropped' : ', retrying'}: ${describe(error)}`,
        });
        if (!last) await sleep(DISPATCH_RETRY_MS[tries] ?? 1000);
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
