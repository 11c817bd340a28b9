import type { Json } from '../json.js';
import type { AttemptResult, AttemptResultsHandler, TaskAttempt, TaskDispatcher } from '../ports/task-dispatcher.js';

export type InlineTask = (inputs: { [name: string]: Json }, attempt: TaskAttempt) => Json;

/**
 * A TaskDispatcher for the engine's tests that runs tasks from a map in this process; results
 * arrive after `dispatch` resolves, as with a queue, and a task that throws fails its attempt
 * (retryable). `gate`, if given, is awaited before each attempt runs (a worker that is busy until
 * the test lets it go); `hash`, if given, gives an output's `hashWith` hash (default: none).
 */
export class InlineDispatcher implements TaskDispatcher {
  /** Attempt ids run, in order (an attempt dispatched twice runs twice). */
  readonly executed: string[] = [];
  #handler: AttemptResultsHandler | undefined;
  readonly #running = new Set<Promise<void>>();

  constructor(
    private readonly tasks: { [task: string]: InlineTask },
    private readonly options: { pool?: string; gate?: () => Promise<void>; hash?: (output: Json, attempt: TaskAttempt) => string | null } = {},
  ) {}

  get pool(): string {
    return this.options.pool ?? 'inline';
  }

  async dispatch(attempts: readonly TaskAttempt[]): Promise<void> {
    await Promise.resolve();
    for (const attempt of attempts) {
      const running = this.#run(attempt).finally(() => this.#running.delete(running));
      this.#running.add(running);
    }
  }

  onResults(handler: AttemptResultsHandler): void {
    this.#handler = handler;
  }

  /** Nothing to stop: an inline attempt runs to its end (its result is then stale for a cancelled run). */
  async cancel(): Promise<void> {}

  async close(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  async #run(attempt: TaskAttempt): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    await this.options.gate?.();
    this.executed.push(attempt.id);
    const base = { attemptId: attempt.id, runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt, startedAt: new Date() };
    let result: AttemptResult;
    try {
      const fn = this.tasks[attempt.task];
      if (fn === undefined) throw new Error(`task ${attempt.task} is not registered`);
      const output = fn(attempt.inputs, attempt);
      result = { ...base, finishedAt: new Date(), ok: true, output, outputHash: this.options.hash?.(output, attempt) ?? null };
    } catch (error) {
      result = { ...base, finishedAt: new Date(), ok: false, error: { name: 'Error', message: String(error), retryable: true } };
    }
    // One result per batch: these tests count reads and saves, not batching.
    const [saved] = this.#handler?.([result]) ?? [];
    await saved?.catch(() => undefined);
  }
}
