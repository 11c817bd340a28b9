// `npm run bench`: memoflow's distributed mode (Postgres catalog and run store, BullMQ workers) on
// local Postgres and Redis, against raw BullMQ. Issue 3, item 5 (and issue 4, item 5 once dynamic()
// exists). Not part of `npm test`.
//
//   (a) 1,000 no-op tasks as a wide DAG (one level, 1,000 independent nodes), caching off, against
//       the same 1,000 jobs through raw BullMQ (Queue.addBulk + a Worker running a no-op
//       processor). Same concurrency; the memoflow controller, its worker pool and the raw
//       Worker all live in this one process.
//   (b) the same DAG fully cached (populated once, then re-run): time per node, catalog round
//       trips (lookups per DAG level, puts) and run-store round trips, speed-up over (a). Also a
//       200-node chain fully cached, for lookups per level on a deep DAG.
//   (c) a 200-node chain, caching off: milliseconds per node.
//   (d) fan-out of 1,000 cached children (issue 4): only once @memoflow/sdk exports dynamic().
//
// A warm-up run of each kind first; each measurement is repeated (default 3) and the median
// reported. Prints a table, then one JSON line with every number.
//
// Options: --only=a,b,c   --repeats=N   --concurrency=N   --width=N   --chain=N
//          --result-concurrency=N (the dispatcher's; default 32, as connect() sets it)
//          --detail (also payload sizes of saves and a decide() micro-benchmark)
//          --profile (CPU-profiles only the measured memoflow runs of each section into
//                     bench/profiles/<section>.cpuprofile; summarise with bench/profile-summary.mjs)
// Environment: BENCH_DATABASE_URL or DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
//              REDIS_URL (default redis://127.0.0.1:6379).
// Every run uses a fresh Postgres schema and a fresh BullMQ prefix, both removed at the end.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import * as sdk from '@memoflow/sdk';
import { Controller, decide } from '@memoflow/engine';
import { openPostgresStorage } from '@memoflow/catalog';
import { BullMqTaskDispatcher, silentLogger, startWorker, toRedisOptions } from '@memoflow/worker';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import postgres from 'postgres';

const { task, workflow, z } = sdk;

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
const RESULT_CONCURRENCY = Number(args['result-concurrency'] ?? 32);
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

// No-op bodies: the work measured is memoflow's, not the tasks'.
const noop = task({ name: 'bench.noop', inputs: { i: z.number() }, output: z.number() }, ({ i }) => i);
const noopCached = task({ name: 'bench.noop-cached', inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, ({ i }) => i);
const step = task({ name: 'bench.step', inputs: { v: z.number() }, output: z.number() }, ({ v }) => v + 1);
const stepCached = task({ name: 'bench.step-cached', inputs: { v: z.number() }, output: z.number(), cache: { version: '1' } }, ({ v }) => v + 1);
const ALL_TASKS = [noop, noopCached, step, stepCached];

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
    this.results = { count: 0, handleMs: 0, maxHandleMs: 0, queueLatencyMs: 0 };
    this.lookupSizes = [];
    this.saveSizes = [];
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
    return structuredClone({ ops: this.ops, results: this.results, lookupSizes: this.lookupSizes, saveSizes: this.saveSizes });
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
        const bytes = DETAIL && op === 'store.save' ? JSON.stringify(callArgs[0].nodes).length : 0;
        const started = performance.now();
        try {
          return await value.apply(obj, callArgs);
        } finally {
          const ms = performance.now() - started;
          stats.record(op, ms, items, bytes);
          if (op === 'catalog.lookup') stats.lookupSizes.push(items);
          if (op === 'store.save') stats.saveSizes.push(items);
        }
      };
    },
  });
}

/** The dispatcher, with its dispatches counted and the controller's result handler timed. */
function countingDispatcher(dispatcher) {
  return {
    dispatch: async (attempts) => {
      const started = performance.now();
      try {
        return await dispatcher.dispatch(attempts);
      } finally {
        stats.record('queue.dispatch', performance.now() - started, attempts.length);
      }
    },
    onResult: (handler) =>
      dispatcher.onResult(async (result) => {
        const started = performance.now();
        // Same process, same clock: how long the result waited in the results queue.
        stats.results.queueLatencyMs += Math.max(0, Date.now() - result.finishedAt.getTime());
        await handler(result);
        const ms = performance.now() - started;
        stats.results.count++;
        stats.results.handleMs += ms;
        stats.results.maxHandleMs = Math.max(stats.results.maxHandleMs, ms);
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
let inspector;
async function profiled(section, body) {
  if (!PROFILE) return body();
  if (inspector === undefined) {
    inspector = new Session();
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
  }
  await inspector.post('Profiler.start');
  try {
    return await body();
  } finally {
    const { profile } = await inspector.post('Profiler.stop');
    const dir = new URL('./profiles/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    writeFileSync(new URL(`${section}.cpuprofile`, dir), JSON.stringify(profile));
  }
}

// --- the two systems -----------------------------------------------------------------------------

async function openMemoflow() {
  const storage = await openPostgresStorage({ url: DATABASE_URL, schema: SCHEMA });
  const catalog = counting(storage.catalog, 'catalog', ['lookup', 'put']);
  const runStore = counting(storage.runStore, 'store', ['load', 'save', 'create']);
  // As connect() builds it for distributed mode (resultConcurrency 32, silent logger).
  const bullmq = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix: PREFIX, resultConcurrency: RESULT_CONCURRENCY, logger: silentLogger });
  const dispatcher = countingDispatcher(bullmq);
  const controller = new Controller({ catalog, runStore, dispatcher, onEvent: () => undefined });
  const pool = await startWorker({
    tasks: ALL_TASKS.map((t) => t.implementation),
    redisUrl: REDIS_URL,
    prefix: PREFIX,
    concurrency: CONCURRENCY,
    logger: silentLogger,
  });
  return {
    /** Submits and waits; returns wall ms, the final state and what the run cost in round trips. */
    async run(wf, check) {
      const spec = wf.spec; // traced before the clock starts
      const inputs = wf.prepareInputs({});
      stats.reset();
      const { ms, cpuMs, redis, id, state } = await measured(async () => {
        const id = await controller.submit({ spec, inputs, project: 'bench', domain: 'bench' });
        return { id, state: await controller.wait(id) };
      });
      if (state.run.status !== 'succeeded') throw new Error(`run ${id} (${spec.name}) ${state.run.status}: ${JSON.stringify(state.run.error)}`);
      if (check !== undefined) {
        const allowed = [check].flat();
        const wrong = Object.values(state.nodes).filter((node) => !allowed.includes(node.cacheStatus));
        if (wrong.length > 0) throw new Error(`run ${id} (${spec.name}): ${wrong.length} node(s) not ${check}, e.g. ${wrong[0].nodeId} ${wrong[0].cacheStatus}`);
      }
      return { ms, cpuMs, redis, nodes: spec.nodes.length, stats: stats.snapshot() };
    },
    async close() {
      await controller.close();
      await dispatcher.close();
      await pool.close();
      await storage.close();
    },
  };
}

async function openRawBullMq() {
  const connection = toRedisOptions(REDIS_URL, `${PREFIX}.raw`);
  const queue = new Queue('raw', { connection, prefix: PREFIX });
  let pending = null;
  const worker = new Worker('raw', async (job) => job.data.i, { connection, prefix: PREFIX, concurrency: CONCURRENCY });
  worker.on('completed', () => {
    if (pending !== null && ++pending.done === pending.target) pending.resolve();
  });
  worker.on('error', (err) => console.error('raw worker:', err));
  await worker.waitUntilReady();
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
    async close() {
      await worker.close();
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
    msPerResult: round(s.results.handleMs / Math.max(1, s.results.count), 2),
    maxMs: round(s.results.maxHandleMs, 1),
    queueLatencyMsAvg: round(s.results.queueLatencyMs / Math.max(1, s.results.count), 2),
  };
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

// --- main ------------------------------------------------------------------------------------------

const log = (line) => process.stderr.write(`${line}\n`);
const out = { config: { concurrency: CONCURRENCY, resultConcurrency: RESULT_CONCURRENCY, width: WIDTH, chain: CHAIN, repeats: REPEATS, process: 'single (controller, memoflow pool and raw Worker in the bench process)', schema: SCHEMA, prefix: PREFIX } };
const rows = [];
let memoflow;
let raw;
let exitCode = 0;
try {
  log(`memoflow bench: schema ${SCHEMA}, prefix ${PREFIX}, concurrency ${CONCURRENCY}, ${REPEATS} repeats (median)`);
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
    rows.push(['(a) raw BullMQ, 1000 no-op jobs', `${a.rawMs} ms`, `${a.rawTasksPerSec} jobs/s`, '', '']);
    rows.push(['(a) memoflow wide DAG, cache off', `${a.memoflowMs} ms`, `${a.memoflowTasksPerSec} tasks/s`, `ratio ${a.ratio}`, `>= 0.8 ${a.ratio >= 0.8 ? 'MET' : 'MISSED'}`]);
  }

  if (ONLY.has('b')) {
    log(`(b) wide ${WIDTH}, fully cached`);
    const populate = await memoflow.run(wideOn, 'POPULATED');
    const hit = await repeat((i) => profiled(`b-${i + 1}`, () => memoflow.run(wideOn, 'HIT')));
    const trips = roundTrips(hit, 1);
    log(`(b) chain ${CHAIN}, fully cached`);
    // The cascade rule: downstream of an executed node is SKIPPED(upstream-reran), yet written.
    await memoflow.run(chainOn, ['POPULATED', 'SKIPPED']);
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
    };
    const perLevelOk = trips.lookupsPerLevel <= 1 && chainTrips.lookupsPerLevel <= 1;
    rows.push(['(b) memoflow wide DAG, all HIT', `${out.b.ms} ms`, `${out.b.msPerNode} ms/node`, `x${out.b.speedupOverA} vs (a)`, `>= 20x ${speedup >= 20 ? 'MET' : 'MISSED'}`]);
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
    const c = await repeat((i) => profiled(`c-${i + 1}`, () => memoflow.run(chainOff, 'DISABLED')));
    out.c = { ms: round(c.ms, 1), allMs: c.all, msPerNode: round(c.ms / CHAIN, 3), target: 3, cpuMs: round(c.cpuMs, 1), redisPerNode: { scripts: round(c.redis.scripts / CHAIN, 2), commands: round(c.redis.total / CHAIN, 2) }, roundTrips: roundTrips(c, CHAIN), time: timeSplit(c) };
    rows.push([`(c) memoflow chain ${CHAIN}, cache off`, `${out.c.ms} ms`, `${out.c.msPerNode} ms/node`, `${out.c.roundTrips.storeSaves} saves`, `<= 3 ms ${out.c.msPerNode <= 3 ? 'MET' : 'MISSED'}`]);
  }

  if (ONLY.has('d')) {
    if (typeof sdk.dynamic !== 'function') {
      out.d = { pending: 'issue 4: @memoflow/sdk does not export dynamic() yet' };
      rows.push(['(d) fan-out 1000 cached / 1 changed', 'pending', 'issue 4: no dynamic() in @memoflow/sdk yet', '', '']);
    } else {
      out.d = { pending: 'dynamic() exists; the fan-out case is not written yet (bench/FINDINGS.md)' };
      rows.push(['(d) fan-out 1000 cached / 1 changed', 'pending', 'dynamic() exists, case not written yet', '', '']);
    }
  }

  if (DETAIL) {
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
  console.log(`\nmemoflow bench (concurrency ${CONCURRENCY}, median of ${REPEATS}, one process; Postgres + BullMQ/Redis)`);
  for (const r of rows) console.log(line(r));
  if (out.a) {
    const t = out.a.time;
    console.log(`    (a) CPU of this process: raw ${out.a.rawCpuMs} ms, memoflow ${out.a.memoflowCpuMs} ms; Redis per task: raw ${out.a.rawRedisPerJob.scripts} scripts/${out.a.rawRedisPerJob.commands} cmds, memoflow ${out.a.memoflowRedisPerTask.scripts}/${out.a.memoflowRedisPerTask.commands}`);
    console.log(`    (a) split: ${out.a.roundTrips.storeSaves} saves (avg ${t.nodesPerSave?.mean} nodes, ${t['store.save']?.msPerCall} ms each), result handler ${t.resultHandler.msPerResult} ms/result, results-queue latency ${t.resultHandler.queueLatencyMsAvg} ms avg`);
  }
  if (out.b) {
    const t = out.b.time;
    console.log(`    (b) split: create ${t['store.create']?.ms} ms, lookup ${t['catalog.lookup']?.ms} ms, ${out.b.roundTrips.storeSaves} save(s) ${t['store.save']?.ms} ms, load ${t['store.load']?.ms} ms`);
  }
  if (out.c) console.log(`    (c) split: per node ${round(out.c.time['store.save']?.ms / CHAIN, 2)} ms save, ${round(out.c.time['queue.dispatch']?.ms / CHAIN, 2)} ms dispatch, ${out.c.time.resultHandler.msPerResult} ms result handler; CPU ${out.c.cpuMs} ms; Redis ${out.c.redisPerNode.scripts} scripts/${out.c.redisPerNode.commands} cmds per node`);
  if (out.decide) console.log(`    decide() on ${out.decide.nodes} nodes: ${out.decide.msPerDecide} ms per round; run state JSON ${out.runJsonBytes} bytes`);
}
console.log(JSON.stringify({ bench: 'memoflow', ...out }));
process.exit(exitCode);
