import { WorkerError } from '../errors.js';

/**
 * A counting semaphore with FIFO waiters. The worker pool shares one across its per-task BullMQ
 * workers so the pool's total concurrency is bounded, whatever the number of tasks.
 * `close()` rejects current and future waiters (so claimed-but-unstarted jobs can be handed
 * back to the queue during a drain); permits already held are released normally.
 */
export class Semaphore {
  private available: number;
  private readonly waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private closed = false;

  constructor(permits: number) {
    this.available = permits;
  }

  acquire(): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (this.available > 0) {
      this.available -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next.resolve(); // the permit passes straight to the next waiter
    else this.available += 1;
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(closedError());
  }

  get waiting(): number {
    return this.waiters.length;
  }
}

function closedError(): WorkerError {
  return new WorkerError('POOL_CLOSING', 'worker pool is closing', { retryable: true });
}
