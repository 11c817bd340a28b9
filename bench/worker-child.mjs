// `node bench/run.mjs --workers=process` runs the worker pools here, in a child process, so the
// controller (bench process) does not share its CPU time with them, as in production.
//   argv: <memoflow|raw> <redisUrl> <prefix> <concurrency>
// Prints `ready` once serving; on SIGTERM it drains (closes its pool) and exits by itself.
import { drainOnSignals, silentLogger, startWorker, toRedisOptions } from '@memoflow/worker';
import { Worker } from 'bullmq';
import { ALL_TASKS } from './tasks.mjs';

const [kind, redisUrl, prefix, concurrency] = process.argv.slice(2);
let pool;
if (kind === 'memoflow') {
  pool = await startWorker({
    tasks: ALL_TASKS.map((t) => t.implementation),
    redisUrl,
    prefix,
    concurrency: Number(concurrency),
    logger: silentLogger,
  });
} else if (kind === 'raw') {
  // The raw BullMQ baseline: a no-op processor, as in the single-process mode.
  const worker = new Worker('raw', async (job) => job.data.i, { connection: toRedisOptions(redisUrl, `${prefix}.raw-child`), prefix, concurrency: Number(concurrency) });
  worker.on('error', (err) => console.error('raw worker:', err));
  await worker.waitUntilReady();
  pool = { close: () => worker.close() };
} else {
  throw new Error(`unknown worker kind '${kind}'`);
}
process.stdout.write('ready\n');
drainOnSignals(pool);
