import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';
import { MemoflowError } from '@memoflow/engine';
import { isTaskDefinition, type AnyTask } from '../define/task.js';
import { isWorkflowDefinition, type AnyWorkflow } from '../define/workflow.js';

let registered = false;

export interface UserModule {
  path: string;
  workflows: Map<string, AnyWorkflow>;
  tasks: Map<string, AnyTask>;
}

/**
 * Imports a user's flows module (TypeScript or JavaScript) and collects the workflows and tasks it
 * exports, by their names. TypeScript is loaded through tsx's loader, registered once, so the module
 * shares this process's copy of @memoflow/sdk.
 */
export async function loadUserModule(file: string): Promise<UserModule> {
  const path = resolve(file);
  if (!existsSync(path)) throw new MemoflowError('UNKNOWN_WORKFLOW', `no such file: ${file}`, { field: 'file' });
  if (!registered) {
    register();
    registered = true;
  }
  const exports = (await import(pathToFileURL(path).href)) as { [name: string]: unknown };
  const workflows = new Map<string, AnyWorkflow>();
  const tasks = new Map<string, AnyTask>();
  for (const value of Object.values(exports)) {
    if (isWorkflowDefinition(value)) workflows.set(value.workflowName, value);
    else if (isTaskDefinition(value)) tasks.set(value.taskName, value);
  }
  return { path, workflows, tasks };
}

export function pickWorkflow(module: UserModule, name: string): AnyWorkflow {
  const found = module.workflows.get(name);
  if (found !== undefined) return found;
  const known = [...module.workflows.keys()].sort();
  throw new MemoflowError(
    'UNKNOWN_WORKFLOW',
    `${module.path} exports no workflow named '${name}' (${known.length === 0 ? 'it exports no workflows' : `workflows: ${known.join(', ')}`})`,
    { workflow: name },
  );
}
