// Summarises V8 .cpuprofile files (from `node bench/run.mjs --profile`): self time by component
// (package or memoflow source dir) and the top functions by self time, plus inclusive time of a few
// memoflow entry points.
//   node bench/profile-summary.mjs bench/profiles/a-*.cpuprofile [--top=25]
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const top = Number(process.argv.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
if (files.length === 0) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile>... [--top=N]');
  process.exit(1);
}

function component(frame) {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'program (native)';
  if (url === '') return `native ${functionName.startsWith('(') ? functionName : ''}`.trim();
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const mf = /packages\/([^/]+)\/dist\/(?:([^/]+)\/)?/.exec(url);
  if (mf) return `@memoflow/${mf[1]}${mf[2] && !mf[2].endsWith('.js') ? `/${mf[2]}` : ''}`;
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/bench/')) return 'bench';
  return url;
}

const byComponent = new Map();
const byFunction = new Map();
const inclusive = new Map();
const WATCH = ['decide', 'advance', 'finishRunIfDone', 'save', 'load', 'create', 'lookup', 'storableJson', 'nodeDocument', 'computeCacheKey', 'validateSpec', 'newRunState', 'dispatch', 'decodeResult', 'encodeResult', 'decodeAttempt', 'runAttempt', 'execute', 'publishResult', 'addBulk', 'parse', 'stringify'];
let total = 0;

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  for (const [id, us] of selfUs) {
    const frame = nodes.get(id).callFrame;
    total += us;
    const comp = component(frame);
    byComponent.set(comp, (byComponent.get(comp) ?? 0) + us);
    const fn = `${frame.functionName || '(anonymous)'} ${comp}${frame.url ? `:${frame.url.split('/').pop()}:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    // Inclusive time of watched memoflow functions: count each sample once per distinct name on its stack.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = nodes.get(cur).callFrame;
      const c = component(f);
      if (!c.startsWith('@memoflow') && f.functionName !== 'stringify' && f.functionName !== 'parse') continue;
      const name = WATCH.includes(f.functionName) ? `${f.functionName} (${c})` : undefined;
      if (name !== undefined && !seen.has(name)) {
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + us);
      }
    }
  }
}

const ms = (us) => (us / 1000).toFixed(1).padStart(8);
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`${files.length} profile(s), ${(total / 1000).toFixed(1)} ms sampled\n\nself time by component`);
for (const [k, v] of [...byComponent].sort((x, y) => y[1] - x[1]).slice(0, 20)) console.log(`${ms(v)} ms ${pct(v)}  ${k}`);
console.log(`\ntop ${top} functions by self time`);
for (const [k, v] of [...byFunction].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${ms(v)} ms ${pct(v)}  ${k}`);
console.log('\ninclusive time of memoflow functions (and JSON parse/stringify called under them)');
for (const [k, v] of [...inclusive].sort((x, y) => y[1] - x[1]).slice(0, 25)) console.log(`${ms(v)} ms ${pct(v)}  ${k}`);
