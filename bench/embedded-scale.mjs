// Embedded scale (issue 9): N no-op tasks run in this process by the in-process dispatcher, with
// in-memory stores (the controller's own cost, nothing else) and with the embedded default
// (PGlite in a temp dir, as `connect()` opens it). Prints per-node cost and how it scales.
//
// Targets: 8,000 no-op nodes in-process < 2 s end to end; per-node cost at the largest size within
// 1.5x of that at 1,000 (linear scaling).
//
// Usage: node bench/embedded-scale.mjs [--sizes=1000,8000] [--pglite=1000,8000] [--chain=200]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore } from '@memoflow/engine';
import { connect, task, workflow, z } from '@memoflow/sdk';
import { InProcessTaskDispatcher, silentLogger } from '@memoflow/worker';

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const list = (value, fallback) => (value ?? fallback).split(',').filter(Boolean).map(Number);
const SIZES = list(args.sizes, '1000,8000');
const PGLITE = list(args.pglite, '1000,8000');
const CHAIN = Number(args.chain ?? 200);

const noop = task({ name: 'scale.noop', inputs: { i: z.number() }, output: z.number() }, ({ i }) => i);
const noopCached = task({ name: 'scale.noop-cached', inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, ({ i }) => i);
const step = task({ name: 'scale.step', inputs: { v: z.number() }, output: z.number() }, ({ v }) => v + 1);
const wide = (n, t) => workflow({ name: `scale.wide-${t.taskName}-${n}`, inputs: {} }, () => ({ out: Array.from({ length: n }, (_, i) => t({ i })) }));
const chain = (n) =>
  workflow({ name: `scale.chain-${n}`, inputs: {} }, () => {
    let v = step({ v: 0 });
    for (let i = 1; i < n; i += 1) v = step({ v });
    return { out: v };
  });

function mark(label, value, target, met) {
  console.log(`${label.padEnd(58)} ${value.padStart(14)}   target ${target.padEnd(12)} ${met ? 'MET' : 'MISSED'}`);
}

/** The engine alone: in-memory stores, the in-process dispatcher (concurrency 8, as connect() sets it). */
async function inMemory(wf) {
  const tasks = new Map([...wf.tasks].map(([name, t]) => [name, t.implementation]));
  const dispatcher = new InProcessTaskDispatcher({ tasks, logger: silentLogger });
  const runStore = new InMemoryRunStore();
  let saves = 0;
  const save = runStore.save.bind(runStore);
  runStore.save = (request) => ((saves += 1), save(request));
  const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore, dispatcher });
  const started = performance.now();
  const cpu = process.cpuUsage();
  const id = await controller.submit({ spec: wf.spec, inputs: {}, project: 'scale', domain: 'dev' });
  const state = await controller.wait(id);
  const ms = performance.now() - started;
  const cpuMs = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / 1000;
  await controller.close();
  await dispatcher.close();
  if (state.run.status !== 'succeeded') throw new Error(`run ${id} ${state.run.status}: ${state.run.error?.message}`);
  return { ms, cpuMs, saves };
}

/** The embedded default: `connect()` on a fresh PGlite data directory. */
async function embedded(wf, { rerun = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'memoflow-scale-'));
  const mf = await connect({ dataDir: dir, log: 'silent' });
  try {
    const time = async () => {
      const started = performance.now();
      const run = await mf.run(wf, {});
      await run.result();
      return performance.now() - started;
    };
    const first = await time();
    return { first, again: rerun ? await time() : null };
  } finally {
    await mf.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`embedded scale: node ${process.version}; in-memory stores unless PGlite is named`);
const perNode = new Map();
for (const n of SIZES) {
  const wf = wide(n, noop);
  void wf.spec; // trace before timing
  const r = await inMemory(wf);
  perNode.set(n, r.ms / n);
  console.log(`in-memory, ${n} no-op nodes (wide): ${r.ms.toFixed(0)} ms (${((r.ms / n) * 1000).toFixed(0)} µs/node, CPU ${r.cpuMs.toFixed(0)} ms, ${r.saves} saves)`);
}
const c = chain(CHAIN);
void c.spec;
const rc = await inMemory(c);
console.log(`in-memory, chain of ${CHAIN}: ${rc.ms.toFixed(0)} ms (${(rc.ms / CHAIN).toFixed(2)} ms/node, ${rc.saves} saves)`);
for (const n of PGLITE) {
  const wf = wide(n, noopCached);
  void wf.spec;
  const r = await embedded(wf, { rerun: true });
  console.log(`embedded (PGlite), ${n} cached no-op nodes: first run ${r.first.toFixed(0)} ms (${((r.first / n) * 1000).toFixed(0)} µs/node), cached rerun ${r.again?.toFixed(0)} ms`);
}
console.log('');
const largest = Math.max(...SIZES);
const at8000 = SIZES.includes(8000) ? perNode.get(8000) * 8000 : undefined;
if (at8000 !== undefined) mark('8,000 no-op nodes in-process, end to end (in-memory stores)', `${at8000.toFixed(0)} ms`, '< 2,000 ms', at8000 < 2000);
if (SIZES.includes(1000) && largest > 1000) {
  const ratio = perNode.get(largest) / perNode.get(1000);
  mark(`per-node cost at ${largest} vs 1,000`, `x${ratio.toFixed(2)}`, '<= x1.5', ratio <= 1.5);
}
