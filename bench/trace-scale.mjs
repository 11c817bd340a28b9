// How long the SDK takes to trace a workflow of n calls of one task (what a dynamic fan-out's body
// does on its worker), best of 2 after a warm-up. No Postgres or Redis needed.
//   node bench/trace-scale.mjs [250,500,1000,2000,4000,8000]
// Linear tracing keeps µs/call flat; in issue 4's bench it doubled with n (WorkflowTrace.uniqueId).
import { performance } from 'node:perf_hooks';
import * as sdk from '@memoflow/sdk';

const { task, workflow, z } = sdk;
const sizes = (process.argv[2] ?? '250,500,1000,2000,4000,8000').split(',').map(Number);
const noop = task({ name: 'trace.noop', inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, ({ i }) => i);

let serial = 0;
function traceMs(n) {
  const wf = workflow({ name: `trace.wide-${n}-${serial++}`, inputs: {} }, () => {
    let last;
    for (let i = 0; i < n; i++) last = noop({ i });
    return { last };
  });
  const started = performance.now();
  void wf.spec; // traced on first access
  return performance.now() - started;
}

traceMs(2000);
traceMs(2000);
const rows = sizes.map((n) => {
  const ms = Math.min(traceMs(n), traceMs(n));
  return { calls: n, ms: Number(ms.toFixed(1)), usPerCall: Number(((ms / n) * 1000).toFixed(1)) };
});
for (const r of rows) console.log(`${String(r.calls).padStart(6)} calls  ${String(r.ms).padStart(8)} ms  ${String(r.usPerCall).padStart(6)} µs/call`);
const first = rows[0];
const last = rows[rows.length - 1];
console.log(`µs/call at ${last.calls} vs ${first.calls}: x${(last.usPerCall / first.usPerCall).toFixed(2)}`);
console.log(JSON.stringify({ bench: 'memoflow-trace-scale', rows }));
