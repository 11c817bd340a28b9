import type { Command } from 'commander';
import { pino } from 'pino';
import { Controller, MemoflowError, type EngineEvent } from '@memoflow/engine';
import { BullMqTaskDispatcher, drainOnSignals, startWorker } from '@memoflow/worker';
import { collectTasks } from '../client/collect-tasks.js';
import { checkRedis, openDatabaseStorage } from '../client/open-storage.js';
import { closeWithin } from '../client/close-within.js';
import { createEventLog } from '../log/event-log.js';
import { integerFlag, positiveInteger, timerMilliseconds } from './flag-parsers.js';
import { loadUserModule } from './load-module.js';

/**
 * The long-running processes of the distributed mode: `memoflow worker` (a pool running the tasks a
 * module exports) and `memoflow controller` (a standalone controller). Both stop gracefully on
 * SIGTERM/SIGINT: a pool finishes its running attempts and publishes their results first.
 */
export function addProcessCommands(program: Command): void {
  program
    .command('worker')
    .description('run a worker pool for every task a module exports (and every task its workflows call)')
    .argument('<file>', 'module exporting tasks or workflows (.ts or .js)')
    .option('--concurrency <n>', 'attempts run at once by this pool', positiveInteger, 8)
    .option('--lock-duration <ms>', "how long an attempt's job lock lasts without renewal: a killed worker's attempts are taken over after about this long", timerMilliseconds)
    .option('--stalled-interval <ms>', 'how often this pool looks for attempts whose worker died', timerMilliseconds)
    .option('--max-stalled <n>', 'times an attempt may stall before it fails (retryable) instead of being taken over', integerFlag({ min: 0 }))
    .option('--timeout-grace <ms>', 'how long a timed-out attempt keeps its slot while its body honours the abort (default 10000)', timerMilliseconds)
    .option('--redis-url <url>', 'Redis for the task queues (default: REDIS_URL)')
    .option('--prefix <prefix>', 'BullMQ key prefix (default: MEMOFLOW_PREFIX or memoflow)')
    .option('--json', 'JSON log lines (default: pretty)')
    .action(async (file: string, flags: { concurrency: number; lockDuration?: number; stalledInterval?: number; maxStalled?: number; timeoutGrace?: number; redisUrl?: string; prefix?: string; json?: boolean }) => {
      const redisUrl = flags.redisUrl ?? process.env['REDIS_URL'];
      if (redisUrl === undefined || redisUrl === '') throw new MemoflowError('INVALID_SPEC', 'a worker needs Redis: pass --redis-url or set REDIS_URL', { field: 'redisUrl' });
      const stopSignals = catchStopSignalsDuringStartup();
      const module = await loadUserModule(file);
      await checkRedis(redisUrl);
      // Exported tasks, every task of exported workflows, and what exported dynamics declare.
      const tasks = collectTasks([...module.tasks.values(), ...module.workflows.values()]);
      if (tasks.size === 0) throw new MemoflowError('UNKNOWN_TASK', `${module.path} exports no tasks or workflows`, { field: 'file' });
      const logger = processLogger(flags.json === true);
      const pool = await startWorker({
        tasks: [...tasks.values()].map((task) => task.implementation),
        redisUrl,
        prefix: flags.prefix ?? process.env['MEMOFLOW_PREFIX'] ?? 'memoflow',
        concurrency: flags.concurrency,
        logger,
        ...(flags.lockDuration === undefined ? {} : { lockDurationMs: flags.lockDuration }),
        ...(flags.stalledInterval === undefined ? {} : { stalledIntervalMs: flags.stalledInterval }),
        ...(flags.maxStalled === undefined ? {} : { maxStalledCount: flags.maxStalled }),
        ...(flags.timeoutGrace === undefined ? {} : { timeoutGraceMs: flags.timeoutGrace }),
      });
      logger.info({ pool: pool.name, prefix: pool.prefix, concurrency: flags.concurrency, tasks: pool.tasks }, `worker pool ${pool.name} serving ${pool.tasks.length} task(s): ${pool.tasks.join(', ')}`);
      await untilClosed(pool, logger, stopSignals);
    });

  program
    .command('controller')
    .description('run a standalone controller: drives the runs it leases, takes their task results, takes over runs whose controller died')
    .option('--database-url <url>', 'Postgres for the catalog and run store (default: DATABASE_URL)')
    .option('--schema <schema>', 'Postgres schema (default: MEMOFLOW_SCHEMA or memoflow)', process.env['MEMOFLOW_SCHEMA'] ?? 'memoflow')
    .option('--redis-url <url>', 'Redis for the task queues (default: REDIS_URL)')
    .option('--prefix <prefix>', 'BullMQ key prefix (default: MEMOFLOW_PREFIX or memoflow)')
    .option('--lease <ms>', "how long a run stays with this controller without a renewal: a dead controller's runs are taken over after about this long", timerMilliseconds, 10_000)
    .option('--stale-after <ms>', 'the former name of --lease', timerMilliseconds)
    .option('--json', 'JSON log lines (default: pretty)')
    .action(async (flags: { databaseUrl?: string; schema: string; redisUrl?: string; prefix?: string; lease: number; staleAfter?: number; json?: boolean }) => {
      const databaseUrl = flags.databaseUrl ?? process.env['DATABASE_URL'];
      const redisUrl = flags.redisUrl ?? process.env['REDIS_URL'];
      if (!databaseUrl || !redisUrl) throw new MemoflowError('INVALID_SPEC', 'a controller needs DATABASE_URL and REDIS_URL (or --database-url and --redis-url)', { field: databaseUrl ? 'redisUrl' : 'databaseUrl' });
      const leaseMs = flags.staleAfter ?? flags.lease;
      const stopSignals = catchStopSignalsDuringStartup();
      await checkRedis(redisUrl);
      const storage = await openDatabaseStorage(databaseUrl, flags.schema);
      // A dead controller's results stream is handed to the others after the same time as its leases.
      const dispatcher = new BullMqTaskDispatcher({ connection: redisUrl, prefix: flags.prefix ?? process.env['MEMOFLOW_PREFIX'] ?? 'memoflow', resultClaimIdleMs: leaseMs });
      const emit: (event: EngineEvent) => void = createEventLog({ format: flags.json === true ? 'json' : 'pretty', stream: process.stdout });
      const controller = new Controller({ catalog: storage.catalog, runStore: storage.runStore, dispatcher, onEvent: emit, leaseMs });
      const recovered = await controller.recoverUnowned();
      const logger = processLogger(flags.json === true);
      logger.info({ recovered, id: controller.id, leaseMs }, `controller started as ${controller.id}; took over ${recovered.length} unleased run(s)`);
      // Sweeps four times per lease: a dead controller's runs continue within about 1.25 leases.
      controller.startSweeper({ intervalMs: Math.max(250, Math.floor(leaseMs / 4)) });
      await untilClosed(
        {
          close: async () => {
            await closeWithin('the controller', () => controller.close(), logger);
            await closeWithin('the task queues', () => dispatcher.close(), logger);
            await closeWithin('the database', () => storage.close(), logger);
          },
        },
        logger,
        stopSignals,
      );
    });
}

function processLogger(json: boolean) {
  return json ? pino({ base: null }) : pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ sync: true }));
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * SIGTERM/SIGINT listeners from the first moment of a worker's or controller's start. Without a
 * listener a signal takes its default action, killing the process, so one sent just after the
 * "started" line (a supervisor, a test that waits for that line) could kill it before it drains:
 * here a first signal during startup is kept and drains the process as soon as it has started; a
 * second one exits at once (130), so a startup that hangs can still be stopped.
 */
function catchStopSignalsDuringStartup(): { release(): void } {
  let caught: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (caught !== undefined) process.exit(130);
    caught = signal;
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return {
    // Called once the drain listeners are in place: a signal caught meanwhile is handed to them.
    release: () => {
      for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
      if (caught !== undefined) process.emit(caught, caught);
    },
  };
}

/** Resolves once a SIGTERM/SIGINT has drained `target` (one caught during startup included). */
function untilClosed(target: { close(): Promise<void> }, logger: ReturnType<typeof processLogger>, startup: { release(): void }): Promise<void> {
  return new Promise((resolve, reject) => {
    drainOnSignals(
      {
        close: async () => {
          try {
            await target.close();
            logger.info('stopped');
            resolve();
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        },
      },
      { logger },
    );
    startup.release();
  });
}
