import type { Json } from '../../json.js';
import type { AttemptResult, AttemptResultsHandler, AttemptToCancel, TaskAttempt, TaskDispatcher } from '../../ports/task-dispatcher.js';
import type { ChaosProcess } from './process-view.js';
import { pause, type Chance } from './seeded.js';

/** One body run, as the chaos workers saw it. */
export interface ChaosExecution {
  attemptId: string;
  runId: string;
  nodeId: string;
  attempt: number;
  inputs: TaskAttempt['inputs'];
  /** Order among all executions and cancels (see ChaosTransport.clock). */
  at: number;
}

interface Endpoint {
  address: string;
  process: ChaosProcess;
  handler: AttemptResultsHandler | undefined;
  open: boolean;
  /** A batch handed over and not settled: the next waits for it, as a results consumer's read does (most of the time). */
  busy: boolean;
}

interface Pending {
  result: AttemptResult;
  /** The dispatcher that sent the attempt: its results go there while it is open. */
  sentBy: string;
  /** Handed over and not settled yet: to whom (a dead one's are claimed by the others, as XAUTOCLAIM does). */
  out: Endpoint | null;
  /** Not to be handed over before (a rejection's backoff). */
  notBefore: number;
  /** Why it was last handed over again, for a failure's message. */
  lastRefusal?: string;
}

/**
 * The queue and worker pools of the chaos harness, in memory, with BullMQ's guarantees and nothing
 * more: an attempt id runs at most once (job ids, the finished-attempt marker), an attempt
 * cancelled before it starts never does, a result stays until a handler's promise for it resolves
 * (a rejection hands it over again later), results go back to the dispatcher that sent their
 * attempt while it is open and to any open one otherwise, and a result may be handed over once
 * more after it was acknowledged (a claim racing the ack). Delays, batches and the order of
 * deliveries come from the seed. Bodies are `run`, a function of the attempt.
 */
export class ChaosTransport {
  readonly executions: ChaosExecution[] = [];
  /** Attempt ids cancelled, with when (the same counter as executions' `at`). */
  readonly cancels = new Map<string, number>();
  private readonly endpoints = new Map<string, Endpoint>();
  /** Attempt ids queued or run: a second dispatch of one adds nothing. */
  private readonly known = new Set<string>();
  private pending: Pending[] = [];
  private tick = 0;

  /** The counter executions and cancels are ordered by, for events outside the transport. */
  now(): number {
    return ++this.tick;
  }
  private pump: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly chance: Chance,
    private readonly run: (attempt: TaskAttempt) => Json,
    private readonly rates = { duplicate: 0.03, ungated: 0.3 },
  ) {
    this.schedulePump();
  }

  /** A dispatcher for `process`'s controller, at `address` (its lease owner id). */
  dispatcher(address: string, process: ChaosProcess): TaskDispatcher & { close(): Promise<void> } {
    const endpoint: Endpoint = { address, process, handler: undefined, open: true, busy: false };
    this.endpoints.set(address, endpoint);
    const alive = (what: string): void => {
      if (!process.alive || !endpoint.open) throw new Error(`${address}: ${what} on a dead or closed dispatcher`);
    };
    return {
      pool: 'chaos',
      address,
      dispatch: async (attempts) => {
        alive('dispatch');
        await process.resumed();
        await pause(this.chance);
        // A process that died meanwhile may or may not have reached the queue.
        if (!process.alive && this.chance.odds(0.5)) throw new Error(`${address}: died before the dispatch reached the queue`);
        for (const attempt of attempts) this.enqueue(attempt, address);
      },
      cancel: async (attempts: readonly AttemptToCancel[]) => {
        alive('cancel');
        for (const attempt of attempts) if (!this.cancels.has(attempt.id)) this.cancels.set(attempt.id, ++this.tick);
      },
      route: async (result, owner) => {
        alive('route');
        const target = this.endpoints.get(owner);
        if (target === undefined || !target.open || !target.process.alive) throw new Error(`no live controller at ${owner}`);
        this.pending.push({ result, sentBy: owner, out: null, notBefore: 0 });
      },
      onResults: (handler) => {
        endpoint.handler = handler;
      },
      close: async () => {
        endpoint.open = false;
      },
    };
  }

  /** Results not acknowledged yet, each with why it was last refused. */
  get unacknowledged(): { attemptId: string; runId: string; sentBy: string; heldBy: string | null; refusal: string | undefined }[] {
    return this.pending.map((item) => ({ attemptId: item.result.attemptId, runId: item.result.runId, sentBy: item.sentBy, heldBy: item.out?.address ?? null, refusal: item.lastRefusal }));
  }

  /** Stops delivering; settles once nothing is running. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pump !== undefined) clearTimeout(this.pump);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private enqueue(attempt: TaskAttempt, sentBy: string): void {
    if (this.known.has(attempt.id)) return;
    this.known.add(attempt.id);
    const work = (async () => {
      await pause(this.chance, 4);
      if (this.cancels.has(attempt.id) || this.stopped) return; // removed from the queue, or cancelled before it started
      this.executions.push({ attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, inputs: attempt.inputs, at: ++this.tick });
      const now = new Date();
      const base = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: now, finishedAt: now };
      let result: AttemptResult;
      try {
        result = { ...base, ok: true, output: this.run(attempt), outputHash: null };
      } catch (error) {
        result = { ...base, ok: false, error: { name: 'Error', message: error instanceof Error ? error.message : String(error), code: 'TASK_FAILED', retryable: true } };
      }
      this.pending.push({ result, sentBy, out: null, notBefore: 0 });
    })();
    this.track(work);
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private schedulePump(): void {
    if (this.stopped) return;
    this.pump = setTimeout(() => {
      this.deliverSome();
      this.schedulePump();
    }, this.chance.int(0, 2));
  }

  /** Hands each open endpoint a batch of what is due for it: a random part of it, in a random order. */
  private deliverSome(): void {
    const now = Date.now();
    // A paused consumer reads nothing; what it holds waits for it (it resumes well before a claim).
    const open = [...this.endpoints.values()].filter((e) => e.open && e.process.alive && e.process.paused === null && e.handler !== undefined);
    if (open.length === 0) return;
    const batches = new Map<Endpoint, Pending[]>();
    for (const item of this.pending) {
      if (item.out !== null && item.out.process.alive) continue;
      if (item.notBefore > now) continue;
      const own = this.endpoints.get(item.sentBy);
      const endpoint = own !== undefined && open.includes(own) ? own : this.chance.pick(open);
      if (endpoint.busy && !this.chance.odds(this.rates.ungated)) continue;
      if (!this.chance.odds(0.7)) continue; // not read this time
      const list = batches.get(endpoint) ?? [];
      list.push(item);
      batches.set(endpoint, list);
    }
    for (const [endpoint, items] of batches) this.handOver(endpoint, shuffled(items, this.chance));
  }

  private handOver(endpoint: Endpoint, items: Pending[]): void {
    for (const item of items) item.out = endpoint;
    endpoint.busy = true;
    let settlements: readonly Promise<void>[];
    try {
      settlements = (endpoint.handler as AttemptResultsHandler)(items.map((item) => item.result));
    } catch {
      settlements = items.map(() => Promise.reject(new Error('the handler threw')));
    }
    const settled = items.map(async (item, i) => {
      try {
        await settlements[i];
        // A dead process acknowledges nothing (its entry was claimed by another, or will be).
        if (!endpoint.process.alive || item.out !== endpoint) return;
        this.pending = this.pending.filter((p) => p !== item);
        // A claim that raced the ack: the same result once more, later.
        if (this.chance.odds(this.rates.duplicate)) this.pending.push({ ...item, out: null, notBefore: Date.now() + this.chance.int(0, 5) });
      } catch (error) {
        if (item.out !== endpoint) return;
        const after = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
        item.out = null;
        item.lastRefusal = error instanceof Error ? error.message : String(error);
        item.notBefore = Date.now() + (typeof after === 'number' ? Math.min(after, 50) : this.chance.int(1, 10));
      }
    });
    this.track(
      Promise.all(settled).then(() => {
        endpoint.busy = false;
      }),
    );
  }
}

function shuffled<T>(items: T[], chance: Chance): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = chance.int(0, i);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}
