// Case (e), issue 9: a 100,000-node DAG in the distributed topology (Postgres catalog and run store,
// BullMQ on Redis, the controller and a worker pool in this process, as bench/run.mjs runs them).
// Shapes: `wide` (N independent cached no-ops) and `levels` (L levels of W nodes, each node reading
// one node of the level before). Each shape executes, then reruns fully cached.
//
// Targets: executes to completion; cached rerun < 5 s; controller peak RSS < 1 GB; per-node cost
// at the largest size within 1.5x of that at 1,000.
//
// Usage: node bench/large-dag.mjs [--sizes=1000,100000] [--levels=100x1000] [--concurrency=8] [--workers=in-process|process]
//        [--profile] (CPU-profiles each cached rerun into bench/profiles/e-<shape>.cpuprofile; summarise
//        with bench/profile-summary.mjs)
// Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), REDIS_URL.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Controller } from '@memoflow/engine';
import { openPostgresStorage } from '@memoflow/catalog';
import { workflow } from '@memoflow/sdk';
import { BullMqTaskDispatcher, silentLogger, startWorker } from '@memoflow/worker';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { cpuProfiler } from './cpu-profile.mjs';
import { spawnPool } from './spawn-pool.mjs';
import { largeNext, largeNoop } from './tasks.mjs';

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const SIZES = (args.sizes ?? '1000,100000').split(',').filter(Boolean).map(Number);
const LEVELS = (args.levels ?? '100x1000').split(',').filter(Boolean).map((s) => s.split('x').map(Number));
const CONCURRENCY = Number(args.concurrency ?? 8);
// in-process: the worker pool shares this process (its memory counts in the RSS); process: the pool
// runs in a child (bench/worker-child.mjs), so the RSS is the controller's alone, as the target says.
const WORKERS = args.workers ?? 'in-process';
const PROFILE = args.profile === 'true' || 'profile' in args;
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const tag = randomBytes(5).toString('hex');
const SCHEMA = `bench_e_${tag}`;
const PREFIX = `bench-e-${tag}`;

const noop = largeNoop;
const next = largeNext;

const wide = (n) => workflow({ name: `e.wide-${n}`, inputs: {} }, () => ({ out: Array.from({ length: n }, (_, i) => noop({ i: n * 1_000_000 + i })).at(-1) }));
const levels = (l, w) =>
  workflow({ name: `e.levels-${l}x${w}`, inputs: {} }, () => {
    let level = Array.from({ length: w }, (_, i) => noop({ i: -(l * w * 1_000_000) - i }));
    for (let k = 1; k < l; k += 1) level = level.map((v, i) => next({ v, i }));
    return { out: level.at(-1) };
  });

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
sampler.unref();

const storage = await openPostgresStorage({ url: DATABASE_URL, schema: SCHEMA });
const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix: PREFIX, logger: silentLogger }); // the default resultBatchSize, as connect() builds it
let saves = 0;
let saveMs = 0;
/** Replaces `target[method]` with a wrapper that hands each call's duration (ms) to `record`. */
function timeCalls(target, method, record) {
  const original = target[method].bind(target);
  target[method] = async (...args) => {
    const started = performance.now();
    try {
      return await original(...args);
    } finally {
      record(performance.now() - started);
    }
  };
}
// Time in the store's saves and create and the catalog's lookups (statement plus encoding and decoding).
const spent = { create: 0, lookup: 0, lookups: 0 };
timeCalls(storage.runStore, 'save', (ms) => {
  saves += 1;
  saveMs += ms;
});
timeCalls(storage.runStore, 'create', (ms) => (spent.create += ms));
timeCalls(storage.catalog, 'lookup', (ms) => {
  spent.lookup += ms;
  spent.lookups += 1;
});
const controller = new Controller({ catalog: storage.catalog, runStore: storage.runStore, dispatcher });
const pool = WORKERS === 'process' ? await spawnPool({ kind: 'memoflow', redisUrl: REDIS_URL, prefix: PREFIX, concurrency: CONCURRENCY }) : await startWorker({ tasks: [noop.implementation, next.implementation], redisUrl: REDIS_URL, prefix: PREFIX, concurrency: CONCURRENCY, logger: silentLogger });

/** With --profile: the V8 profiler runs only inside `profiled(name, ...)`. */
const profiled = cpuProfiler(PROFILE, { intervalUs: 200 });

async function timed(wf, expect) {
  const traceStarted = performance.now();
  const spec = wf.spec;
  const traceMs = performance.now() - traceStarted;
  saves = 0;
  saveMs = 0;
  Object.assign(spent, { create: 0, lookup: 0, lookups: 0 });
  const started = performance.now();
  const id = await controller.submit({ spec, inputs: wf.prepareInputs({}), project: 'bench', domain: 'e' });
  const state = await controller.wait(id);
  const ms = performance.now() - started;
  if (state.run.status !== 'succeeded') throw new Error(`run ${id} ${state.run.status}: ${state.run.error?.message}`);
  const wrong = Object.values(state.nodes).filter((n) => !expect.includes(n.cacheStatus));
  if (wrong.length > 0) throw new Error(`${wrong.length} node(s) not ${expect}, e.g. ${wrong[0].nodeId} ${wrong[0].cacheStatus}`);
  return { ms, traceMs, nodes: spec.nodes.length, saves, saveMs, createMs: spent.create, lookupMs: spent.lookup, lookups: spent.lookups };
}

function mark(label, value, target, met) {
  console.log(`${label.padEnd(52)} ${value.padStart(12)}   target ${target.padEnd(10)} ${met ? 'MET' : 'MISSED'}`);
}

const rows = [];
try {
  console.log(`(e) large DAGs: schema ${SCHEMA}, prefix ${PREFIX}, concurrency ${CONCURRENCY}, workers ${WORKERS}`);
  const shapes = [...SIZES.map((n) => ({ name: `wide ${n}`, wf: wide(n), n })), ...LEVELS.map(([l, w]) => ({ name: `levels ${l}x${w}`, wf: levels(l, w), n: l * w }))];
  for (const shape of shapes) {
    const cold = await timed(shape.wf, ['MISS', 'POPULATED', 'SKIPPED']);
    const cached = await profiled(`e-${shape.name}`, () => timed(shape.wf, ['HIT']));
    const row = { shape: shape.name, n: shape.n, coldMs: cold.ms, coldSaves: cold.saves, coldSaveMs: cold.saveMs, cachedMs: cached.ms, cachedSaves: cached.saves, cachedCreateMs: cached.createMs, cachedLookupMs: cached.lookupMs, traceMs: cold.traceMs, rssMb: peakRss / 2 ** 20 };
    rows.push(row);
    console.log(
      `${shape.name.padEnd(16)} executed ${cold.ms.toFixed(0)} ms (${((cold.ms / shape.n) * 1000).toFixed(0)} µs/node, ${cold.saves} saves of ${(cold.saveMs / cold.saves).toFixed(1)} ms), ` +
        `cached rerun ${cached.ms.toFixed(0)} ms (${cached.saves} saves, create ${cached.createMs.toFixed(0)} ms, ${cached.lookups} lookups ${cached.lookupMs.toFixed(0)} ms), tracing ${cold.traceMs.toFixed(0)} ms, peak RSS so far ${row.rssMb.toFixed(0)} MB`,
    );
  }
  console.log('');
  const small = rows.find((r) => r.n === 1000);
  for (const row of rows.filter((r) => r.n >= 100_000)) {
    mark(`(e) ${row.shape}: executes to completion`, `${(row.coldMs / 1000).toFixed(1)} s`, 'completes', true);
    mark(`(e) ${row.shape}: cached rerun`, `${(row.cachedMs / 1000).toFixed(2)} s`, '< 5 s', row.cachedMs < 5000);
    if (small !== undefined) {
      const ratio = row.coldMs / row.n / (small.coldMs / small.n);
      mark(`(e) ${row.shape}: per-node cost vs 1,000`, `x${ratio.toFixed(2)}`, '<= x1.5', ratio <= 1.5);
    }
  }
  mark(`(e) controller peak RSS (this process${WORKERS === 'process' ? '' : ', pool included'})`, `${(peakRss / 2 ** 20).toFixed(0)} MB`, '< 1024 MB', peakRss < 2 ** 30);
  console.log(JSON.stringify({ bench: 'memoflow-large-dag', concurrency: CONCURRENCY, rows, peakRssMb: peakRss / 2 ** 20 }));
} finally {
  await controller.close();
  await pool.close();
  await dispatcher.close();
  await storage.close?.();
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await sql.unsafe(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await sql.end();
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
}
