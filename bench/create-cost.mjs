// The cost of a run's create in the run store, isolated: the finished state of a fully cached wide
// run of N nodes, created again and again under new ids, alternately by a store that knows its
// spec is stored (it sends the digest only: workflow_specs) and by a fresh store (it sends the spec's
// text, as every create did before specs were stored once). Postgres, a schema of its own.
//   node bench/create-cost.mjs [--nodes=1000] [--repeats=30]
// Prints the median, min and max ms of each kind.
import { openPostgresStorage, PostgresRunStore } from '@memoflow/catalog';
import { Controller } from '@memoflow/engine';
import { workflow } from '@memoflow/sdk';
import { InProcessTaskDispatcher, silentLogger, toTaskRegistry } from '@memoflow/worker';
import { drizzle } from 'drizzle-orm/postgres-js';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { ALL_TASKS, noopCached } from './tasks.mjs';

const { values: args } = parseArgs({ options: { nodes: { type: 'string', default: '1000' }, repeats: { type: 'string', default: '30' } } });
const N = Number(args.nodes);
const REPEATS = Number(args.repeats);
const URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SCHEMA = `bench_create_${Date.now().toString(36)}`;

const storage = await openPostgresStorage({ url: URL, schema: SCHEMA });
const client = postgres(URL, { max: 2, onnotice: () => undefined, connection: { search_path: `"${SCHEMA}"`, DateStyle: 'ISO' } });
try {
  // The state to create: a wide run of N cached no-ops, run twice (the second all HIT).
  const dispatcher = new InProcessTaskDispatcher({ tasks: toTaskRegistry(ALL_TASKS.map((t) => t.implementation)), logger: silentLogger });
  const controller = new Controller({ catalog: storage.catalog, runStore: storage.runStore, dispatcher, onEvent: () => undefined });
  const wf = workflow({ name: `bench.create-${N}`, inputs: {} }, () => {
    let last;
    for (let i = 0; i < N; i++) last = noopCached({ i });
    return { last };
  });
  let finished;
  for (let r = 0; r < 2; r++) finished = await controller.wait(await controller.submit({ spec: wf.spec, inputs: wf.prepareInputs({}), project: 'bench', domain: 'create' }));
  await controller.close();
  await dispatcher.close();

  const knowing = new PostgresRunStore(drizzle({ client }));
  const times = { 'digest only (spec known stored)': [], 'spec text (fresh store)': [] };
  let n = 0;
  for (let i = 0; i < REPEATS; i++) {
    for (const kind of Object.keys(times)) {
      const store = kind.startsWith('digest') ? knowing : new PostgresRunStore(drizzle({ client }));
      const id = `create-${n++}`;
      const state = { run: { ...finished.run, id }, nodes: Object.fromEntries(Object.entries(finished.nodes).map(([k, v]) => [k, { ...v, runId: id }])) };
      const started = performance.now();
      await store.create(state);
      times[kind].push(performance.now() - started);
    }
  }
  console.log(`create of a finished ${N}-node run, ${REPEATS} each, alternated`);
  for (const [kind, ms] of Object.entries(times)) {
    ms.sort((a, b) => a - b);
    console.log(`  ${kind.padEnd(34)} median ${ms[Math.floor(ms.length / 2)].toFixed(1)} ms   min ${ms[0].toFixed(1)}   max ${ms.at(-1).toFixed(1)}`);
  }
} finally {
  await client.end();
  await storage.close();
  const admin = postgres(URL, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await admin.end();
}
