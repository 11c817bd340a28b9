import { Command, CommanderError, Option } from 'commander';
import { MemoflowError, shortKey } from '@memoflow/engine';
import { connect, DEFAULT_DOMAIN, DEFAULT_PROJECT, type Memoflow } from '../client/connect.js';
import { DEFAULT_CANCEL_WAIT_MS } from '../client/run-handle.js';
import { createEventLog, lostWritesNote, type EventSink } from '../log/event-log.js';
import { cutoffLines, formatDuration, savedComputeLine } from '../log/saved-compute.js';
import { specGraph } from '../client/run-graph.js';
import { LiveView } from './live-view.js';
import { loadUserModule, pickWorkflow } from './load-module.js';
import { positiveInteger, resumePoint } from './flag-parsers.js';
import { addRetryCommand } from './retry-command.js';
import { addUiCommand, startRunUi, uiPortFlag } from './ui-command.js';
import { addExplainCommand } from './explain-command.js';
import { addPlanCommand } from './plan-command.js';
import { reportRun } from './run-report.js';
import { collectInputs, parseInputs } from './parse-inputs.js';
import { describeUnexpected } from './unexpected-error.js';
import { addProcessCommands } from './process-commands.js';
import { printTable } from './table.js';
import { outputWidth, runTreeLines } from './runs-show-tree.js';

export interface StorageFlags {
  dataDir?: string;
  schema?: string;
  json?: boolean;
  verbose?: boolean;
}

/** Runs the CLI; resolves with the process exit code (0 ok, 1 run failed, 2 bad input or usage). */
export async function main(argv: readonly string[]): Promise<number> {
  installLastResortHandlers();
  let exitCode = 0;
  const program = new Command('memoflow')
    .description('memoflow: typed workflows with a caching DAG scheduler')
    .exitOverride()
    // One line per mistake: commander puts its "(Did you mean --input?)" on a line of its own.
    .configureOutput({ outputError: (text, write) => write(`${oneLine(text.trim())}\n`) });

  const withStorage = (command: Command) =>
    command
      .addOption(new Option('--data-dir <dir>', 'embedded mode: where the catalog and run store live').env('MEMOFLOW_DATA_DIR').default('.memoflow'))
      .addOption(new Option('--schema <schema>', 'with DATABASE_URL: the Postgres schema').env('MEMOFLOW_SCHEMA'))
      .option('--json', 'structured (JSON) output');

  withStorage(
    program
      .command('run')
      .description('run a workflow from a module, e.g. memoflow run ./flows.ts etl.main --input rows=[1,-2,3]')
      .argument('<file>', 'module exporting the workflow and its tasks (.ts or .js)')
      .argument('<workflow>', 'workflow name')
      .option('-i, --input <name=value...>', 'an input (JSON when it fits the schema, else a string; @file.json reads a file); each name once', collectInputs, [])
      .option('--inputs-file <file>', 'a JSON object of inputs')
      .option('--project <project>', 'project (cache entries are never shared across projects)', DEFAULT_PROJECT)
      .option('--domain <domain>', 'domain (cache entries are never shared across domains)', DEFAULT_DOMAIN)
      .option('--overwrite-cache', 'execute every node and overwrite its cache entry')
      .option('--resume-from <run:node>', "reuse that run's results for the nodes not downstream of node; rerun node and its downstream", resumePoint)
      .option('--concurrency <n>', 'tasks run at once (embedded mode)', positiveInteger)
      .option('--ui [port]', 'serve the web UI from this process while the run runs (default port 4545; --ui=0 picks one)', uiPortFlag)
      .option('--verbose', 'a line per node event (running, done, cached), not one per node when it settles'),
  ).action(async (file: string, name: string, flags: StorageFlags & { input: string[]; inputsFile?: string; project: string; domain: string; overwriteCache?: boolean; resumeFrom?: { run: string; node: string }; concurrency?: number; ui?: true | number; verbose?: boolean }) => {
    const module = await loadUserModule(file);
    const workflow = pickWorkflow(module, name);
    const inputs = parseInputs(workflow, flags.input, flags.inputsFile);
    // A bad definition or input is refused before the store opens: a typo must not wait for
    // PGlite to start (seconds), create a data directory, or need the database at all.
    void workflow.spec;
    workflow.prepareInputs(inputs);
    // On a terminal the run is drawn live; piped, with --json or --verbose, it is plain lines.
    const live = flags.json !== true && flags.verbose !== true && process.stderr.isTTY ? new LiveView({ stream: process.stderr, graph: specGraph(workflow.spec) }) : undefined;
    const mf = await open(flags, flags.concurrency, false, live?.sink);
    let ui: Awaited<ReturnType<typeof startRunUi>> | undefined;
    try {
      if (flags.ui !== undefined) ui = await startRunUi(mf, flags.ui, flags.json === true);
      const run = await mf.run(workflow, inputs, {
        project: flags.project,
        domain: flags.domain,
        overwriteCache: flags.overwriteCache === true,
        ...(flags.resumeFrom === undefined ? {} : { resumeFrom: flags.resumeFrom }),
        // Recorded with the run, so `memoflow runs retry` finds the workflow without the file.
        source: { module: module.path, workflow: workflow.workflowName },
      });
      live?.follow(run.id, () => mf.runs.graph(run.id));
      if (live !== undefined) {
        // The last frame goes before the summary, or the next redraw would erase it.
        await run.wait();
        live.finish();
      }
      exitCode = await reportRun(run, flags.json === true);
    } finally {
      live?.finish();
      await ui?.close();
      await mf.close();
    }
  });

  const runs = program.command('runs').description('read the run store');
  withStorage(runs.command('ls').description('list runs, newest first'))
    .option('--workflow <name>', 'only runs of this workflow')
    .option('--limit <n>', 'at most this many', positiveInteger, 20)
    .action(async (flags: StorageFlags & { workflow?: string; limit: number }) => {
      await withClient(flags, async (mf) => {
        const list = await mf.runs.list({ limit: flags.limit, ...(flags.workflow === undefined ? {} : { workflow: flags.workflow }) });
        if (flags.json === true) return printJson(list);
        printTable(
          ['RUN', 'WORKFLOW', 'STATUS', 'PROJECT/DOMAIN', 'STARTED', 'DURATION'],
          list.map((run) => [run.id, run.workflow, run.status, `${run.project}/${run.domain}`, run.createdAt.toISOString(), run.finishedAt === null ? '-' : `${run.finishedAt.getTime() - run.createdAt.getTime()} ms`]),
        );
      });
    });
  addRetryCommand(runs, withStorage, (flags, concurrency, log) => open(flags, concurrency, false, log), (code) => {
    exitCode = code;
  });
  withStorage(runs.command('show').description("draw a run's DAG with each node's status, cache status, key and duration").argument('<run>', 'run id')).action(async (id: string, flags: StorageFlags) => {
    await withClient(flags, async (mf) => {
      const report = await mf.runs.show(id);
      if (flags.json === true) return printJson(report);
      process.stdout.write(`run ${report.id}  ${report.workflow}  ${report.status}  ${report.project}/${report.domain}  ${report.createdAt.toISOString()}\n`);
      if (report.resumedFrom !== null) process.stdout.write(`resumed from run ${report.resumedFrom.run} at node ${report.resumedFrom.node}\n`);
      if (report.retryOf !== null) process.stdout.write(`retry of run ${report.retryOf}\n`);
      if (report.error !== null) process.stdout.write(`error: ${report.error.message}\n`);
      const lost = lostWritesNote(report.nodes);
      if (lost !== '') process.stdout.write(`${lost.slice(2)}\n`);
      process.stdout.write([savedComputeLine(report.nodes), ...cutoffLines(report.nodes)].map((line) => `${line}\n`).join(''));
      const graph = await mf.runs.graph(id);
      for (const line of runTreeLines(report, graph, outputWidth())) process.stdout.write(`${line}\n`);
      if (report.outputs !== null) process.stdout.write(`outputs: ${JSON.stringify(report.outputs)}\n`);
    });
  });

  withStorage(
    runs
      .command('cancel')
      .description('cancel a running run: pending nodes never start, running attempts see their signal abort, nothing unfinished is cached')
      .argument('<run>', 'run id')
      .option('--wait <ms>', "how long to wait for the run's controller to apply it", positiveInteger, DEFAULT_CANCEL_WAIT_MS),
  ).action(async (id: string, flags: StorageFlags & { wait: number }) => {
    await withClient(flags, async (mf) => {
      const result = await mf.getRun(id).cancel({ waitMs: flags.wait, reason: 'cancelled with memoflow runs cancel' });
      if (flags.json === true) return printJson({ runId: id, ...result });
      process.stdout.write(`${result.message}\n`);
    });
  });

  const cache = program.command('cache').description('manage cache entries');
  withStorage(cache.command('ls').description('list cache entries, newest first'))
    .option('--task <name>', 'only entries of this task')
    .option('--run <id>', 'only entries written by this run')
    .option('--limit <n>', 'at most this many', positiveInteger, 50)
    .action(async (flags: StorageFlags & { task?: string; run?: string; limit: number }) => {
      await withClient(flags, async (mf) => {
        const entries = await mf.cache.list({ limit: flags.limit, ...(flags.task === undefined ? {} : { task: flags.task }), ...(flags.run === undefined ? {} : { runId: flags.run }) });
        if (flags.json === true) return printJson(entries);
        printTable(
          ['KEY', 'TASK', 'KIND', 'PROJECT/DOMAIN', 'VERSION', 'RUN', 'NODE', 'COMPUTE', 'CREATED'],
          entries.map((e) => [shortKey(e.key), e.task, e.kind, `${e.project}/${e.domain}`, e.parts.version, e.runId, e.nodeId, formatDuration(e.durationMs), e.createdAt.toISOString()]),
        );
      });
    });
  const kindOption = () =>
    new Option('--kind <kind>', "only outputs, or only dynamic nodes' futures (evicting a dynamic node's output but not its future makes its next run a FUTURE_HIT)").choices(['output', 'future']);
  withStorage(cache.command('evict').description('remove the entries a run wrote').requiredOption('--run <id>', 'run id').addOption(kindOption())).action(async (flags: StorageFlags & { run: string; kind?: 'output' | 'future' }) => {
    await withClient(flags, async (mf) => {
      const removed = await mf.cache.evict({ runId: flags.run, ...(flags.kind === undefined ? {} : { kind: flags.kind }) });
      process.stdout.write(`evicted ${removed} entr${removed === 1 ? 'y' : 'ies'} written by run ${flags.run}\n`);
    });
  });
  withStorage(cache.command('clear').description('remove all entries, or those of one task').option('--task <name>', 'only this task').addOption(kindOption())).action(async (flags: StorageFlags & { task?: string; kind?: 'output' | 'future' }) => {
    await withClient(flags, async (mf) => {
      const removed = await mf.cache.evict({ ...(flags.task === undefined ? {} : { task: flags.task }), ...(flags.kind === undefined ? {} : { kind: flags.kind }) });
      process.stdout.write(`cleared ${removed} entr${removed === 1 ? 'y' : 'ies'}${flags.task === undefined ? '' : ` of task ${flags.task}`}\n`);
    });
  });

  addExplainCommand(cache, withStorage, (flags) => open(flags, undefined, true));
  addPlanCommand(program, withStorage, (flags) => open(flags, undefined, true));
  addProcessCommands(program);
  addUiCommand(program, withStorage, (flags) => open(flags, undefined, true));

  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof MemoflowError) {
      process.stderr.write(`memoflow: ${error.code}: ${oneLine(error.message)}\n`);
      return error.code === 'RUN_FAILED' ? 1 : 2;
    }
    const unexpected = describeUnexpected(error);
    process.stderr.write(`${unexpected.line}\n`);
    return unexpected.exitCode;
  }
}

async function open(flags: StorageFlags, concurrency?: number, readOnly = false, log?: EventSink): Promise<Memoflow> {
  return connect({
    ...(flags.dataDir === undefined ? {} : { dataDir: flags.dataDir }),
    ...(flags.schema === undefined ? {} : { schema: flags.schema }),
    ...(concurrency === undefined ? {} : { concurrency }),
    // Reading runs or the cache needs no task queue: without Redis this process never takes a
    // task result that a running controller should have.
    ...(readOnly ? { redisUrl: '' } : {}),
    log: log ?? createEventLog(flags.json === true ? { format: 'json', stream: process.stdout } : { format: 'pretty', stream: process.stderr, verbose: flags.verbose === true }),
  });
}

async function withClient(flags: StorageFlags, body: (mf: Memoflow) => Promise<void>): Promise<void> {
  const mf = await open(flags, undefined, true);
  try {
    await body(mf);
  } finally {
    await mf.close();
  }
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').slice(0, 2000);
}

let handlersInstalled = false;

/**
 * An error thrown where no await catches it (a driver's background socket, a user's timer) ends
 * the CLI with one line, like every other error, instead of Node's stack dump.
 */
function installLastResortHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const fatal = (error: unknown): void => {
    const unexpected = describeUnexpected(error);
    process.stderr.write(`${unexpected.line}\n`);
    process.exit(unexpected.exitCode);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}
