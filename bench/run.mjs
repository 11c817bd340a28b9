// `npm run bench`: memoflow's distributed mode (Postgres catalog and run store, BullMQ workers) on
// local Postgres and Redis, against raw BullMQ. Issue 3, item 5 and issue 4, item 5. Not part of
// `npm test`.
//
//   (a) 1,000 no-op tasks as a wide DAG (one level, 1,000 independent nodes), caching off, against
//       the same 1,000 jobs through raw BullMQ (Queue.addBulk + a Worker running a no-op
//       processor). Same concurrency; the memoflow controller, its worker pool and the raw
//       Worker all live in this one process.
//   (b) the same DAG fully cached (populated once, then re-run): time per node, catalog round
//       trips (lookups per DAG level, puts) and run-store round trips, speed-up over (a). Also a
//       200-node chain fully cached, for lookups per level on a deep DAG.
//   (c) a 200-node chain, caching off: milliseconds per node.
//   (d) a dynamic node fanning out 1,000 cached no-op children (issue 4, item 5):
//       (d0) re-run with everything cached: a node-level HIT, nothing expands;
//       (d1) re-run with the dynamic node's OUTPUT entry deleted: the future is read back
//            (FUTURE_HIT, the body does not run) and all 1,000 children HIT;
//       (d2) one child changed: (d2a) as (d1) with also one child's entry deleted (FUTURE_HIT,
//            999 HIT, 1 executes); (d2b) one child's input changed, which changes the dynamic node's
//            key, so its body runs again on a worker and 999 children HIT, 1 executes;
//       (d3) scaling: fan-outs of 250, 500, 1,000, 2,000 children executed cold (caching on), with
//            time and CPU per child and heap growth (V8 used heap: peak during the run, and retained
//            after a full GC). The GC needs --expose-gc: with (d) selected the bench re-executes
//            itself with that flag (MEMOFLOW_BENCH_REEXEC=1 marks the child). Also the time to trace
//            a static workflow of the same number of calls in this process (the SDK's tracing,
//            which a dynamic body also goes through on its worker).
//       (d4) issue 7, item 4: the stored size of the future of `rows.map((_, i) => work({ rows, i }))`
//            over --fanout numbers (about 5 KB for 1,000), now and in the previous format (every
//            child a copy of rows: 5.7 MB on main); target O(children): under 200 bytes per child.
//       Catalog entries are deleted with SQL on the bench schema (kind = 'output' only): the
//       catalog's evict() has no kind filter, so it would delete the future too.
//
// A warm-up run of each kind first; each measurement is repeated (default 3) and the median
// reported. Prints a table, then one JSON line with every number.
//
// Options: --only=a,b,c,d   --repeats=N   --concurrency=N   --width=N   --chain=N
//          --result-batch-size=N (the dispatcher's resultBatchSize: results per stream read and held
//                     unsaved at once; default the dispatcher's, as connect() leaves it)
//          --workers=in-process|process (default in-process: the memoflow pool and the raw Worker run
//                     in the bench process, sharing its CPU with the controller; `process` runs each
//                     in a child process, bench/worker-child.mjs, as production would. CPU figures
//                     are the bench process's only, i.e. the controller's in `process` mode)
//          --fanout=N (d0-d2; default 1000)   --sizes=250,500,1000,2000 (d3)
//          --detail (also what saves send, and a decide() micro-benchmark: the run store then runs on
//                    a postgres.js client of its own whose `debug` hook measures each save's node
//                    json parameter, the bytes that go out)
//          --profile (CPU-profiles only the measured memoflow runs of each section into
//                     bench/profiles/<section>.cpuprofile; summarise with bench/profile-summary.mjs)
// Environment: BENCH_DATABASE_URL or DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
//              REDIS_URL (default redis://127.0.0.1:6379).
// Every run uses a fresh Postgres schema and a fresh BullMQ prefix, both removed at the end.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import * as sdk from '@memoflow/sdk';
import { Controller, decide } from '@memoflow/engine';
import { openPostgresStorage, PostgresRunStore } from '@memoflow/catalog';
import { drizzle } from 'drizzle-orm/postgres-js';
import { BullMqTaskDispatcher, silentLogger, startWorker, toRedisOptions } from '@memoflow/worker';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { cpuProfiler } from './cpu-profile.mjs';
import { spawnPool as spawnChildPool } from './spawn-pool.mjs';
import { ALL_TASKS, fanout, noop, noopCached, rowsFanout, step, stepCached } from './tasks.mjs';

const { workflow } = sdk;

// --- options -------------------------------------------------------------------------------------

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, value ?? 'true'];
  }),
);
const ONLY = new Set((args.only ?? 'a,b,c,d').split(','));
const REPEATS = Number(args.repeats ?? 3);
const CONCURRENCY = Number(args.concurrency ?? 8);
const WIDTH = Number(args.width ?? 1000);
const CHAIN = Number(args.chain ?? 200);
const WARMUP_WIDTH = 200;
const WARMUP_CHAIN = 20;
const DETAIL = args.detail === 'true';
const PROFILE = args.profile === 'true';
// What connect() uses in distributed mode; a knob to test proposals without touching the packages.
const RESULT_BATCH_SIZE = args['result-batch-size'] === undefined ? undefined : Number(args['result-batch-size']);
const WORKERS = args.workers ?? 'in-process';
if (WORKERS !== 'in-process' && WORKERS !== 'process') {
  console.error(`--workers must be in-process or process, got ${WORKERS}`);
  process.exit(2);
}
const FANOUT = Number(args.fanout ?? 1000);
const SIZES = (args.sizes ?? '250,500,1000,2000').split(',').map(Number);

// (d3) measures heap growth after a full GC: re-execute with --expose-gc unless already there.
if (ONLY.has('d') && typeof globalThis.gc !== 'function' && process.env.MEMOFLOW_BENCH_REEXEC !== '1') {
  const child = spawn(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, MEMOFLOW_BENCH_REEXEC: '1' },
  });
  process.exit(await new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1))));
}
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TAG = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const SCHEMA = `bench_${TAG}`;
const PREFIX = `bench-${TAG}`;

if (!existsSync(new URL('../packages/sdk/dist/index.js', import.meta.url))) {
  console.error('the packages are not built: run `npm run bench` (it builds first) or `npx turbo run build`');
  process.exit(1);
}

// --- tasks and workflows -------------------------------------------------------------------------

/** `width` independent nodes: one DAG level. */
function wide(width, node, name, offset = 0) {
  return workflow({ name, inputs: {} }, () => {
    let last;
    for (let i = 0; i < width; i++) last = node({ i: offset + i });
    return { last };
  });
}

/** `length` nodes, each fed by the one before: `length` DAG levels. */
function chain(length, node, name, start = 0) {
  return workflow({ name, inputs: {} }, () => {
    let v = node({ v: start });
    for (let i = 1; i < length; i++) v = node({ v });
    return { v };
  });
}

// --- instrumentation -----------------------------------------------------------------------------

/** Per-operation counters: calls, cumulative ms, items (keys looked up, nodes saved), bytes. */
class Stats {
  constructor() {
    this.reset();
  }
  reset() {
    this.ops = {};
    this.results = { count: 0, batches: 0, handleMs: 0, maxHandleMs: 0, queueLatencyMs: 0 };
    this.lookupSizes = [];
    this.saveSizes = [];
    /** Per save: bytes of its node json parameter (with --detail). */
    this.saveBytes = [];
  }
  record(op, ms, items = 0, bytes = 0) {
    const o = (this.ops[op] ??= { calls: 0, ms: 0, items: 0, bytes: 0 });
    o.calls++;
    o.ms += ms;
    o.items += items;
    o.bytes += bytes;
  }
  calls(op) {
    return this.ops[op]?.calls ?? 0;
  }
  snapshot() {
    return structuredClone({ ops: this.ops, results: this.results, lookupSizes: this.lookupSizes, saveSizes: this.saveSizes, saveBytes: this.saveBytes });
  }
}
const stats = new Stats();

/** What a call carries, for the counters: keys of a lookup, entries of a put, nodes of a save/create. */
const itemsOf = {
  'catalog.lookup': (a) => a[1].length,
  'catalog.put': (a) => a[0].length,
  'store.save': (a) => a[0].nodes.length,
  'store.create': (a) => Object.keys(a[0].nodes).length,
};

/** Wraps an adapter: the listed methods are counted and timed; everything else passes through. */
function counting(target, label, methods) {
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function') return value;
      if (!methods.includes(prop)) return value.bind(obj);
      const op = `${label}.${String(prop)}`;
      return async (...callArgs) => {
        const items = itemsOf[op]?.(callArgs) ?? 0;
        const started = performance.now();
        try {
          return await value.apply(obj, callArgs);
        } finally {
          const ms = performance.now() - started;
          stats.record(op, ms, items);
          if (op === 'catalog.lookup') stats.lookupSizes.push(items);
          if (op === 'store.save') stats.saveSizes.push(items);
        }
      };
    },
  });
}

/** The dispatcher, with its dispatches counted and the controller's result handler timed (per result: from hand-over to saved). */
function countingDispatcher(dispatcher) {
  return {
    pool: dispatcher.pool,
    dispatch: async (attempts) => {
      const started = performance.now();
      try {
        return await dispatcher.dispatch(attempts);
      } finally {
        stats.record('queue.dispatch', performance.now() - started, attempts.length);
      }
    },
    onResults: (handler) =>
      dispatcher.onResults((results) => {
        const started = performance.now();
        stats.results.batches++;
        // Same process, same clock: how long each result waited in the results stream.
        for (const result of results) stats.results.queueLatencyMs += Math.max(0, Date.now() - result.finishedAt.getTime());
        return handler(results).map(async (saved) => {
          await saved;
          const ms = performance.now() - started;
          stats.results.count++;
          stats.results.handleMs += ms;
          stats.results.maxHandleMs = Math.max(stats.results.maxHandleMs, ms);
        });
      }),
    close: () => dispatcher.close(),
  };
}

/** Redis commands so far: script calls (one round trip each) and all commands (scripts' included). */
let statsRedis;
async function redisCommands() {
  statsRedis ??= new Redis(toRedisOptions(REDIS_URL, `${PREFIX}.stats`));
  const info = await statsRedis.info('commandstats');
  let total = 0;
  let scripts = 0;
  for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    total += Number(calls);
    if (name === 'evalsha' || name === 'eval') scripts += Number(calls);
  }
  return { total, scripts };
}

/** Wall ms, CPU ms of this process and Redis commands, around `body` (the counters are outside the clock). */
async function measured(body) {
  const redisBefore = await redisCommands();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await body();
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const redisAfter = await redisCommands();
  return { ...result, ms, cpuMs: (cpu.user + cpu.system) / 1000, redis: { total: redisAfter.total - redisBefore.total - 1, scripts: redisAfter.scripts - redisBefore.scripts } };
}

/** With --profile: the V8 profiler runs only inside `profiled(section, ...)`. */
const profiled = cpuProfiler(PROFILE);

// --- the two systems -----------------------------------------------------------------------------

/** With --workers=process: a worker pool (memoflow's or the raw Worker) in a child process. */
function spawnPool(kind) {
  return spawnChildPool({ kind, redisUrl: REDIS_URL, prefix: PREFIX, concurrency: CONCURRENCY });
}

/**
 * postgres.js `debug` hook: for each save statement, the bytes of its node json parameter (the one
 * json array it sends; the run's own fields are separate, small parameters).
 */
function measureSave(_connection, query, parameters) {
  if (!query.includes('WITH bumped AS')) return;
  const nodes = parameters.filter((p) => typeof p === 'string' && p.startsWith('['));
  stats.saveBytes.push(nodes.reduce((sum, p) => sum + Buffer.byteLength(p), 0));
}

async function openMemoflow() {
  const storage = await openPostgresStorage({ url: DATABASE_URL, schema: SCHEMA });
  const catalog = counting(storage.catalog, 'catalog', ['lookup', 'put']);
  // With --detail the run store has a client of its own, so every save's parameters can be measured.
  const saveClient = DETAIL
    ? postgres(DATABASE_URL, { max: 10, onnotice: () => undefined, connection: { search_path: `"${SCHEMA}"`, DateStyle: 'ISO' }, debug: measureSave })
    : null;
  const runStore = counting(saveClient === null ? storage.runStore : new PostgresRunStore(drizzle({ client: saveClient })), 'store', ['load', 'save', 'create']);
  // As connect() builds it for distributed mode (default resultBatchSize, silent logger).
  const bullmq = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix: PREFIX, ...(RESULT_BATCH_SIZE === undefined ? {} : { resultBatchSize: RESULT_BATCH_SIZE }), logger: silentLogger });
  const dispatcher = countingDispatcher(bullmq);
  const controller = new Controller({ catalog, runStore, dispatcher, onEvent: () => undefined });
  const pool =
    WORKERS === 'process'
      ? await spawnPool('memoflow')
      : await startWorker({
          tasks: ALL_TASKS.map((t) => t.implementation),
          redisUrl: REDIS_URL,
          prefix: PREFIX,
          concurrency: CONCURRENCY,
          logger: silentLogger,
        });
  return {
    /**
     * Submits and waits; returns wall ms and what the run cost in round trips. `check`: the cache
     * status every node must have (or one of a list), or a function of the final state that throws.
     * `keep(state)`: what of the final state to return (as `kept`); the state itself is not kept.
     */
    async run(wf, check, keep, project = 'bench') {
      const spec = wf.spec; // traced before the clock starts
      const inputs = wf.prepareInputs({});
      stats.reset();
      const { ms, cpuMs, redis, id, state } = await measured(async () => {
        const id = await controller.submit({ spec, inputs, project, domain: 'bench' });
        return { id, state: await controller.wait(id) };
      });
      if (state.run.status !== 'succeeded') throw new Error(`run ${id} (${spec.name}) ${state.run.status}: ${JSON.stringify(state.run.error)}`);
      if (typeof check === 'function') check(state);
      else if (check !== undefined) {
        const allowed = [check].flat();
        const wrong = Object.values(state.nodes).filter((node) => !allowed.includes(node.cacheStatus));
        if (wrong.length > 0) throw new Error(`run ${id} (${spec.name}): ${wrong.length} node(s) not ${check}, e.g. ${wrong[0].nodeId} ${wrong[0].cacheStatus}`);
      }
      return { ms, cpuMs, redis, nodes: spec.nodes.length, runNodes: Object.keys(state.nodes).length, stats: stats.snapshot(), ...(keep === undefined ? {} : { kept: keep(state) }) };
    },
    /** The future stored under `key`, as the catalog holds it (outside the counters and the clock). */
    async storedFuture(key) {
      return (await storage.catalog.lookup('future', [key])).hits.get(key)?.value;
    },
    /** Removes the output entries of `keys` and keeps their futures (outside the counters and the clock). */
    async evictOutputs(keys) {
      const removed = await storage.catalog.evict({ keys, kind: 'output' });
      if (removed !== keys.length) throw new Error(`evicted ${removed} of ${keys.length} output entries`);
    },
    async close() {
      await controller.close();
      await dispatcher.close();
      await pool.close();
      await saveClient?.end({ timeout: 5 });
      await storage.close();
    },
  };
}

async function openRawBullMq() {
  const connection = toRedisOptions(REDIS_URL, `${PREFIX}.raw`);
  const queue = new Queue('raw', { connection, prefix: PREFIX });
  let pending = null;
  const completed = () => {
    if (pending === null) return;
    pending.done += 1;
    if (pending.done === pending.target) pending.resolve();
    else pending.next?.(pending.done);
  };
  let worker;
  let events;
  if (WORKERS === 'process') {
    // The Worker runs in a child; completions come back through the queue's event stream.
    events = new QueueEvents('raw', { connection: toRedisOptions(REDIS_URL, `${PREFIX}.raw-events`), prefix: PREFIX });
    events.on('completed', completed);
    events.on('error', (err) => console.error('raw queue events:', err));
    await events.waitUntilReady();
    worker = await spawnPool('raw');
  } else {
    const inProcess = new Worker('raw', async (job) => job.data.i, { connection, prefix: PREFIX, concurrency: CONCURRENCY });
    inProcess.on('completed', completed);
    inProcess.on('error', (err) => console.error('raw worker:', err));
    await inProcess.waitUntilReady();
    worker = inProcess;
  }
  let batch = 0;
  return {
    async run(count) {
      batch++;
      const jobs = Array.from({ length: count }, (_, i) => ({ name: 'noop', data: { i }, opts: { jobId: `b${batch}-${i}` } }));
      const done = new Promise((resolve) => (pending = { done: 0, target: count, resolve }));
      const sample = await measured(async () => {
        await queue.addBulk(jobs);
        await done;
        return {};
      });
      pending = null;
      return { ...sample, nodes: count };
    },
    /** A chain: each job is added once the one before it completed (what (c) does with dependencies). */
    async chain(count) {
      batch++;
      const add = (i) => queue.add('noop', { i }, { jobId: `c${batch}-${i}` });
      const done = new Promise((resolve) => (pending = { done: 0, target: count, resolve, next: (i) => void add(i).catch((e) => console.error('raw chain:', e)) }));
      const sample = await measured(async () => {
        await add(0);
        await done;
        return {};
      });
      pending = null;
      return { ...sample, nodes: count };
    },
    async close() {
      await worker.close();
      await events?.close();
      await queue.close();
    },
  };
}

// --- clean-up --------------------------------------------------------------------------------------

async function dropSchema() {
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => undefined });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  } finally {
    await sql.end();
  }
}

async function deleteRedisKeys() {
  const redis = new Redis(toRedisOptions(REDIS_URL, `${PREFIX}.cleanup`));
  try {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

// --- measuring -------------------------------------------------------------------------------------

function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Runs `once` REPEATS times; returns the median sample (by ms) and all the times. */
async function repeat(once) {
  const samples = [];
  for (let i = 0; i < REPEATS; i++) samples.push(await once(i));
  const mid = median(samples.map((s) => s.ms));
  return { ...samples.find((s) => s.ms === mid), all: samples.map((s) => round(s.ms, 1)) };
}

const round = (value, digits = 2) => (value === undefined || value === null || Number.isNaN(value) ? null : Number(value.toFixed(digits)));
const ops = (sample, op) => sample.stats.ops[op] ?? { calls: 0, ms: 0, items: 0, bytes: 0 };

/** Round trips a run made, from its counters. */
function roundTrips(sample, levels) {
  const s = sample.stats;
  const lookups = ops(sample, 'catalog.lookup').calls;
  return {
    catalogLookups: lookups,
    catalogLookupKeys: ops(sample, 'catalog.lookup').items,
    catalogPuts: ops(sample, 'catalog.put').calls,
    levels,
    lookupsPerLevel: round(lookups / levels, 3),
    storeCreates: ops(sample, 'store.create').calls,
    storeSaves: ops(sample, 'store.save').calls,
    storeLoads: ops(sample, 'store.load').calls,
    dispatches: ops(sample, 'queue.dispatch').calls,
    results: s.results.count,
  };
}

/** Where the wall time of a memoflow run went (cumulative ms; concurrent calls overlap). */
function timeSplit(sample) {
  const s = sample.stats;
  const split = {};
  for (const [op, o] of Object.entries(s.ops)) split[op] = { calls: o.calls, ms: round(o.ms, 1), msPerCall: round(o.ms / o.calls, 2), items: o.items, ...(o.bytes > 0 ? { bytes: o.bytes } : {}) };
  split.resultHandler = {
    results: s.results.count,
    batches: s.results.batches,
    msPerResult: round(s.results.handleMs / Math.max(1, s.results.count), 2),
    maxMs: round(s.results.maxHandleMs, 1),
    queueLatencyMsAvg: round(s.results.queueLatencyMs / Math.max(1, s.results.count), 2),
  };
  if (s.saveBytes.length > 0) {
    const total = s.saveBytes.reduce((x, y) => x + y, 0);
    split.saveJsonBytes = { total, perSave: Math.round(total / s.saveBytes.length), max: Math.max(...s.saveBytes) };
  }
  if (s.saveSizes.length > 0) split.nodesPerSave = { mean: round(s.saveSizes.reduce((x, y) => x + y, 0) / s.saveSizes.length, 1), max: Math.max(...s.saveSizes) };
  return split;
}

/** decide() on a run of `width` nodes, one result event per round: the CPU a round costs. */
function decideMicroBench(state, width) {
  const nodes = Object.values(state.nodes);
  const event = { type: 'run:tick' };
  const started = performance.now();
  const rounds = 50;
  for (let i = 0; i < rounds; i++) decide(state, [event], new Date());
  return { nodes: nodes.length, width, msPerDecide: round((performance.now() - started) / rounds, 3) };
}

// --- case (d): dynamic fan-out (issue 4, item 5) ---------------------------------------------------

/** A workflow with one node: the dynamic fan-out of `n` children `noopCached({ i: offset + k })`. */
function fanoutWorkflow(n, offset, changed = -1, name = `bench.fanout-${n}`) {
  return workflow({ name, inputs: {} }, () => ({ out: fanout({ n, offset, changed }) }));
}

/** Cache statuses of the run's nodes, split into top-level nodes and dynamic children. */
function statusesOf(state) {
  const counts = { top: {}, children: {} };
  for (const node of Object.values(state.nodes)) {
    const where = node.nodeId.includes('.') ? counts.children : counts.top;
    where[node.cacheStatus] = (where[node.cacheStatus] ?? 0) + 1;
  }
  return counts;
}

/** A check for memoflow.run: the statuses must be exactly `expected` ({ top: {...}, children: {...} }). */
function expectStatuses(expected) {
  const canonical = (c) => JSON.stringify({ top: Object.entries(c.top).sort(), children: Object.entries(c.children).sort() });
  return (state) => {
    const actual = statusesOf(state);
    if (canonical(actual) !== canonical(expected)) throw new Error(`run ${state.run.id} (${state.run.spec.name}): statuses ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  };
}

/** What (d) keeps of a run: the dynamic node's key, every child's key by its `i`, and what executed. */
function fanoutFacts(state) {
  const dyn = state.nodes.fanout;
  const childKeys = new Map();
  const executed = [];
  for (const node of Object.values(state.nodes)) {
    if (!node.nodeId.startsWith('fanout.')) continue;
    const i = node.inputs?.i?.value; // inputs are NodeValues ({ value })
    childKeys.set(i, node.cacheKey);
    if (node.cacheStatus !== 'HIT') executed.push(`${node.nodeId} (i=${i}, ${node.cacheStatus})`);
  }
  return { dynKey: dyn?.cacheKey, dynStatus: dyn?.cacheStatus, dynReason: dyn?.cacheReason, childKeys, executed };
}

/** Deletes `output` entries by key only (the catalog's evict() takes no kind, so it would drop the future too). */
const gc = () => globalThis.gc?.();

/**
 * memoflow.run with the heap sampled (V8's used heap, = process.memoryUsage().heapUsed, but cheaper
 * to read every 10 ms): `retainedBytes` (after a full GC, minus before) and `peakBytes` (max
 * sampled during the run, minus before; the in-process worker pool's allocations included).
 */
const heapUsed = () => getHeapStatistics().used_heap_size;
async function withHeap(body) {
  gc();
  gc();
  const before = heapUsed();
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, heapUsed());
  }, 10);
  let sample;
  try {
    sample = await body();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, heapUsed());
  gc();
  gc();
  const after = heapUsed();
  return { ...sample, heap: { beforeBytes: before, peakBytes: peak - before, retainedBytes: after - before } };
}

const mb = (bytes) => round(bytes / 2 ** 20, 1);

/** Lookups of a run as `calls (keys per call)`. */
function lookupShape(sample) {
  return `${sample.stats.lookupSizes.length} (${sample.stats.lookupSizes.join('+') || '-'} keys)`;
}

function fanoutSummary(sample, n) {
  const trips = roundTrips(sample, 2);
  return {
    ms: round(sample.ms, 1),
    allMs: sample.all,
    msPerChild: round(sample.ms / n, 3),
    cpuMs: round(sample.cpuMs, 1),
    cpuMsPerChild: round(sample.cpuMs / n, 3),
    runNodes: sample.runNodes,
    lookupKeysPerCall: sample.stats.lookupSizes,
    roundTrips: trips,
    putEntries: ops(sample, 'catalog.put').items,
    executed: sample.kept?.executed,
    dynamicNode: sample.kept === undefined ? undefined : { cacheStatus: sample.kept.dynStatus, cacheReason: sample.kept.dynReason },
    redisPerChild: { scripts: round(sample.redis.scripts / n, 2), commands: round(sample.redis.total / n, 2) },
    time: timeSplit(sample),
    ...(sample.heap === undefined ? {} : { heapMb: { peak: mb(sample.heap.peakBytes), retained: mb(sample.heap.retainedBytes) } }),
  };
}

/**
 * (d4) issue 7, item 4: `rows.map((_, i) => work({ rows, i }))` over `n` numbers (about 5 bytes
 * each). Futures used to copy `rows` into every child: O(children x input). `afterBytes` is the
 * future as the catalog now stores it; `beforeBytes` the same future in the previous format (nodes
 * in full, each input reference replaced by the value), computed from it, which is what main stored
 * (5.7 MB for 1,000 children). Target: O(children), under 200 bytes per child.
 */
async function futureSize(run, n) {
  const values = Array.from({ length: n }, (_, i) => 1000 + i * 3);
  const wf = workflow({ name: `bench.rows-fanout-${n}`, inputs: {} }, () => ({ out: rowsFanout({ rows: values }) }));
  const cold = await run(wf, expectStatuses({ top: { POPULATED: 1 }, children: { POPULATED: n } }), (state) => state.nodes['rows-fanout']?.cacheKey);
  const stored = await memoflow.storedFuture(cold.kept);
  if (stored === undefined) throw new Error('(d4) no future stored for the rows fan-out');
  const afterBytes = Buffer.byteLength(JSON.stringify(stored));
  const beforeBytes = Buffer.byteLength(JSON.stringify(previousFutureFormat(stored, { rows: values })));
  return {
    children: n,
    inputBytes: Buffer.byteLength(JSON.stringify(values)),
    afterBytes,
    beforeBytes,
    bytesPerChild: round(afterBytes / n, 1),
    shrink: round(beforeBytes / afterBytes, 1),
    targetBytes: 200 * n,
  };
}

/** A stored future in the format main wrote: nodes in full, the dynamic's inputs copied into every binding. */
function previousFutureFormat(stored, inputs) {
  const shared = stored.sharedNodeFields ?? {};
  const inline = (b) => {
    switch (b.kind) {
      case 'input': {
        let value = inputs[b.name] ?? null;
        for (const segment of b.path ?? []) value = value?.[segment] ?? null;
        return { kind: 'literal', value };
      }
      case 'array':
        return { kind: 'array', items: b.items.map(inline) };
      case 'object':
        return { kind: 'object', fields: Object.fromEntries(Object.entries(b.fields).map(([k, v]) => [k, inline(v)])) };
      default:
        return b;
    }
  };
  const nodes = stored.nodes.map((node) => {
    const { ownFields, ...own } = node;
    const full = ownFields ? own : { ...shared[node.task], ...own };
    return { ...full, inputs: Object.fromEntries(Object.entries(full.inputs).map(([k, v]) => [k, inline(v)])) };
  });
  return { specVersion: stored.specVersion, name: stored.name, inputs: {}, hashedInputs: [], nodes, outputs: stored.outputs };
}

async function caseD() {
  if (typeof sdk.dynamic !== 'function' || fanout === undefined) {
    out.d = { pending: 'issue 4: @memoflow/sdk does not export dynamic() yet' };
    rows.push(['(d) fan-out', 'pending', 'no dynamic() in @memoflow/sdk yet', '', '']);
    return;
  }
  const N = FANOUT;
  const d = (out.d = { fanout: N, gcExposed: typeof globalThis.gc === 'function' });
  const keep = fanoutFacts;
  // A project of its own: cases (a) and (b) cached tasks with the same names and inputs, and cache
  // entries are never shared across projects.
  const run = (wf, check, kept) => memoflow.run(wf, check, kept, 'bench-fanout');

  log('(d) warm-up: a small dynamic fan-out, populated, then replayed from its future');
  {
    const warm = fanoutWorkflow(100, 5e7, -1, 'bench.fanout-warmup');
    const first = await run(warm, expectStatuses({ top: { POPULATED: 1 }, children: { POPULATED: 100 } }), keep);
    await memoflow.evictOutputs([first.kept.dynKey]);
    await run(warm, expectStatuses({ top: { FUTURE_HIT: 1 }, children: { HIT: 100 } }));
  }

  log(`(d) fan-out ${N}: populate`);
  const wf = fanoutWorkflow(N, 0);
  void wf.spec;
  const populate = await profiled('d-populate', () => run(wf, expectStatuses({ top: { POPULATED: 1 }, children: { POPULATED: N } }), keep));
  const { dynKey, childKeys } = populate.kept;
  d.populate = fanoutSummary(populate, N);

  log(`(d0) fan-out ${N}: node-level HIT`);
  const d0 = await repeat(() => run(wf, expectStatuses({ top: { HIT: 1 }, children: {} })));
  d.d0 = fanoutSummary(d0, N);

  log(`(d1) fan-out ${N}: output evicted, FUTURE_HIT + ${N} children HIT`);
  const d1 = await repeat(async (i) => {
    await memoflow.evictOutputs([dynKey]); // outside the clock; the run re-puts it
    return profiled(`d1-${i + 1}`, () => run(wf, expectStatuses({ top: { FUTURE_HIT: 1 }, children: { HIT: N } }), keep));
  });
  d.d1 = fanoutSummary(d1, N);

  log(`(d2a) fan-out ${N}: output and one child evicted, FUTURE_HIT + ${N - 1} HIT + 1 executed`);
  const d2a = await repeat(async (i) => {
    const k = Math.floor(N / 2) + i;
    await memoflow.evictOutputs([dynKey, childKeys.get(k)]);
    return run(wf, expectStatuses({ top: { FUTURE_HIT: 1 }, children: { HIT: N - 1, POPULATED: 1 } }), keep);
  });
  d.d2a = fanoutSummary(d2a, N);

  log(`(d2b) fan-out ${N}: one child's input changed, the body runs again, ${N - 1} HIT + 1 executed`);
  const d2b = await repeat((i) => {
    const changed = Math.floor(N / 3) + i; // a new child each repeat, so it always executes
    return run(fanoutWorkflow(N, 0, changed), expectStatuses({ top: { POPULATED: 1 }, children: { HIT: N - 1, POPULATED: 1 } }), keep);
  });
  d.d2b = fanoutSummary(d2b, N);

  log(`(d4) rows fan-out ${N}: the stored future's size`);
  d.d4 = await futureSize(run, N);
  log(`(d3) scaling, cold, caching on: ${SIZES.join(', ')} children`);
  let offset = 1e8;
  d.d3 = [];
  // One cold run per size first, so every size runs on a warmed process.
  await run(fanoutWorkflow(SIZES[0], (offset += 1e5)), expectStatuses({ top: { POPULATED: 1 }, children: { POPULATED: SIZES[0] } }));
  for (const n of SIZES) {
    const sample = await repeat(async (i) => {
      const cold = fanoutWorkflow(n, (offset += 1e5));
      void cold.spec;
      return withHeap(() => profiled(`d3-${n}-${i + 1}`, () => run(cold, expectStatuses({ top: { POPULATED: 1 }, children: { POPULATED: n } }))));
    });
    // What the body's tracing alone costs: a static workflow making the same n calls, traced here.
    const traceStarted = performance.now();
    void wide(n, noopCached, `bench.trace-${n}`, offset).spec;
    const traceMs = performance.now() - traceStarted;
    d.d3.push({ children: n, ...fanoutSummary(sample, n), traceMs: round(traceMs, 1) });
  }
  const first = d.d3[0];
  const last = d.d3[d.d3.length - 1];
  d.d3Ratio = {
    from: first.children,
    to: last.children,
    msPerChildRatio: round(last.msPerChild / first.msPerChild, 2),
    cpuMsPerChildRatio: round(last.cpuMsPerChild / first.cpuMsPerChild, 2),
    traceMsPerCallRatio: round(last.traceMs / last.children / (first.traceMs / first.children), 2),
    peakHeapPerChildRatio: round(last.heapMb.peak / last.children / (first.heapMb.peak / first.children), 2) };

  const statusLine = (s) => `${s.roundTrips.catalogLookups} lookups ${lookupShape({ stats: { lookupSizes: s.lookupKeysPerCall } })}`;
  rows.push([`(d) fan-out ${N}: populate (cold)`, `${d.populate.ms} ms`, `${d.populate.msPerChild} ms/child`, statusLine(d.populate), `${d.populate.roundTrips.storeSaves} saves, ${d.populate.roundTrips.catalogPuts} puts`]);
  rows.push([`(d0) fan-out ${N}: node-level HIT`, `${d.d0.ms} ms`, `${d.d0.msPerChild} ms/child`, statusLine(d.d0), `${d.d0.roundTrips.storeSaves} saves, ${d.d0.roundTrips.catalogPuts} puts`]);
  rows.push([`(d1) fan-out ${N}: FUTURE_HIT, ${N} HIT`, `${d.d1.ms} ms`, `${d.d1.msPerChild} ms/child`, statusLine(d.d1), `${d.d1.roundTrips.storeSaves} saves, ${d.d1.roundTrips.catalogPuts} puts`]);
  rows.push([`(d2a) FUTURE_HIT, ${N - 1} HIT, 1 evicted`, `${d.d2a.ms} ms`, `ran: ${d.d2a.executed.join(', ')}`, statusLine(d.d2a), `${d.d2a.roundTrips.storeSaves} saves, ${d.d2a.roundTrips.catalogPuts} puts`]);
  rows.push([`(d2b) 1 input changed: body reruns, ${N - 1} HIT`, `${d.d2b.ms} ms`, `ran: fanout (body), ${d.d2b.executed.join(', ')}`, statusLine(d.d2b), `${d.d2b.roundTrips.storeSaves} saves, ${d.d2b.roundTrips.catalogPuts} puts`]);
  rows.push([
    `(d4) rows fan-out ${N}: stored future`,
    `${d.d4.afterBytes} B`,
    `${d.d4.bytesPerChild} B/child, input ${d.d4.inputBytes} B`,
    `before: ${d.d4.beforeBytes} B (x${d.d4.shrink} smaller now)`,
    `< ${d.d4.targetBytes} B (O(children)) ${d.d4.afterBytes < d.d4.targetBytes ? 'MET' : 'MISSED'}`,
  ]);
  for (const s of d.d3) {
    rows.push([`(d3) fan-out ${s.children}, cold`, `${s.ms} ms`, `${s.msPerChild} ms/child (CPU ${s.cpuMsPerChild})`, `heap peak +${s.heapMb.peak} MB, retained +${s.heapMb.retained} MB`, `${s.roundTrips.storeSaves} saves, ${s.roundTrips.catalogLookups} lookups; tracing ${s.children} calls ${s.traceMs} ms`]);
  }
  const flat = (ratio) => (ratio <= 1.5 ? 'roughly flat' : 'grows (superlinear)');
  rows.push([
    `(d3) per child, ${last.children} vs ${first.children}`,
    `wall x${d.d3Ratio.msPerChildRatio} ${flat(d.d3Ratio.msPerChildRatio)}`,
    `CPU x${d.d3Ratio.cpuMsPerChildRatio} ${flat(d.d3Ratio.cpuMsPerChildRatio)}`,
    `peak heap x${d.d3Ratio.peakHeapPerChildRatio}${d.gcExposed ? '' : ' (no --expose-gc)'}`,
    `tracing per call x${d.d3Ratio.traceMsPerCallRatio} ${flat(d.d3Ratio.traceMsPerCallRatio)}`,
  ]);
}

// --- main ------------------------------------------------------------------------------------------

const log = (line) => process.stderr.write(`${line}\n`);
const out = { config: { concurrency: CONCURRENCY, resultBatchSize: RESULT_BATCH_SIZE ?? 'default', width: WIDTH, chain: CHAIN, repeats: REPEATS, workers: WORKERS, process: WORKERS === 'process' ? 'controller in the bench process; memoflow pool and raw Worker each in a child process' : 'single (controller, memoflow pool and raw Worker in the bench process)', schema: SCHEMA, prefix: PREFIX } };
const rows = [];
let memoflow;
let raw;
let exitCode = 0;
try {
  log(`memoflow bench: schema ${SCHEMA}, prefix ${PREFIX}, concurrency ${CONCURRENCY}, ${REPEATS} repeats (median), workers ${WORKERS}`);
  memoflow = await openMemoflow();
  raw = await openRawBullMq();

  // Workflows are traced once, outside any measurement.
  const wideOff = wide(WIDTH, noop, `bench.wide-${WIDTH}`);
  const wideOn = wide(WIDTH, noopCached, `bench.wide-${WIDTH}-cached`);
  const chainOff = chain(CHAIN, step, `bench.chain-${CHAIN}`);
  const chainOn = chain(CHAIN, stepCached, `bench.chain-${CHAIN}-cached`);
  for (const wf of [wideOff, wideOn, chainOff, chainOn]) void wf.spec;

  log('warm-up');
  await raw.run(WARMUP_WIDTH);
  await memoflow.run(wide(WARMUP_WIDTH, noop, 'bench.warmup-wide'));
  // Other inputs than the measured runs', so the warm-up leaves no entry they could hit.
  const warmCached = wide(WARMUP_WIDTH, noopCached, 'bench.warmup-wide-cached', 1e6);
  await memoflow.run(warmCached, 'POPULATED');
  await memoflow.run(warmCached, 'HIT');
  await memoflow.run(chain(WARMUP_CHAIN, step, 'bench.warmup-chain', 1e6));

  let a;
  if (ONLY.has('a') || ONLY.has('b')) {
    log(`(a) wide ${WIDTH}, caching off, vs raw BullMQ`);
    // Interleaved, so drift (Redis and Postgres growing) hits both alike.
    const rawSamples = [];
    const mfSamples = [];
    for (let i = 0; i < REPEATS; i++) {
      rawSamples.push(await raw.run(WIDTH));
      mfSamples.push(await profiled(`a-${i + 1}`, () => memoflow.run(wideOff, 'DISABLED')));
    }
    const pick = (samples) => {
      const mid = median(samples.map((s) => s.ms));
      return { ...samples.find((s) => s.ms === mid), all: samples.map((s) => round(s.ms, 1)) };
    };
    const rawS = pick(rawSamples);
    const mfS = pick(mfSamples);
    const rawTput = (WIDTH / rawS.ms) * 1000;
    const mfTput = (WIDTH / mfS.ms) * 1000;
    a = {
      rawMs: round(rawS.ms, 1),
      rawAllMs: rawS.all,
      rawTasksPerSec: round(rawTput, 0),
      memoflowMs: round(mfS.ms, 1),
      memoflowAllMs: mfS.all,
      memoflowTasksPerSec: round(mfTput, 0),
      msPerNode: round(mfS.ms / WIDTH, 3),
      ratio: round(mfTput / rawTput, 3),
      target: 0.8,
      rawCpuMs: round(rawS.cpuMs, 1),
      memoflowCpuMs: round(mfS.cpuMs, 1),
      rawRedisPerJob: { scripts: round(rawS.redis.scripts / WIDTH, 2), commands: round(rawS.redis.total / WIDTH, 2) },
      memoflowRedisPerTask: { scripts: round(mfS.redis.scripts / WIDTH, 2), commands: round(mfS.redis.total / WIDTH, 2) },
      roundTrips: roundTrips(mfS, 1),
      time: timeSplit(mfS),
    };
    out.a = a;
    rows.push([`(a) raw BullMQ, ${WIDTH} no-op jobs`, `${a.rawMs} ms`, `${a.rawTasksPerSec} jobs/s`, '', '']);
    rows.push(['(a) memoflow wide DAG, cache off', `${a.memoflowMs} ms`, `${a.memoflowTasksPerSec} tasks/s`, `ratio ${a.ratio}`, `>= 0.8 ${a.ratio >= 0.8 ? 'MET' : 'MISSED'}`]);
  }

  if (ONLY.has('b')) {
    log(`(b) wide ${WIDTH}, fully cached`);
    const populate = await memoflow.run(wideOn, 'POPULATED');
    const hit = await repeat((i) => profiled(`b-${i + 1}`, () => memoflow.run(wideOn, 'HIT')));
    const trips = roundTrips(hit, 1);
    log(`(b) chain ${CHAIN}, fully cached`);
    // The cascade rule: downstream of an executed node is SKIPPED(upstream-reran), yet written.
    const chainPopulate = await memoflow.run(chainOn, ['POPULATED', 'SKIPPED']);
    const chainHit = await repeat(() => memoflow.run(chainOn, 'HIT'));
    const chainTrips = roundTrips(chainHit, CHAIN);
    const speedup = a.memoflowMs / hit.ms;
    out.b = {
      populateMs: round(populate.ms, 1),
      ms: round(hit.ms, 1),
      allMs: hit.all,
      msPerNode: round(hit.ms / WIDTH, 3),
      speedupOverA: round(speedup, 2),
      cpuMs: round(hit.cpuMs, 1),
      targetSpeedup: 20,
      roundTrips: trips,
      time: timeSplit(hit),
      chainCached: { ms: round(chainHit.ms, 1), allMs: chainHit.all, msPerNode: round(chainHit.ms / CHAIN, 3), roundTrips: chainTrips, time: timeSplit(chainHit) },
      chainPopulate: { ms: round(chainPopulate.ms, 1), roundTrips: roundTrips(chainPopulate, CHAIN), time: timeSplit(chainPopulate) },
    };
    const perLevelOk = trips.lookupsPerLevel <= 1 && chainTrips.lookupsPerLevel <= 1;
    rows.push(['(b) memoflow wide DAG, all HIT', `${out.b.ms} ms`, `${out.b.msPerNode} ms/node`, `x${out.b.speedupOverA} vs (a)`, `>= 20x ${speedup >= 20 ? 'MET' : 'MISSED'}`]);
    if (a.rawMs !== undefined) rows.push([`(b) all HIT vs raw BullMQ running the ${WIDTH} no-ops`, `${out.b.ms} ms vs ${a.rawMs} ms`, `x${round(a.rawMs / hit.ms, 2)}`, '', `faster ${hit.ms < a.rawMs ? 'MET' : 'MISSED'}`]);
    rows.push([
      '(b) catalog round trips, wide',
      `${trips.catalogLookups} lookup(s), ${trips.catalogPuts} put(s)`,
      `${trips.lookupsPerLevel}/level`,
      `store: ${trips.storeCreates}c ${trips.storeSaves}s ${trips.storeLoads}l`,
      `<= 1/level ${perLevelOk ? 'MET' : 'MISSED'}`,
    ]);
    rows.push([
      `(b) chain ${CHAIN}, all HIT`,
      `${out.b.chainCached.ms} ms`,
      `${out.b.chainCached.msPerNode} ms/node`,
      `${chainTrips.catalogLookups} lookups / ${CHAIN} levels`,
      `store: ${chainTrips.storeSaves} saves`,
    ]);
  }

  if (ONLY.has('c')) {
    log(`(c) chain ${CHAIN}, caching off`);
    const rawChain = await repeat(() => raw.chain(CHAIN));
    const c = await repeat((i) => profiled(`c-${i + 1}`, () => memoflow.run(chainOff, 'DISABLED')));
    rows.push([`(c) raw BullMQ chain ${CHAIN}`, `${round(rawChain.ms, 1)} ms`, `${round(rawChain.ms / CHAIN, 3)} ms/job`, '', '']);
    out.c = { ms: round(c.ms, 1), allMs: c.all, msPerNode: round(c.ms / CHAIN, 3), rawMsPerJob: round(rawChain.ms / CHAIN, 3), target: 1.5, cpuMs: round(c.cpuMs, 1), redisPerNode: { scripts: round(c.redis.scripts / CHAIN, 2), commands: round(c.redis.total / CHAIN, 2) }, roundTrips: roundTrips(c, CHAIN), time: timeSplit(c) };
    rows.push([`(c) memoflow chain ${CHAIN}, cache off`, `${out.c.ms} ms`, `${out.c.msPerNode} ms/node`, `${out.c.roundTrips.storeSaves} saves, x${round(out.c.msPerNode / out.c.rawMsPerJob, 2)} raw`, `<= 1.5 ms ${out.c.msPerNode <= 1.5 ? 'MET' : 'MISSED'}`]);
  }

  if (ONLY.has('d')) await caseD();

  // The decide micro-bench needs a finished wide run: (a) or (b) must have run.
  if (DETAIL && (ONLY.has('a') || ONLY.has('b'))) {
    const { state } = await (async () => {
      // A finished 1,000-node state to run decide() on (advance() walks every node each round).
      const storage = await openPostgresStorage({ url: DATABASE_URL, schema: SCHEMA });
      try {
        const [last] = await storage.runStore.list({ workflow: `bench.wide-${WIDTH}`, limit: 1 });
        const loaded = await storage.runStore.load(last.id);
        // Pretend it is still running so decide() does its full pass.
        return { state: { run: { ...loaded.run, status: 'running' }, nodes: Object.fromEntries(Object.entries(loaded.nodes).map(([k, n]) => [k, { ...n, phase: 'dispatched' }])) } };
      } finally {
        await storage.close();
      }
    })();
    out.decide = decideMicroBench(state, WIDTH);
    out.runJsonBytes = JSON.stringify(state).length;
  }
} catch (error) {
  exitCode = 1;
  console.error('bench failed:', error);
} finally {
  await raw?.close().catch((e) => console.error('closing raw BullMQ:', e));
  await memoflow?.close().catch((e) => console.error('closing memoflow:', e));
  await dropSchema().catch((e) => console.error(`dropping schema ${SCHEMA}:`, e));
  statsRedis?.disconnect();
  const deleted = await deleteRedisKeys().catch((e) => (console.error(`deleting keys ${PREFIX}:*:`, e), 0));
  log(`cleaned up: schema ${SCHEMA} dropped, ${deleted} Redis keys under ${PREFIX}: deleted`);
}

if (rows.length > 0) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => String(r[col]).length)));
  const line = (r) => r.map((cell, col) => String(cell).padEnd(widths[col])).join('  ').trimEnd();
  const where = WORKERS === 'process' ? 'workers in child processes (--workers=process); CPU = controller only' : 'one process (default; --workers=process for pools in child processes)';
  console.log(`\nmemoflow bench (concurrency ${CONCURRENCY}, median of ${REPEATS}, ${where}; Postgres + BullMQ/Redis)`);
  for (const r of rows) console.log(line(r));
  if (out.a) {
    const t = out.a.time;
    console.log(`    (a) CPU of this process: raw ${out.a.rawCpuMs} ms, memoflow ${out.a.memoflowCpuMs} ms; Redis per task: raw ${out.a.rawRedisPerJob.scripts} scripts/${out.a.rawRedisPerJob.commands} cmds, memoflow ${out.a.memoflowRedisPerTask.scripts}/${out.a.memoflowRedisPerTask.commands}`);
    console.log(`    (a) split: ${out.a.roundTrips.storeSaves} saves (avg ${t.nodesPerSave?.mean} nodes, ${t['store.save']?.msPerCall} ms each), ${t.resultHandler.batches} result batches, result handler ${t.resultHandler.msPerResult} ms/result, result delivery latency ${t.resultHandler.queueLatencyMsAvg} ms avg`);
  }
  if (out.b) {
    const t = out.b.time;
    console.log(`    (b) split: create ${t['store.create']?.ms} ms, lookup ${t['catalog.lookup']?.ms} ms, ${out.b.roundTrips.storeSaves} save(s) ${t['store.save']?.ms} ms, load ${t['store.load']?.ms} ms`);
  }
  if (out.c) console.log(`    (c) split: per node ${round(out.c.time['store.save']?.ms / CHAIN, 2)} ms save, ${round(out.c.time['queue.dispatch']?.ms / CHAIN, 2)} ms dispatch, ${out.c.time.resultHandler.msPerResult} ms result handler; CPU ${out.c.cpuMs} ms; Redis ${out.c.redisPerNode.scripts} scripts/${out.c.redisPerNode.commands} cmds per node`);
  if (out.d?.d1) {
    const split = (s) => {
      const t = s.time;
      return `create ${t['store.create']?.ms ?? 0} ms, ${t['catalog.lookup']?.calls ?? 0} lookups ${t['catalog.lookup']?.ms ?? 0} ms, ${t['store.save']?.calls ?? 0} saves ${t['store.save']?.ms ?? 0} ms (avg ${t.nodesPerSave?.mean ?? 0} nodes), ${t['catalog.put']?.calls ?? 0} puts ${t['catalog.put']?.ms ?? 0} ms (${s.putEntries} entries), load ${t['store.load']?.ms ?? 0} ms, ${t.resultHandler.results} results; CPU ${s.cpuMs} ms`;
    };
    for (const c of ['d0', 'd1', 'd2a', 'd2b']) console.log(`    (${c}) split: ${split(out.d[c])}`);
    for (const s of out.d.d3) console.log(`    (d3 ${s.children}) split: ${split(s)}`);
  }
  if (DETAIL) {
    const sent = (label, sample) => {
      const bytes = sample?.time.saveJsonBytes;
      if (bytes !== undefined) console.log(`    saves ${label}: ${sample.roundTrips.storeCreates} create + ${sample.roundTrips.storeSaves} saves, node json ${bytes.perSave} B per save (max ${bytes.max}, total ${bytes.total})`);
    };
    sent('(a) wide, cache off', out.a);
    sent('(b) wide, all HIT', out.b);
    sent('(b) chain, all HIT', out.b?.chainCached);
    sent('(b) chain, populate (executed, cache on)', out.b?.chainPopulate);
    sent('(c) chain, cache off', out.c);
  }
  if (out.decide) console.log(`    decide() on ${out.decide.nodes} nodes: ${out.decide.msPerDecide} ms per round; run state JSON ${out.runJsonBytes} bytes`);
}
console.log(JSON.stringify({ bench: 'memoflow', ...out }));
process.exit(exitCode);
