import type { Command } from 'commander';
import { MemoflowError } from '@memoflow/engine';
import type { Memoflow } from '../client/connect.js';
import { loadUserModule, pickWorkflow } from './load-module.js';
import { positiveInteger } from './flag-parsers.js';
import { reportRun } from './run-report.js';
import type { StorageFlags } from './main.js';

/**
 * `memoflow runs retry <run>`: a new run of the run's workflow, inputs, project and domain that
 * reuses what succeeded and runs what did not. The workflow is loaded from the file the run was
 * started from (recorded with it), or from `--file`; its current definitions decide what is
 * unchanged. The plan (reused / to run) is printed before anything starts (the `plan` line).
 */
export function addRetryCommand(
  runs: Command,
  withStorage: (command: Command) => Command,
  open: (flags: StorageFlags, concurrency?: number) => Promise<Memoflow>,
  setExitCode: (code: number) => void,
): void {
  withStorage(
    runs
      .command('retry')
      .description('retry a run: reuse what succeeded, run what failed, was aborted or cancelled, and its downstream')
      .argument('<run>', 'run id')
      .option('--file <file>', 'the module to load the workflow from (default: the file the run was started from)')
      .option('--concurrency <n>', 'tasks run at once (embedded mode)', positiveInteger)
      .option('--verbose', 'a line per node event (running, done, cached), not one per node when it settles'),
  ).action(async (runId: string, flags: StorageFlags & { file?: string; concurrency?: number }) => {
    const mf = await open(flags, flags.concurrency);
    try {
      const earlier = await mf.runs.show(runId);
      const file = flags.file ?? earlier.source?.module;
      if (file === undefined) {
        throw new MemoflowError('INVALID_OPTION', `run ${runId} was not started from a file by the CLI, so its workflow cannot be loaded: pass --file <file>`, { workflow: earlier.workflow, field: 'file' });
      }
      const module = await loadUserModule(file);
      const workflow = pickWorkflow(module, earlier.source?.workflow ?? earlier.workflow);
      const run = await mf.retry(runId, { workflow, source: { module: module.path, workflow: workflow.workflowName } });
      setExitCode(await reportRun(run, flags.json === true));
    } finally {
      await mf.close();
    }
  });
}
