import { MemoflowError } from '@memoflow/engine';
import { startWorker as startTaskWorker, type StartWorkerOptions as TaskWorkerOptions, type WorkerPool } from '@memoflow/worker';
import type { AnyTask, Callable } from '../define/task.js';
import { isTaskDefinition } from '../define/task.js';
import { isWorkflowDefinition } from '../define/workflow.js';
import { collectTasks } from './collect-tasks.js';
import { checkRedis } from './open-storage.js';

export interface StartWorkerOptions extends Omit<TaskWorkerOptions, 'tasks' | 'redisUrl'> {
  /**
   * The tasks this pool runs, as defined with `task()` / `dynamic()` (or whole workflows: all their
   * tasks). A dynamic's declared tasks are registered with it.
   */
  tasks: readonly (AnyTask | Callable)[];
  /** `redis://...` (default: `REDIS_URL`); or give `connection`. */
  redisUrl?: string;
}

export type { WorkerPool };

/**
 * Starts a worker pool for task definitions: `startWorker({ tasks: [clean, total], redisUrl })`.
 * Resolves once the pool listens on every task's queue; `close()` drains it. A Redis that cannot be
 * reached fails here, within seconds, instead of retrying in the background for ever.
 */
export async function startWorker(options: StartWorkerOptions): Promise<WorkerPool> {
  const { tasks: given, redisUrl: url, ...rest } = options;
  if (!Array.isArray(given) || given.length === 0) {
    throw new MemoflowError('INVALID_OPTION', 'startWorker needs `tasks`: the task definitions (task() or dynamic()) this pool runs', { field: 'tasks' });
  }
  given.forEach((value: unknown, index) => {
    if (!isTaskDefinition(value) && !isWorkflowDefinition(value)) {
      throw new MemoflowError('INVALID_OPTION', `tasks[${index}] is not a task, dynamic or workflow definition (pass the value task() returned, not its .implementation)`, { field: `tasks[${index}]` });
    }
  });
  const tasks = collectTasks(given);
  const redisUrl = url ?? (process.env['REDIS_URL'] === '' ? undefined : process.env['REDIS_URL']);
  if (rest.connection === undefined) {
    if (redisUrl === undefined) throw new MemoflowError('INVALID_OPTION', 'startWorker needs Redis: pass `redisUrl` or set REDIS_URL', { field: 'redisUrl' });
    await checkRedis(redisUrl);
  }
  if (rest.concurrency !== undefined && (!Number.isSafeInteger(rest.concurrency) || rest.concurrency < 1)) {
    throw new MemoflowError('INVALID_OPTION', `concurrency must be a positive integer, got ${String(rest.concurrency)}`, { field: 'concurrency' });
  }
  return startTaskWorker({
    ...rest,
    ...(redisUrl === undefined ? {} : { redisUrl }),
    tasks: [...tasks.values()].map((task) => task.implementation),
  });
}
