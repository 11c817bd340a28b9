// `npm run demo`: trains the housing model twice through the real `memoflow` CLI, in embedded mode
// with a fresh data dir, and shows that the second run is served entirely from the cache.
//
// Exits non-zero if a run fails or the second run executed anything. The CLI is used exactly as a
// user would type it; structured details come from `memoflow runs show <id> --json`.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = 'packages/sdk/bin/memoflow.js';
const DATA_DIR = '.memoflow/demo';
const FLOWS = 'examples/ml-pipeline/flows.ts';
const INPUTS = { path: 'examples/ml-pipeline/data/housing.csv', l2: 0.1, testFraction: 0.2, seed: 7 };
const FEATURES = ['sqft', 'bedrooms', 'bathrooms', 'age_years', 'distance_km'];

const bold = (text) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const heading = (text) => process.stdout.write(`\n${bold(`== ${text}`)}\n`);
const shell = (args) => ['memoflow', ...args].map((a) => (/^[\w./=@:-]+$/.test(a) ? a : `'${a}'`)).join(' ');

// Force embedded mode: with DATABASE_URL set the CLI would use that Postgres, whose cache this demo
// cannot empty, and the first run could already be a HIT.
const env = { ...process.env };
delete env.DATABASE_URL;
delete env.REDIS_URL;
delete env.MEMOFLOW_DATA_DIR;

/**
 * Runs the CLI from the repository root. With `stream`, its standard error (the node log) is passed
 * through live; standard output is always collected. Resolves with the exit code, both outputs and
 * the wall time.
 */
function memoflow(args, { stream = false } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

async function train(label) {
  const args = ['run', FLOWS, 'housing.train', ...Object.entries(INPUTS).flatMap(([k, v]) => ['--input', `${k}=${v}`]), '--data-dir', DATA_DIR];
  heading(`${label}: ${shell(args)}`);
  const result = await memoflow(args, { stream: true });
  // The CLI's last line on standard error: "run <id> succeeded (7 nodes: ...)".
  const runId = /^run (\S+) (?:succeeded|failed)/m.exec(result.stderr)?.[1];
  if (result.code !== 0 || runId === undefined) fail(`${label} exited with code ${result.code}`, result.stdout);
  const shown = await memoflow(['runs', 'show', runId, '--json', '--data-dir', DATA_DIR]);
  if (shown.code !== 0) fail(`memoflow runs show ${runId} exited with code ${shown.code}`, shown.stderr);
  return { ...JSON.parse(shown.stdout), wallMs: result.ms };
}

/** One line per run: which nodes executed (with their cache status) and which were HITs. */
function describe(label, report) {
  const executed = report.nodes.filter((node) => node.cacheStatus !== 'HIT');
  const hits = report.nodes.filter((node) => node.cacheStatus === 'HIT');
  const status = (node) => (node.cacheStatus === 'SKIPPED' ? `SKIPPED(${node.cacheReason})` : node.cacheStatus);
  const runMs = new Date(report.finishedAt).getTime() - new Date(report.createdAt).getTime();
  console.log(`${bold(label)}  run ${report.id}  ${report.status}  wall ${(report.wallMs / 1000).toFixed(2)} s (run itself ${runMs} ms)`);
  console.log(`  executed (${executed.length}): ${executed.map((n) => `${n.id} ${status(n)}`).join(', ') || 'none'}`);
  console.log(`  from the cache (${hits.length}): ${hits.map((n) => n.id).join(', ') || 'none'}`);
}

if (!existsSync(new URL(`../../packages/sdk/dist/cli/main.js`, import.meta.url))) {
  fail('the packages are not built: run `npm run demo` (it builds first) or `npx turbo run build`');
}
rmSync(new URL(`../../${DATA_DIR}/`, import.meta.url), { recursive: true, force: true });
console.log(`memoflow demo: a house-price model, trained twice. Catalog and run store: ${DATA_DIR} (emptied).`);

const first = await train('Run 1 (cold cache: every node executes)');
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

for (const args of [['runs', 'ls'], ['runs', 'show', second.id]]) {
  heading(shell(args));
  const result = await memoflow([...args, '--data-dir', DATA_DIR]);
  process.stdout.write(result.stdout);
  if (result.code !== 0) fail(`${shell(args)} exited with code ${result.code}`, result.stderr);
}

const notHit = second.nodes.filter((node) => node.cacheStatus !== 'HIT');
if (second.nodes.length === 0 || notHit.length > 0) {
  fail(`run 2 was not fully served from the cache: ${notHit.map((n) => `${n.id} ${n.cacheStatus}`).join(', ')}`);
}
console.log(`\nok: run 2 served all ${second.nodes.length} nodes from the cache (${(first.wallMs / 1000).toFixed(2)} s -> ${(second.wallMs / 1000).toFixed(2)} s wall).`);
