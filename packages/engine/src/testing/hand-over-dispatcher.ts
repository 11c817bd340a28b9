import type { AttemptResult, AttemptResultsHandler, AttemptToCancel, TaskAttempt, TaskDispatcher } from '../ports/task-dispatcher.js';

/** A transport the test drives: it keeps what is dispatched and cancelled, and hands over the results the test makes. */
export class HandOverDispatcher implements TaskDispatcher {
  readonly pool = 'test-hand-over';
  readonly dispatched: TaskAttempt[] = [];
  readonly cancelled: AttemptToCancel[] = [];
  handler: AttemptResultsHandler | undefined;
  dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    this.dispatched.push(...attempts);
    return Promise.resolve();
  }
  onResults(handler: AttemptResultsHandler): void {
    this.handler = handler;
  }
  cancel(attempts: readonly AttemptToCancel[]): Promise<void> {
    this.cancelled.push(...attempts);
    return Promise.resolve();
  }
  handOver(results: readonly AttemptResult[]): readonly Promise<void>[] {
    if (this.handler === undefined) throw new Error('no handler');
    return this.handler(results);
  }
  /** The first attempt dispatched for the node. */
  of(nodeId: string): TaskAttempt | undefined {
    return this.dispatched.find((attempt) => attempt.nodeId === nodeId);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Resolves once `check` holds (polled every 2 ms, up to ~1 s). */
export async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}
