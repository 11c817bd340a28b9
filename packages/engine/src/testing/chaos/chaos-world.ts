import { Controller } from '../../controller/shell/controller.js';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import type { CacheCatalog } from '../../ports/cache-catalog.js';
import type { RunStore } from '../../ports/run-store.js';
import type { EngineEvent } from '../../controller/vocabulary/commands.js';
import { CHAOS_DYNAMIC, chaosBody, chaosDag, type ChaosDag } from './chaos-dags.js';
import { ChaosTransport } from './chaos-transport.js';
import { ChaosProcess, processView } from './process-view.js';
import { seeded, type Chance } from './seeded.js';

/** A controller of the chaos world, with the process it lives in. */
export interface ChaosController {
  process: ChaosProcess;
  controller: Controller;
  close(): Promise<void>;
}

/** A run the world submitted, and what it must output. */
export interface ChaosRun extends ChaosDag {
  /** The submit's answer: the run id, or the error it rejected with (and whether its controller was alive then). */
  submitted: Promise<{ ok: true; id: string } | { ok: false; error: unknown; processAlive: boolean }>;
  /** Cancelled by the world (the run may have finished first). */
  cancelRequested: boolean;
}

/** How hard the world pushes: fault rates of the store and the catalog, kills, cancels. */
export interface ChaosSettings {
  runs: number;
  kills: number;
  /** Controllers stalled past their lease, which then come back (their saves lose races). */
  pauses: number;
  cancels: boolean;
  /** The chance that a store or catalog call never answers (and as much again that it lands after the deadline). */
  hangs?: number;
}

const LEASE_MS = 150;

/**
 * Controllers (real Controller and RunDriver code) sharing one in-memory run store, one catalog and
 * one ChaosTransport, each in a ChaosProcess whose calls are delayed and fail at seeded rates, and
 * which the world may kill at any time (its calls then reach nothing; its leases expire, and the
 * others' sweeps and results take its runs over). The world submits runs of random DAGs, cancels
 * some, kills controllers and starts new ones, then waits for every run to end.
 */
export class ChaosWorld {
  readonly chance: Chance;
  readonly store = new InMemoryRunStore();
  readonly catalog = new InMemoryCacheCatalog();
  readonly transport: ChaosTransport;
  readonly controllers: ChaosController[] = [];
  readonly runs: ChaosRun[] = [];
  readonly killed: string[] = [];
  readonly paused: string[] = [];
  /** When (the transport's counter) a save first recorded each run as cancelled. */
  readonly cancelledAt = new Map<string, number>();
  /** Every controller's events, for a failure's message. */
  readonly events: { by: string; event: EngineEvent }[] = [];
  private counter = 0;
  private names = 0;
  /** The chance that a call of the store or the catalog never answers (ChaosSettings.hangs). */
  private hangs = 0;

  /** Lease history of the store, for a failure's message. */
  readonly leaseLog: string[] = [];

  constructor(readonly seed: number) {
    this.chance = seeded(seed);
    this.transport = new ChaosTransport(this.chance, chaosBody);
    const store = this.store;
    const acquire = store.acquireLease.bind(store);
    store.acquireLease = async (runId, lease) => {
      const outcome = await acquire(runId, lease);
      this.leaseLog.push(`${runId}: ${lease.owner} acquire -> ${outcome.kind}${outcome.kind === 'held' ? ` by ${outcome.owner}` : ''}`);
      return outcome;
    };
    const create = store.create.bind(store);
    store.create = async (state, lease) => {
      await create(state, lease);
      this.leaseLog.push(`${state.run.id}: created, leased to ${lease?.owner ?? 'nobody'}`);
    };
    const save = store.save.bind(store);
    store.save = async (request) => {
      const saved = await save(request);
      if (saved && request.run.status === 'cancelled' && !this.cancelledAt.has(request.run.id)) this.cancelledAt.set(request.run.id, this.transport.now());
      return saved;
    };
    const release = store.releaseLeases.bind(store);
    store.releaseLeases = async (owner, ids) => {
      await release(owner, ids);
      this.leaseLog.push(`${owner} released ${ids === undefined ? 'all' : ids.join(',')}`);
    };
  }

  startController(): ChaosController {
    const process = new ChaosProcess(`c${++this.names}`);
    const dispatcher = this.transport.dispatcher(`chaos-${this.seed}-${process.name}`, process);
    // With hangs, as many calls again take effect only after the controller's deadline (100 ms).
    const hang = this.hangs;
    const late = this.hangs;
    const lease = { before: 0.02, after: 0.02, hang, late };
    const runStore: RunStore = processView<RunStore>(this.store, process, this.chance, {
      save: { before: 0.03, after: 0.03, hang, late },
      load: { before: 0.02, hang },
      create: { before: 0.03, hang, late },
      acquireLease: lease,
      renewLeases: lease,
      releaseLeases: lease,
    });
    const catalog: CacheCatalog = processView<CacheCatalog>(this.catalog, process, this.chance, { lookup: { before: 0.04, hang }, put: { before: 0.02, after: 0.02, hang, late } });
    const controller = new Controller({
      catalog,
      runStore,
      dispatcher,
      leaseMs: LEASE_MS,
      waitPollMs: 10,
      cancelPollMs: 20,
      // Calls answer within a few ms here: one that hangs is given up on after 100 ms.
      callTimeoutMs: 100,
      newRunId: () => `s${this.seed}-r${++this.counter}`,
      onEvent: (event) => this.events.push({ by: process.name, event }),
    });
    controller.startSweeper({ intervalMs: 25 });
    const entry: ChaosController = {
      process,
      controller,
      close: async () => {
        await controller.close();
        await dispatcher.close();
      },
    };
    this.controllers.push(entry);
    return entry;
  }

  alive(): ChaosController[] {
    return this.controllers.filter((c) => c.process.alive);
  }

  /** Submits a run of one of `dags` through a live controller. */
  submit(dags: readonly ChaosDag[]): ChaosRun {
    const dag = this.chance.pick(dags);
    const { spec } = dag;
    const via = this.chance.pick(this.alive());
    const submitted = via.controller.submit({ spec, inputs: {}, project: 'chaos', domain: 'test' }).then(
      (id) => ({ ok: true as const, id }),
      (error: unknown) => ({ ok: false as const, error, processAlive: via.process.alive }),
    );
    const run: ChaosRun = { ...dag, submitted, cancelRequested: false };
    this.runs.push(run);
    return run;
  }

  /** Kills a live controller (it reaches nothing from now on) and starts another in its place. */
  kill(): void {
    const victim = this.chance.pick(this.alive());
    victim.process.alive = false;
    this.killed.push(victim.process.name);
    this.startController();
  }

  /** Cancels the run once its submit answered (a failed request is one never made: the run may finish). */
  /** Stalls a live controller for one to three leases: the others take its runs over, then it comes back to them. */
  pause(): void {
    const victim = this.chance.pick(this.alive());
    const ms = this.chance.int(LEASE_MS, LEASE_MS * 3);
    victim.process.pause(ms);
    this.paused.push(`${victim.process.name} for ${ms} ms`);
  }

  async cancel(run: ChaosRun): Promise<void> {
    const submitted = await run.submitted;
    if (!submitted.ok) return;
    run.cancelRequested = true;
    const via = this.chance.pick(this.alive());
    await via.controller.cancel(submitted.id).catch(() => undefined);
  }

  /** Plays the scenario the seed picks: submits, cancels, kills, stalls and evictions at seeded moments. */
  async play(settings: ChaosSettings): Promise<void> {
    this.hangs = settings.hangs ?? 0;
    this.startController();
    this.startController();
    const dags = [chaosDag(this.chance, 'chaos.a'), chaosDag(this.chance, 'chaos.b')];
    let kills = settings.kills;
    let pauses = settings.pauses;
    const cancels: Promise<void>[] = [];
    for (let i = 0; i < settings.runs; i++) {
      const run = this.submit(dags);
      await new Promise((resolve) => setTimeout(resolve, this.chance.int(0, 8)));
      if (kills > 0 && this.chance.odds(0.35)) {
        kills -= 1;
        this.kill();
      }
      if (pauses > 0 && this.chance.odds(0.35)) {
        pauses -= 1;
        this.pause();
      }
      if (settings.cancels && this.chance.odds(0.2)) cancels.push(this.cancel(run));
      // An operator evicts the dynamic nodes' outputs and keeps their futures: a later run of the
      // DAG replays the compiled sub-workflow (FUTURE_HIT) instead of running the body.
      if (this.chance.odds(0.3)) await this.catalog.evict({ task: CHAOS_DYNAMIC, kind: 'output' });
    }
    await Promise.all(this.runs.map((run) => run.submitted));
    await Promise.all(cancels);
  }

  /** Resolves once every run in the store has ended, or rejects after `ms` naming those that did not. */
  async settled(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const open = (await this.store.list({ status: 'running' })).map((run) => run.id);
      if (open.length === 0) return;
      if (Date.now() > deadline) throw new Error(`runs still running after ${ms} ms: ${(await Promise.all(open.map((id) => this.describe(id)))).join('; ')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** A run as the store holds it, with its lease and what the transport did for it: for a failure's message. */
  async describe(runId: string): Promise<string> {
    const state = await this.store.load(runId);
    if (state === undefined) return `${runId}: not in the store`;
    const nodes = Object.values(state.nodes).map((n) => `${n.nodeId} ${n.phase}/${n.cacheStatus ?? '-'}/${n.attempts}`);
    const ran = this.transport.executions.filter((e) => e.runId === runId).map((e) => e.attemptId);
    const waiting = this.transport.unacknowledged.filter((r) => r.attemptId.startsWith(`${runId}-`)).map((r) => `${r.attemptId} (${r.refusal ?? 'never refused'})`);
    const lease = this.store.leaseOf(runId);
    const unleased = lease === null ? 'unleased' : `leased to ${lease.owner} for ${lease.expiresAt - Date.now()} ms more`;
    const events = this.events.filter((e) => e.event.runId === runId).map((e) => `${e.by} ${e.event.type}${'nodeId' in e.event ? ` ${String(e.event.nodeId)}` : ''}${'message' in e.event ? `: ${String(e.event.message)}` : ''}`);
    const drivers = this.alive().map((c) => {
      const driver = (c.controller as unknown as { drivers: { get(id: string): Record<string, unknown> | undefined } }).drivers.get(runId);
      if (driver === undefined) return `${c.process.name}: no driver`;
      const ws = driver['workspace'] as { state: { run: { version: number }; nodes: Record<string, { phase: string }> } } | undefined;
      const held = ws === undefined ? 'none' : `v${ws.state.run.version} ${Object.values(ws.state.nodes).map((n) => n.phase).join(',')}`;
      return `${c.process.name}: inbox ${(driver['inbox'] as unknown[]).length}, loop ${driver['loop'] === null ? 'idle' : 'running'}, unsaved ${(driver['unsaved'] as Map<string, unknown>).size}, relookup ${String(driver['relookup'])}, executing ${String(driver['executing'])}, terminal ${String(driver['terminal'])}, closed ${String(driver['closed'])}, holds ${held}`;
    });
    return `${runId} v${state.run.version} drivers {${drivers.join('; ')}} [${nodes.join(', ')}] ran [${ran.join(', ')}] results waiting [${waiting.join(', ')}] ${unleased}, alive [${this.alive().map((c) => c.process.name).join(', ')}], events:\n  ${events.join('\n  ')}\nleases:\n  ${this.leaseLog.filter((l) => l.includes(runId) || l.includes('released all')).join('\n  ')}`;
  }

  async close(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.close().catch(() => undefined)));
    await this.transport.stop();
  }
}
