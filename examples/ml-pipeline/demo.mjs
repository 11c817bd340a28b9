// `npm run demo`: trains the housing model twice through the real `memoflow` CLI, in embedded mode
// with a fresh data dir, and shows that the second run is served entirely from the cache, including
// the dynamic fan-out (one model per feature set). Then it shows the dynamic node's cached "future":
// a run in which one child crashes, and a rerun that reads the compiled fan-out back (FUTURE_HIT)
// and executes only the crashed child.
//
// Exits non-zero if a run does not do what it should. The CLI is used exactly as a user would type
// it; structured details come from `memoflow runs show <id> --json`.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = 'packages/sdk/bin/memoflow.js';
const DATA_DIR = '.memoflow/demo';
const FLOWS = 'examples/ml-pipeline/flows.ts';
const INPUTS = { path: 'examples/ml-pipeline/data/housing.csv', l2: 0.1, testFraction: 0.2, seed: 7 };
const FEATURES = ['sqft', 'bedrooms', 'bathrooms', 'age_years', 'distance_km'];
const DYNAMIC = 'train_each';
// Run 3's fault injection (see housing.fit_subset in flows.ts): every feature set without it crashes.
const CRASH = { HOUSING_CRASH_WITHOUT: 'bedrooms' };

const bold = (text) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const heading = (text) => process.stdout.write(`\n${bold(`== ${text}`)}\n`);
const shell = (args) => ['memoflow', ...args].map((a) => (/^[\w./=@:-]+$/.test(a) ? a : `'${a}'`)).join(' ');

// Force embedded mode: with DATABASE_URL set the CLI would use that Postgres, whose cache this demo
// cannot empty, and the first run could already be a HIT.
const env = { ...process.env };
delete env.DATABASE_URL;
delete env.REDIS_URL;
delete env.MEMOFLOW_DATA_DIR;
delete env.HOUSING_CRASH_WITHOUT;

/**
 * Runs the CLI from the repository root. With `stream`, its standard error (the node log) is passed
 * through live; standard output is always collected. Resolves with the exit code, both outputs and
 * the wall time.
 */
function memoflow(args, { stream = false, extraEnv = {} } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      stderr += chunk;
      if (stream) process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - started }));
  });
}

function fail(message, detail = '') {
  process.stderr.write(`\ndemo failed: ${message}\n${detail}`);
  process.exit(1);
}

/**
 * Runs housing.train. With `extraEnv`, that goes into the CLI's environment (and, in the command
 * shown, in front of it). `expectFailure`: the run must fail (exit code 1) instead of succeeding.
 */
async function train(label, { extraEnv = {}, expectFailure = false } = {}) {
  const args = ['run', FLOWS, 'housing.train', ...Object.entries(INPUTS).flatMap(([k, v]) => ['--input', `${k}=${v}`]), '--data-dir', DATA_DIR];
  const prefix = Object.entries(extraEnv).map(([k, v]) => `${k}=${v} `).join('');
  heading(`${label}: ${prefix}${shell(args)}`);
  const result = await memoflow(args, { stream: true, extraEnv });
  // The CLI's last line on standard error: "run <id> succeeded (9 nodes: ...)".
  const runId = /^run (\S+) (?:succeeded|failed)/m.exec(result.stderr)?.[1];
  if (result.code !== (expectFailure ? 1 : 0) || runId === undefined) {
    fail(`${label} exited with code ${result.code}${expectFailure ? ', expected 1 (a failed run)' : ''}`, result.stdout);
  }
  const shown = await memoflow(['runs', 'show', runId, '--json', '--data-dir', DATA_DIR]);
  if (shown.code !== 0) fail(`memoflow runs show ${runId} exited with code ${shown.code}`, shown.stderr);
  return { ...JSON.parse(shown.stdout), wallMs: result.ms, stderr: result.stderr };
}

function statusOf(node) {
  if (node.status === 'failed') return `FAILED (${node.cacheStatus})`;
  if (node.status === 'aborted') return 'not run';
  return node.cacheStatus === 'SKIPPED' ? `SKIPPED(${node.cacheReason})` : node.cacheStatus ?? node.status;
}

/**
 * One line per run: which nodes executed (with their cache status) and which were HITs. The children
 * of the dynamic node are counted by status rather than listed.
 */
function describe(label, report) {
  const top = report.nodes.filter((node) => node.parent === null);
  const children = report.nodes.filter((node) => node.parent !== null);
  const executed = top.filter((node) => node.cacheStatus !== 'HIT');
  const hits = top.filter((node) => node.cacheStatus === 'HIT');
  const runMs = new Date(report.finishedAt).getTime() - new Date(report.createdAt).getTime();
  console.log(`${bold(label)}  run ${report.id}  ${report.status}  wall ${(report.wallMs / 1000).toFixed(2)} s (run itself ${runMs} ms)`);
  console.log(`  executed (${executed.length}): ${executed.map((n) => `${n.id} ${statusOf(n)}`).join(', ') || 'none'}`);
  console.log(`  from the cache (${hits.length}): ${hits.map((n) => n.id).join(', ') || 'none'}`);
  const counts = new Map();
  for (const node of children) counts.set(statusOf(node), (counts.get(statusOf(node)) ?? 0) + 1);
  console.log(`  ${DYNAMIC}'s children (${children.length}): ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ') || `not expanded`}`);
}

const setName = (features) => (features.length === FEATURES.length ? 'all five' : `without ${FEATURES.find((f) => !features.includes(f))}`);

if (!existsSync(new URL(`../../packages/sdk/dist/cli/main.js`, import.meta.url))) {
  fail('the packages are not built: run `npm run demo` (it builds first) or `npx turbo run build`');
}
rmSync(new URL(`../../${DATA_DIR}/`, import.meta.url), { recursive: true, force: true });
console.log(`memoflow demo: a house-price model, trained twice, then twice more to show a dynamic node's future. Catalog and run store: ${DATA_DIR} (emptied).`);

const first = await train(`Run 1 (cold cache: every node executes, and ${DYNAMIC} expands)`);
const second = await train('Run 2 (same inputs: every node should be a HIT)');

heading('Summary');
describe('run 1', first);
describe('run 2', second);
console.log('  (wall time includes starting node, loading flows.ts and opening the embedded database, which run 1 also');
console.log('   creates; these tasks take milliseconds, so a HIT saves little here: it pays off when a task takes minutes)');
const { metrics, model } = second.outputs;
const dropped = first.nodes.find((node) => node.id === 'clean')?.output?.dropped ?? [];
console.log(`\nclean dropped ${dropped.length} rows: ${dropped.map((d) => `${d.id} (${d.reason})`).join('; ')}`);
console.log(`held-out test set: n=${metrics.n}  RMSE $${Math.round(metrics.rmse).toLocaleString('en-US')}  R² ${metrics.r2.toFixed(3)}`);
console.log(`model: price ≈ $${Math.round(model.bias).toLocaleString('en-US')} + Σ weight × standardised feature`);
model.weights.forEach((w, i) => console.log(`  ${(FEATURES[i] ?? `x${i}`).padEnd(12)} ${w >= 0 ? '+' : '-'}$${Math.round(Math.abs(w)).toLocaleString('en-US')} per std`));
const candidates = second.nodes.find((node) => node.id === DYNAMIC)?.output ?? [];
console.log(`\nfan-out (${DYNAMIC}, dynamic): one model per feature set, test RMSE`);
for (const c of candidates) console.log(`  ${setName(c.features).padEnd(22)} $${Math.round(c.metrics.rmse).toLocaleString('en-US').padStart(7)}  R² ${c.metrics.r2.toFixed(3)}`);
const { best } = second.outputs;
console.log(`best (pick_best): ${setName(best.features)} [${best.features.join(', ')}], RMSE $${Math.round(best.metrics.rmse).toLocaleString('en-US')}`);

for (const args of [['runs', 'ls'], ['runs', 'show', second.id]]) {
  heading(shell(args));
  const result = await memoflow([...args, '--data-dir', DATA_DIR]);
  process.stdout.write(result.stdout);
  if (result.code !== 0) fail(`${shell(args)} exited with code ${result.code}`, result.stderr);
}

// Checks on runs 1 and 2, before going on.
const firstChildren = first.nodes.filter((node) => node.parent === DYNAMIC);
if (!/ train_each +housing\.train_each .*expanded into/.test(first.stderr) || firstChildren.length !== 2 * candidates.length || candidates.length === 0) {
  fail(`run 1 did not expand ${DYNAMIC} into two children per feature set (${firstChildren.length} children, ${candidates.length} candidates)`);
}
const notHit = second.nodes.filter((node) => node.cacheStatus !== 'HIT');
if (second.nodes.length === 0 || notHit.length > 0) {
  fail(`run 2 was not fully served from the cache: ${notHit.map((n) => `${n.id} ${n.cacheStatus}`).join(', ')}`);
}
if (second.nodes.some((node) => node.parent !== null)) fail(`run 2 expanded ${DYNAMIC} instead of hitting it as a whole`);

// The future cache. Clearing a task's entries removes both kinds: the dynamic node's output and its
// future. The fits are cleared too, so that they run again and one of them can crash.
async function clear(task, expected) {
  const args = ['cache', 'clear', '--task', task, '--data-dir', DATA_DIR];
  heading(shell(args));
  const result = await memoflow(args);
  process.stdout.write(result.stdout);
  const cleared = Number(/cleared (\d+)/.exec(result.stdout)?.[1]);
  if (result.code !== 0 || cleared !== expected) fail(`${shell(args)}: expected to clear ${expected} entries`, result.stdout + result.stderr);
}
await clear('housing.train_each', 2); // the output and the future
await clear('housing.fit_subset', candidates.length);
const third = await train(`Run 3 (a fit crashes: ${DYNAMIC} misses, its body runs, the future is stored, the run fails)`, { extraEnv: CRASH, expectFailure: true });
const fourth = await train(`Run 4 (no crash: ${DYNAMIC} is a FUTURE_HIT, only the crashed fit and its evaluation execute)`);

heading('Summary of the future-cache runs');
describe('run 3', third);
describe('run 4', fourth);
const crashed = third.nodes.filter((node) => node.parent === DYNAMIC && node.status === 'failed');
const dyn = fourth.nodes.find((node) => node.id === DYNAMIC);
const ranInRun4 = fourth.nodes.filter((node) => node.parent === DYNAMIC && node.cacheStatus !== 'HIT').map((node) => node.id);
const expectedRan = crashed.flatMap((node) => [node.id, node.id.replace('fit_subset', 'evaluate_subset')]);
console.log(`  crashed in run 3: ${crashed.map((n) => n.id).join(', ') || 'none'}; executed in run 4: ${ranInRun4.join(', ') || 'none'}`);
if (third.status !== 'failed' || crashed.length !== 1) fail(`run 3 should have failed with exactly one crashed fit (it has ${crashed.length})`);
if (dyn?.cacheStatus !== 'FUTURE_HIT' || !/FUTURE_HIT .*compiled sub-workflow read from the catalog/.test(fourth.stderr)) {
  fail(`run 4: ${DYNAMIC} should be a FUTURE_HIT, it is ${dyn?.cacheStatus}`);
}
if (JSON.stringify([...ranInRun4].sort()) !== JSON.stringify([...expectedRan].sort())) {
  fail(`run 4 should execute only ${expectedRan.join(', ')}, it executed ${ranInRun4.join(', ')}`);
}
if (JSON.stringify(fourth.outputs) !== JSON.stringify(second.outputs)) fail('run 4 did not reproduce run 2\'s outputs');

console.log(`\nok: run 2 served all ${second.nodes.length} nodes from the cache (${(first.wallMs / 1000).toFixed(2)} s -> ${(second.wallMs / 1000).toFixed(2)} s wall);`);
console.log(`    run 4 replayed ${DYNAMIC}'s future and executed ${ranInRun4.length} of its ${fourth.nodes.filter((n) => n.parent === DYNAMIC).length} children.`);
