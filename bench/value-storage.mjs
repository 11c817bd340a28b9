// `node bench/value-storage.mjs`: where a task's value is stored, and how many bytes each node costs in
// Redis and in Postgres, in the distributed mode on local Redis and Postgres (issue 9, item 8: "each
// value is stored once"). Not part of `npm test`; build first (`npx turbo run build`).
//
// Scenarios (caching on, so the catalog holds its copy too; every node runs: a fresh schema each):
//   distinct  N/2 producers each returning a different SIZE-byte string, each read by one consumer
//             that returns another SIZE-byte string (its input reversed): N nodes with SIZE-byte
//             outputs, N/2 of them with a SIZE-byte input.
//   shared    1 producer returning a SIZE-byte string, read by N consumers returning a number: one
//             value in N job payloads.
// The strings are random (base64 of SHA-512 chains), so Postgres' TOAST compression cannot hide them.
//
// For each scenario, on its own BullMQ prefix and Postgres schema:
//   Redis   MEMORY USAGE (SAMPLES 0) summed over the prefix's keys, by kind (task jobs, the task
//           queues' BullMQ event streams, the results stream, published-result markers, stored
//           values, the rest of BullMQ's queue structure); the peak during the run (sampled every
//           200 ms); after the run (every result acknowledged); and after the dispatcher's
//           maintenance pass has run (trims, claims: --claim-idle-ms, default 2,000, i.e. every 1 s).
//           Also INFO used_memory before/after, which counts the whole server: other clients of a
//           shared Redis add noise to that one, not to the per-prefix figures.
//   Postgres pg_total_relation_size of runs, node_executions, cache_entries (TOAST and indexes
//           included) as left by the run and after VACUUM FULL (live rows only); the JSON text in
//           the value columns (node inputs, node outputs, catalog values, run outputs).
// Everything is divided by the run's node count. Prints a table per scenario and one JSON line.
//
// Options: --only=distinct,shared  --nodes=1000  --size=10240  --concurrency=8  --claim-idle-ms=2000
//          --value-ref-bytes=N|null (the size from which inputs and outputs go by reference, `null` for
//          never; passed to the dispatcher and the pool, which ignore it where the option does not
//          exist, i.e. before issue 9 item 8; default: theirs, 8 KiB)
// Environment: BENCH_DATABASE_URL or DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
//              REDIS_URL (default redis://127.0.0.1:6379).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as sdk from '@memoflow/sdk';
import { Controller } from '@memoflow/engine';
import { openPostgresStorage } from '@memoflow/catalog';
import { BullMqTaskDispatcher, silentLogger, startWorker, toRedisOptions } from '@memoflow/worker';
import { Redis } from 'ioredis';
import postgres from 'postgres';

const { task, workflow, z } = sdk;

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, value ?? 'true'];
  }),
);
const ONLY = (args.only ?? 'distinct,shared').split(',');
const NODES = Number(args.nodes ?? 1000);
const SIZE = Number(args.size ?? 10240);
const CONCURRENCY = Number(args.concurrency ?? 8);
const CLAIM_IDLE_MS = Number(args['claim-idle-ms'] ?? 2000);
const VALUE_REF_BYTES = args['value-ref-bytes'] === undefined ? undefined : args['value-ref-bytes'] === 'null' ? null : Number(args['value-ref-bytes']);
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

if (!existsSync(new URL('../packages/sdk/dist/index.js', import.meta.url))) {
  console.error('the packages are not built: run `npx turbo run build` first');
  process.exit(1);
}

// --- tasks and workflows -------------------------------------------------------------------------

/** `size` characters of base64, different for every seed, deterministic (a task may run twice). */
function randomText(seed, size) {
  const parts = [];
  let length = 0;
  for (let n = 0; length < size; n++) {
    const part = createHash('sha512').update(`${seed}:${n}`).digest('base64');
    parts.push(part);
    length += part.length;
  }
  return parts.join('').slice(0, size);
}

const cache = { version: '1' };
const blob = task({ name: 'vs.blob', inputs: { i: z.number(), size: z.number() }, output: z.string(), cache }, ({ i, size }) => randomText(i, size));
const reverse = task({ name: 'vs.reverse', inputs: { s: z.string() }, output: z.string(), cache }, ({ s }) => [...s].reverse().join(''));
const measure = task({ name: 'vs.measure', inputs: { s: z.string(), i: z.number() }, output: z.number(), cache }, ({ s, i }) => s.length + i);
const TASKS = [blob, reverse, measure];

const SCENARIOS = {
  distinct: () =>
    workflow({ name: 'vs.distinct', inputs: {} }, () => {
      let last;
      for (let k = 0; k < NODES / 2; k++) last = reverse({ s: blob({ i: k, size: SIZE }) });
      return { last };
    }),
  shared: () =>
    workflow({ name: 'vs.shared', inputs: {} }, () => {
      const s = blob({ i: 0, size: SIZE });
      let last;
      for (let k = 0; k < NODES; k++) last = measure({ s, i: k });
      return { last };
    }),
};

// --- Redis accounting ----------------------------------------------------------------------------

/** What a key of the prefix is, from its name and type. */
function kindOf(prefix, key, type) {
  const rest = key.slice(prefix.length + 1);
  if (rest === 'results-stream') return 'resultsStream';
  if (rest.startsWith('results-seen:')) return 'resultMarkers';
  if (rest.startsWith('values:') || rest.startsWith('value-holders:')) return 'storedValues';
  if (rest.endsWith(':events')) return 'queueEvents';
  // A task job is a hash `<prefix>:task.<name>:<attempt id>`; the queue's own hashes are `meta` and the like.
  if (type === 'hash' && /^task\.[^:]+:[^:]+$/.test(rest) && !/:(meta|metrics.*|limiter)$/.test(rest)) return 'taskJobs';
  return 'queueStructure';
}

/** Bytes of every key of the prefix by kind (MEMORY USAGE SAMPLES 0: nested values counted exactly). */
async function prefixMemory(redis, prefix) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const out = { total: 0, keys: keys.length, byKind: {} };
  for (let i = 0; i < keys.length; i += 500) {
    const slice = keys.slice(i, i + 500);
    const pipeline = redis.pipeline();
    for (const key of slice) {
      pipeline.type(key);
      pipeline.memory('USAGE', key, 'SAMPLES', 0);
    }
    const replies = await pipeline.exec();
    slice.forEach((key, j) => {
      const type = replies[2 * j][1];
      const bytes = Number(replies[2 * j + 1][1] ?? 0);
      const kind = kindOf(prefix, key, type);
      const entry = (out.byKind[kind] ??= { bytes: 0, keys: 0 });
      entry.bytes += bytes;
      entry.keys += 1;
      out.total += bytes;
    });
  }
  return out;
}

async function usedMemory(redis) {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)[1]);
}

/** Samples prefixMemory every `everyMs` until stopped; returns the sample with the highest total. */
function peakSampler(redis, prefix, everyMs = 200) {
  let peak = { total: 0, byKind: {}, keys: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const sample = await prefixMemory(redis, prefix);
      if (sample.total > peak.total) peak = sample;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return peak;
  };
}

/** Waits until the group holds nothing pending (every result acknowledged). */
async function resultsSettled(redis, prefix) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const summary = await redis.xpending(`${prefix}:results-stream`, 'controllers').catch(() => [0]);
    if (Number(summary[0]) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('results still pending after 10 s');
}

// --- Postgres accounting -------------------------------------------------------------------------

async function postgresBytes(sql, schema) {
  const size = async () => {
    const rows = await sql.unsafe(
      `SELECT c.relname AS name, pg_total_relation_size(c.oid)::bigint AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname IN ('runs', 'node_executions', 'cache_entries')`,
      [schema],
    );
    return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
  };
  const asLeft = await size();
  const [text] = await sql.unsafe(
    `SELECT (SELECT coalesce(sum(octet_length(inputs::text)), 0) FROM "${schema}".node_executions)::bigint AS node_inputs,
            (SELECT coalesce(sum(octet_length(output::text)), 0) FROM "${schema}".node_executions)::bigint AS node_outputs,
            (SELECT coalesce(sum(octet_length(value::text)), 0) FROM "${schema}".cache_entries)::bigint AS catalog_values,
            (SELECT coalesce(sum(octet_length(outputs::text)), 0) FROM "${schema}".runs)::bigint AS run_outputs`,
  );
  for (const table of ['runs', 'node_executions', 'cache_entries']) await sql.unsafe(`VACUUM FULL "${schema}".${table}`);
  const live = await size();
  return { asLeft, live, jsonText: Object.fromEntries(Object.entries(text).map(([k, v]) => [k, Number(v)])) };
}

// --- one scenario --------------------------------------------------------------------------------

async function runScenario(name) {
  const tag = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const schema = `bench_vs_${tag}`;
  const prefix = `bench-vs-${tag}`;
  const redis = new Redis(toRedisOptions(REDIS_URL, `${prefix}.stats`));
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => undefined });
  const refOption = VALUE_REF_BYTES === undefined ? {} : { valueRefThresholdBytes: VALUE_REF_BYTES };
  const storage = await openPostgresStorage({ url: DATABASE_URL, schema });
  const dispatcher = new BullMqTaskDispatcher({
    connection: REDIS_URL,
    prefix,
    // the default resultBatchSize, as connect() builds it
    resultClaimIdleMs: CLAIM_IDLE_MS,
    logger: silentLogger,
    ...refOption,
  });
  const controller = new Controller({ catalog: storage.catalog, runStore: storage.runStore, dispatcher, onEvent: () => undefined });
  const pool = await startWorker({
    tasks: TASKS.map((t) => t.implementation),
    redisUrl: REDIS_URL,
    prefix,
    concurrency: CONCURRENCY,
    logger: silentLogger,
    ...refOption,
  });
  try {
    const wf = SCENARIOS[name]();
    const spec = wf.spec;
    const nodes = spec.nodes.length;
    const before = await prefixMemory(redis, prefix);
    const usedBefore = await usedMemory(redis);
    const stopSampler = peakSampler(redis, prefix);
    const started = performance.now();
    const id = await controller.submit({ spec, inputs: wf.prepareInputs({}), project: 'bench', domain: 'bench' });
    const state = await controller.wait(id);
    const ms = performance.now() - started;
    const peak = await stopSampler();
    if (state.run.status !== 'succeeded') throw new Error(`run ${id} ${state.run.status}: ${JSON.stringify(state.run.error)}`);
    await resultsSettled(redis, prefix);
    const afterRun = await prefixMemory(redis, prefix);
    const usedAfter = await usedMemory(redis);
    await new Promise((resolve) => setTimeout(resolve, CLAIM_IDLE_MS)); // two maintenance passes
    const afterMaintenance = await prefixMemory(redis, prefix);
    await controller.close();
    await dispatcher.close();
    await pool.close();
    await storage.close();
    const pg = await postgresBytes(sql, schema);
    return { scenario: name, nodes, size: SIZE, ms, redis: { before, peak, afterRun, afterMaintenance, usedMemoryDelta: usedAfter - usedBefore }, postgres: pg };
  } finally {
    await controller.close().catch(() => undefined);
    await dispatcher.close().catch(() => undefined);
    await pool.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch((e) => console.error(`dropping ${schema}:`, e));
    await sql.end();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
    redis.disconnect();
  }
}

// --- report --------------------------------------------------------------------------------------

const KINDS = ['taskJobs', 'queueEvents', 'resultsStream', 'resultMarkers', 'storedValues', 'queueStructure'];
const perNode = (bytes, nodes) => Math.round(bytes / nodes);

function print(r) {
  const n = r.nodes;
  console.log(`\n${r.scenario}: ${n} nodes, ${r.size}-byte values, ${Math.round(r.ms)} ms`);
  console.log('Redis bytes per node (MEMORY USAGE over the prefix)');
  console.log(`  ${'kind'.padEnd(16)}${'peak'.padStart(10)}${'after run'.padStart(12)}${'after maint.'.padStart(14)}`);
  for (const kind of [...KINDS, 'total']) {
    const get = (m) => (kind === 'total' ? m.total : (m.byKind[kind]?.bytes ?? 0));
    console.log(`  ${kind.padEnd(16)}${String(perNode(get(r.redis.peak), n)).padStart(10)}${String(perNode(get(r.redis.afterRun), n)).padStart(12)}${String(perNode(get(r.redis.afterMaintenance), n)).padStart(14)}`);
  }
  console.log(`  keys after maintenance: ${r.redis.afterMaintenance.keys}; INFO used_memory delta per node (whole server): ${perNode(r.redis.usedMemoryDelta, n)}`);
  console.log('Postgres bytes per node (pg_total_relation_size)');
  console.log(`  ${'table'.padEnd(16)}${'as left'.padStart(10)}${'live'.padStart(10)}`);
  for (const table of ['node_executions', 'runs', 'cache_entries']) {
    console.log(`  ${table.padEnd(16)}${String(perNode(r.postgres.asLeft[table] ?? 0, n)).padStart(10)}${String(perNode(r.postgres.live[table] ?? 0, n)).padStart(10)}`);
  }
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  console.log(`  ${'total'.padEnd(16)}${String(perNode(sum(r.postgres.asLeft), n)).padStart(10)}${String(perNode(sum(r.postgres.live), n)).padStart(10)}`);
  const t = r.postgres.jsonText;
  console.log(`  JSON text per node: node inputs ${perNode(t.node_inputs, n)}, node outputs ${perNode(t.node_outputs, n)}, catalog values ${perNode(t.catalog_values, n)}, run outputs ${perNode(t.run_outputs, n)}`);
}

const results = [];
for (const name of ONLY) {
  if (!(name in SCENARIOS)) throw new Error(`unknown scenario '${name}' (${Object.keys(SCENARIOS).join(', ')})`);
  const r = await runScenario(name);
  print(r);
  results.push(r);
}
console.log(
  JSON.stringify({
    bench: 'value-storage',
    nodes: NODES,
    size: SIZE,
    valueRefBytes: VALUE_REF_BYTES === undefined ? 'default' : VALUE_REF_BYTES,
    results: results.map((r) => ({
      scenario: r.scenario,
      nodes: r.nodes,
      ms: Math.round(r.ms),
      redisPerNode: Object.fromEntries(
        ['peak', 'afterRun', 'afterMaintenance'].map((when) => [when, perNode(r.redis[when].total, r.nodes)]),
      ),
      redisByKindAfterMaintenance: Object.fromEntries(Object.entries(r.redis.afterMaintenance.byKind).map(([k, v]) => [k, perNode(v.bytes, r.nodes)])),
      postgresPerNode: {
        asLeft: Object.fromEntries(Object.entries(r.postgres.asLeft).map(([k, v]) => [k, perNode(v, r.nodes)])),
        live: Object.fromEntries(Object.entries(r.postgres.live).map(([k, v]) => [k, perNode(v, r.nodes)])),
      },
    })),
  }),
);
