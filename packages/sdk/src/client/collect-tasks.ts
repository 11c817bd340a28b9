import { MemoflowError } from '@memoflow/engine';
import type { AnyTask, Callable } from '../define/task.js';

/**
 * Every task a worker must run for `roots`: the tasks and dynamics themselves, the tasks a
 * dynamic declares (its body calls them, on whatever worker runs it), recursively, and every task
 * of a workflow. Two different definitions under one name are an error: they would share a queue
 * and cache entries.
 */
export function collectTasks(roots: Iterable<Callable>): Map<string, AnyTask> {
  const tasks = new Map<string, AnyTask>();
  const visit = (callable: Callable): void => {
    if (callable.kind === 'workflow') {
      for (const task of callable.tasks.values()) visit(task);
      return;
    }
    const known = tasks.get(callable.taskName);
    if (known === callable) return;
    if (known !== undefined) {
      throw new MemoflowError('DUPLICATE_TASK_NAME', `two different tasks are named '${callable.taskName}'; a worker can run only one of them`, { node: callable.taskName, field: 'name' });
    }
    tasks.set(callable.taskName, callable);
    for (const child of callable.children) visit(child);
  };
  for (const root of roots) visit(root);
  return tasks;
}
