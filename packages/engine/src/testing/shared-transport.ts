import type { Json } from '../json.js';
import type { AttemptResult, AttemptResultsHandler, TaskAttempt, TaskDispatcher } from '../ports/task-dispatcher.js';

/** A dispatcher of a SharedTransport, with what a test may look at. */
export interface SharedTransportDispatcher extends TaskDispatcher {
  readonly address: string;
  /** Results its handler took (resolved), by attempt id. */
  readonly took: string[];
  /** Results it routed to another controller, by attempt id. */
  readonly routed: string[];
  /** Stops it: attempts it sent come back through the shared fallback from now on. */
  close(): Promise<void>;
}

interface Endpoint {
  dispatcher: SharedTransportDispatcher;
  handler: AttemptResultsHandler | undefined;
  open: boolean;
}

let addresses = 0;

/**
 * One queue for the dispatchers of several controllers, in memory, routed as BullMQ routes: an
 * attempt remembers the address of the dispatcher that sent it and its result goes back there while
 * that dispatcher is open, else to any open one (the shared fallback stream); `route` hands a result
 * to another open dispatcher. A result whose handler rejects is handed over again after the error's
 * `retryAfterMs` (else 10 ms), like the stream's pending entries. Attempts are idempotent per id.
 * Task bodies are one function of the attempt.
 */
export class SharedTransport {
  /** Attempt ids run. */
  readonly executed: string[] = [];
  /** Node ids whose next dispatch is swallowed (the controller died before it reached the queue). */
  readonly lose = new Set<string>();
  /** Overrides where a result goes (by default: the dispatcher that sent its attempt, if open). */
  pick: ((result: AttemptResult, sentBy: string) => string | undefined) | undefined;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly seen = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private fallback = 0;

  constructor(private readonly run: (attempt: TaskAttempt) => Json) {}

  dispatcher(options: { address?: string; pool?: string; route?: boolean } = {}): SharedTransportDispatcher {
    // Unique across transports too: the address is its controller's lease owner id.
    const address = options.address ?? `c${++addresses}`;
    const dispatcher: SharedTransportDispatcher = {
      address,
      pool: options.pool ?? 'queue:shared',
      took: [],
      routed: [],
      dispatch: async (attempts) => {
        for (const attempt of attempts) {
          if (this.lose.delete(attempt.nodeId) || this.seen.has(attempt.id)) continue;
          this.seen.add(attempt.id);
          this.track(this.execute(attempt, address));
        }
      },
      onResults: (handler) => {
        endpoint.handler = handler;
      },
      cancel: async () => undefined,
      close: async () => {
        endpoint.open = false;
      },
    };
    if (options.route !== false) {
      dispatcher.route = async (result, owner) => {
        const target = this.endpoints.get(owner);
        if (target?.open !== true) throw new Error(`no controller at ${owner}`);
        dispatcher.routed.push(result.attemptId);
        this.track(this.deliver(result, owner, true));
      };
    }
    const endpoint: Endpoint = { dispatcher, handler: undefined, open: true };
    this.endpoints.set(address, endpoint);
    return dispatcher;
  }

  /** Settles once nothing is running or waiting to be delivered. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async execute(attempt: TaskAttempt, sentBy: string): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.executed.push(attempt.id);
    const now = new Date();
    const result: AttemptResult = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: now, finishedAt: now, ok: true, output: this.run(attempt), outputHash: null };
    await this.deliver(result, sentBy);
  }

  /** To `preferred` while it is open (`pick` may choose otherwise, except for a routed result), else to the next open endpoint; again after a rejection. */
  private async deliver(result: AttemptResult, preferred: string, routed = false): Promise<void> {
    for (let tries = 0; tries < 500; tries++) {
      const chosen = (routed ? undefined : this.pick?.(result, preferred)) ?? preferred;
      const endpoint = this.endpoints.get(chosen)?.open === true ? this.endpoints.get(chosen) : this.anyOpen();
      if (endpoint?.handler === undefined) {
        // Nobody open to take it yet: it waits, as an entry waits in the stream.
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      try {
        // One result a batch: each is delivered (and handed over again) on its own.
        await endpoint.handler([result])[0];
        endpoint.dispatcher.took.push(result.attemptId);
        return;
      } catch (error) {
        const after = (error as { retryAfterMs?: unknown }).retryAfterMs;
        await new Promise((resolve) => setTimeout(resolve, typeof after === 'number' ? Math.min(after, 200) : 10));
      }
    }
    throw new Error(`result ${result.attemptId} was refused 500 times`);
  }

  private anyOpen(): Endpoint | undefined {
    const open = [...this.endpoints.values()].filter((e) => e.open && e.handler !== undefined);
    return open[this.fallback++ % Math.max(1, open.length)];
  }
}
