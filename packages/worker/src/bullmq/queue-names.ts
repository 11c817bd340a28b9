import { WorkerError } from '../errors.js';

/** The BullMQ key prefix when none is given: every memoflow key starts with `memoflow:`. */
export const DEFAULT_PREFIX = 'memoflow';

/**
 * One queue per task. A pool listens only on the queues of the tasks registered with it, so it
 * never receives an attempt it cannot run, pools with different task sets share one Redis, and
 * "does any worker serve this task?" is `Queue.getWorkers()` on that task's queue.
 * BullMQ forbids `:` in queue names, so it is escaped (with `%`, itself escaped first).
 */
export function taskQueueName(task: string): string {
  return `task.${task.replaceAll('%', '%25').replaceAll(':', '%3A')}`;
}

/** BullMQ rejects custom job ids with `:`; fail at dispatch with a message that says why. */
export function assertJobId(id: string): void {
  if (id === '' || id.includes(':') || /^\d+$/.test(id)) {
    throw new WorkerError(
      'INVALID_OPTION',
      `attempt id '${id}' cannot be a BullMQ job id (it must be non-empty, not all digits, and contain no ':')`,
    );
  }
}

/**
 * The Redis pub/sub channel of a prefix's cancellations: controllers publish `{ "attempts": [ids] }`
 * (BullMqTaskDispatcher.cancel) and every worker pool of the prefix subscribes, aborting the
 * attempts it runs and never starting those it claims later (AttemptCancellations).
 */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}
