import type { TaskImplementation, TaskRegistry } from '@memoflow/engine';
import { WorkerError } from './errors.js';

/**
 * Builds the name -> implementation map a worker runs from. Two implementations with one name
 * are a definition error (which one ran would depend on order), not a silent override.
 */
export function toTaskRegistry(tasks: readonly TaskImplementation[] | TaskRegistry): TaskRegistry {
  if (!Array.isArray(tasks)) return tasks as TaskRegistry;
  const registry = new Map<string, TaskImplementation>();
  for (const task of tasks as readonly TaskImplementation[]) {
    if (registry.has(task.name)) {
      throw new WorkerError('DUPLICATE_TASK_NAME', `task '${task.name}' is registered twice`);
    }
    registry.set(task.name, task);
  }
  return registry;
}
