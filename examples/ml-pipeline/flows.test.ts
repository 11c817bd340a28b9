// Unit tests for the pipeline: the pure helpers, then each task body through `task.fn`, which runs
// the body directly (no validation, no caching, no database). `npm run demo` covers the real runs.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { connect, type TaskContext } from '@memoflow/sdk';
import { applyFeatures, clean, evaluate, evaluateSubset, features, fit, fitSubset, load, pickBest, split, train, trainEach } from './flows.js';
import { CANDIDATE_SETS, FEATURES, RawRows, canonicalJson, cleanRows, featureColumns, parseHousingCsv, type RawRow, type Row } from './housing.js';
import {
  applyStandardisation,
  evaluate as evaluateModel,
  fitRidge,
  fitStandardisation,
  mulberry32,
  pickBest as pickBestOf,
  predict,
  seededShuffle,
  selectColumns,
  solve,
  type Metrics,
} from './model.js';

const context: TaskContext = { runId: 't', nodeId: 'n', attempt: 1, signal: new AbortController().signal };
const CSV = fileURLToPath(new URL('./data/housing.csv', import.meta.url));

/** y = 3·x0 - 2·x1 + 0.5·x2 + 10, plus optional seeded noise. */
function synthetic(n: number, noise = 0, seed = 1) {
  const rand = mulberry32(seed);
  const x = Array.from({ length: n }, () => [rand() * 10, rand() * 5 - 2, rand() * 100]);
  const y = x.map(([a = 0, b = 0, c = 0]) => 3 * a - 2 * b + 0.5 * c + 10 + noise * (rand() - 0.5));
  return { x, y };
}

const row = (id: string, price: number, sqft = 1000): Row => ({ id, sqft, bedrooms: 2, bathrooms: 1, age_years: 10, distance_km: 5, price });

describe('model helpers', () => {
  it('solve inverts a small system, pivoting past a zero on the diagonal', () => {
    expect(solve([[0, 2], [3, 1]], [4, 5])).toEqual([1, 2]);
    expect(() => solve([[1, 2], [2, 4]], [1, 2])).toThrow(/singular/);
  });

  it('fitRidge recovers known weights and bias from noiseless data when l2 = 0', () => {
    const { x, y } = synthetic(50);
    const model = fitRidge(x, y, 0);
    [3, -2, 0.5].forEach((w, i) => expect(model.weights[i]).toBeCloseTo(w, 8));
    expect(model.bias).toBeCloseTo(10, 6);
  });

  it('fitRidge stays close under noise and shrinks weights (not the bias) as l2 grows', () => {
    const { x, y } = synthetic(400, 1);
    const loose = fitRidge(x, y, 0);
    [3, -2, 0.5].forEach((w, i) => expect(loose.weights[i]).toBeCloseTo(w, 1));
    const standardised = applyStandardisation(x, fitStandardisation(x));
    const norm = (l2: number) => Math.hypot(...fitRidge(standardised, y, l2).weights);
    expect(norm(1000)).toBeLessThan(norm(10));
    // On standardised features the unpenalised bias is exactly the mean of y, whatever l2.
    const meanY = y.reduce((a, b) => a + b, 0) / y.length;
    expect(fitRidge(standardised, y, 1000).bias).toBeCloseTo(meanY, 8);
  });

  it('evaluate reports RMSE and R² by their definitions', () => {
    const model = { weights: [2], bias: 1 };
    expect(predict(model, [[1], [2]])).toEqual([3, 5]);
    expect(evaluateModel(model, [[1], [2], [3]], [3, 5, 7])).toEqual({ rmse: 0, r2: 1, n: 3 });
    // Residuals 1, -1, 0, 0 -> RMSE sqrt(2/4); y = 1..4 has total sum of squares 5 -> R² 1 - 2/5.
    const m = evaluateModel({ weights: [1], bias: 0 }, [[0], [3], [3], [4]], [1, 2, 3, 4]);
    expect(m.rmse).toBeCloseTo(Math.sqrt(0.5), 12);
    expect(m.r2).toBeCloseTo(0.6, 12);
  });

  it('standardisation gives mean 0 and std 1 per column, and tolerates a constant column', () => {
    const x = [[1, 5], [2, 5], [3, 5]];
    const s = fitStandardisation(x);
    expect(s.means).toEqual([2, 5]);
    expect(s.stds[1]).toBe(1);
    const z = applyStandardisation(x, s);
    [-Math.sqrt(1.5), 0, Math.sqrt(1.5)].forEach((value, i) => expect(z[i]?.[0]).toBeCloseTo(value, 12));
    expect(z.map((r) => r[1])).toEqual([0, 0, 0]);
  });

  it('selectColumns keeps the given columns in the given order', () => {
    expect(selectColumns([[1, 2, 3], [4, 5, 6]], [2, 0])).toEqual([[3, 1], [6, 4]]);
    expect(() => selectColumns([[1, 2]], [2])).toThrow(RangeError);
  });

  it('pickBest takes the lowest RMSE; a tie goes to fewer features, then to the first listed', () => {
    const candidate = (features: string[], rmse: number) => ({ features, metrics: { rmse, r2: 0, n: 1 } });
    expect(pickBestOf([candidate(['a', 'b'], 3), candidate(['a'], 2), candidate(['b'], 5)]).features).toEqual(['a']);
    expect(pickBestOf([candidate(['a', 'b'], 2), candidate(['b'], 2)]).features).toEqual(['b']);
    expect(pickBestOf([candidate(['a'], 2), candidate(['b'], 2)]).features).toEqual(['a']);
    expect(pickBestOf([candidate(['a'], Number.NaN), candidate(['b'], 9)]).features).toEqual(['b']);
    expect(() => pickBestOf([])).toThrow(/no candidate/);
  });

  it('seededShuffle is a deterministic permutation', () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    expect(seededShuffle(items, 7)).toEqual(seededShuffle(items, 7));
    expect(seededShuffle(items, 7)).not.toEqual(seededShuffle(items, 8));
    expect([...seededShuffle(items, 7)].sort((a, b) => a - b)).toEqual(items);
  });
});

describe('housing data', () => {
  it('the shipped CSV has ~300 rows, and cleaning drops exactly the dirty ones', () => {
    const raw = parseHousingCsv(readFileSync(CSV, 'utf8'));
    expect(raw).toHaveLength(307);
    const { rows, dropped } = cleanRows(raw);
    expect(rows).toHaveLength(300);
    expect(dropped.map((d) => d.id)).toEqual(['H0301', 'H0302', 'H0303', 'H0304', 'H0305', 'H0010', 'H0306']);
    expect(dropped.find((d) => d.id === 'H0010')?.reason).toBe('duplicate id');
    expect(dropped.find((d) => d.id === 'H0305')?.reason).toBe('bathrooms is blank or not a number');
    // The first H0010 is kept, not the re-listed one.
    expect(rows.find((r) => r.id === 'H0010')?.price).toBe(316_800);
  });

  it('the content hash ignores key order and sees any change of value', () => {
    const a: RawRow = { id: 'a', sqft: 1, bedrooms: 1, bathrooms: 1, age_years: 1, distance_km: 1, price: 1 };
    const reordered = Object.fromEntries(Object.entries(a).reverse());
    expect(canonicalJson(reordered)).toBe(canonicalJson(a));
    expect(canonicalJson({ ...a, price: 2 })).not.toBe(canonicalJson(a));
    // `hashWith` returns the schema it was given, so this is the very schema `housing.load` declares.
    expect(load.output).toBe(RawRows);
  });
});

describe('feature sets', () => {
  it('the candidates are all five features, then each one left out', () => {
    expect(CANDIDATE_SETS).toHaveLength(6);
    expect(CANDIDATE_SETS[0]).toEqual([...FEATURES]);
    CANDIDATE_SETS.slice(1).forEach((set, i) => expect(set).toEqual(FEATURES.filter((_, j) => j !== i)));
  });

  it('featureColumns maps names to matrix columns and rejects empty, repeated or unknown features', () => {
    expect(featureColumns(['distance_km', 'sqft'])).toEqual([4, 0]);
    expect(() => featureColumns([])).toThrow(/at least one/);
    expect(() => featureColumns(['sqft', 'sqft'])).toThrow(/listed twice/);
    expect(() => featureColumns(['garden' as never])).toThrow(/unknown feature garden/);
  });
});

describe('task bodies', () => {
  it('housing.load reads and parses the CSV, keeping dirty cells as null', async () => {
    const rows = await load.fn({ path: CSV }, context);
    expect(rows).toHaveLength(307);
    expect(rows[0]).toEqual({ id: 'H0001', sqft: 2593, bedrooms: 4, bathrooms: 2.5, age_years: 68, distance_km: 11.5, price: 386_500 });
  });

  it('housing.clean drops blank, negative and duplicate rows', async () => {
    const good = row('a', 100_000);
    const out = await clean.fn({ rows: [good, { ...good, id: 'b', sqft: -5 }, { ...good, id: 'c', price: null }, good] }, context);
    expect(out.rows).toEqual([good]);
    expect(out.dropped.map((d) => d.id)).toEqual(['b', 'c', 'a']);
  });

  it('housing.split is a deterministic partition of the rows', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => row(`r${i}`, 1000 + i));
    const once = await split.fn({ rows, testFraction: 0.2, seed: 7 }, context);
    expect(once.test).toHaveLength(10);
    expect(once.train).toHaveLength(40);
    expect([...once.train, ...once.test].map((r) => r.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expect(await split.fn({ rows, testFraction: 0.2, seed: 7 }, context)).toEqual(once);
    await expect(Promise.resolve().then(() => split.fn({ rows: rows.slice(0, 1), testFraction: 0.5, seed: 1 }, context))).rejects.toThrow(/no training rows/);
  });

  it('housing.features standardises with the training statistics; apply_features reuses them', async () => {
    const trainRows = [row('a', 100, 1000), row('b', 200, 2000), row('c', 300, 3000)];
    const fitted = await features.fn({ rows: trainRows }, context);
    expect(fitted.y).toEqual([100, 200, 300]);
    expect(fitted.means[0]).toBe(2000);
    [-Math.sqrt(1.5), 0, Math.sqrt(1.5)].forEach((z, i) => expect(fitted.x[i]?.[0]).toBeCloseTo(z, 12));
    const applied = await applyFeatures.fn({ rows: [row('d', 400, 4000)], means: fitted.means, stds: fitted.stds }, context);
    expect(applied.y).toEqual([400]);
    expect(applied.x[0]?.[0]).toBeCloseTo(2 * Math.sqrt(1.5), 12);
  });

  it('housing.fit and housing.evaluate: a perfect fit on noiseless data', async () => {
    const { x, y } = synthetic(30);
    const model = await fit.fn({ x, y, l2: 0 }, context);
    const metrics = await evaluate.fn({ model, x, y }, context);
    expect(metrics.n).toBe(30);
    expect(metrics.rmse).toBeLessThan(1e-6);
    expect(metrics.r2).toBeCloseTo(1, 10);
  });
});

describe('the fan-out', () => {
  const x = [[1, 10, 0, 0, 0], [2, 20, 0, 0, 1], [3, 30, 0, 1, 0], [4, 40, 1, 0, 0], [5, 50, 1, 1, 1]];
  const y = [3, 5, 7, 9, 11]; // 2·sqft + 1

  it('housing.fit_subset fits on the chosen columns only; with all of them it is housing.fit', async () => {
    const one = await fitSubset.fn({ x, y, features: ['sqft'], l2: 0 }, context);
    expect(one.weights).toHaveLength(1);
    expect(one.weights[0]).toBeCloseTo(2, 8);
    expect(one.bias).toBeCloseTo(1, 8);
    const all = await fitSubset.fn({ x, y, features: [...FEATURES], l2: 0.5 }, context);
    expect(all).toEqual(fitRidge(x, y, 0.5));
  });

  it('HOUSING_CRASH_WITHOUT makes fit_subset fail for sets without that feature, and only those', async () => {
    process.env['HOUSING_CRASH_WITHOUT'] = 'bedrooms';
    try {
      await expect(Promise.resolve().then(() => fitSubset.fn({ x, y, features: ['sqft'], l2: 0 }, context))).rejects.toThrow(/simulated crash.*\[sqft\]/);
      expect((await fitSubset.fn({ x, y, features: ['sqft', 'bedrooms'], l2: 0.1 }, context)).weights).toHaveLength(2);
    } finally {
      delete process.env['HOUSING_CRASH_WITHOUT'];
    }
  });

  it('housing.evaluate_subset scores on the same columns and labels the result with its feature set', async () => {
    const candidate = await evaluateSubset.fn({ model: { weights: [2], bias: 1 }, x, y, features: ['sqft'] }, context);
    expect(candidate).toEqual({ features: ['sqft'], metrics: { rmse: 0, r2: 1, n: 5 } });
  });

  it('housing.pick_best returns the best candidate', async () => {
    const candidates = [
      { features: [...FEATURES], metrics: { rmse: 2, r2: 0.9, n: 5 } },
      { features: ['sqft' as const], metrics: { rmse: 1, r2: 0.95, n: 5 } },
    ];
    expect(await pickBest.fn({ candidates }, context)).toEqual(candidates[1]);
  });

  it('the dynamic body compiles two child nodes per feature set and returns their candidates in order', async () => {
    // A dynamic's implementation runs the body with real values and returns the compiled sub-workflow.
    const sets = [['sqft'], ['sqft', 'age_years'], [...FEATURES]];
    const { output } = await trainEach.implementation.execute({ train: { x, y }, test: { x, y }, sets, l2: 0.1 }, { ...context, nodeId: 'train_each' });
    const sub = output as { inputs: { [name: string]: unknown }; nodes: { id: string; task: string; inputs: { features: unknown } }[]; outputs: { result: { kind: string; items: { node: string }[] } } };
    expect(sub.nodes.map((node) => [node.id, node.task])).toEqual([
      ['fit_subset', 'housing.fit_subset'],
      ['evaluate_subset', 'housing.evaluate_subset'],
      ['fit_subset-2', 'housing.fit_subset'],
      ['evaluate_subset-2', 'housing.evaluate_subset'],
      ['fit_subset-3', 'housing.fit_subset'],
      ['evaluate_subset-3', 'housing.evaluate_subset'],
    ]);
    // Each feature set is bound by reference to the dynamic's own `sets` input, not copied into the
    // future: a replay reads this run's values, and the future stays small.
    expect(Object.keys(sub.inputs)).toEqual(['train', 'test', 'sets', 'l2']);
    expect(sub.nodes.filter((node) => node.task === 'housing.fit_subset').map((node) => node.inputs.features)).toEqual(sets.map((_, i) => ({ kind: 'input', name: 'sets', path: [String(i)] })));
    expect(sub.outputs.result.kind).toBe('array');
    expect(sub.outputs.result.items.map((item) => item.node)).toEqual(['evaluate_subset', 'evaluate_subset-2', 'evaluate_subset-3']);
  });
});

describe('housing.train', () => {
  it("the README's workflow snippet is the workflow body in flows.ts", () => {
    const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const snippets = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] ?? '');
    const dedent = (text: string) => text.split('\n').map((line) => line.trim()).join('\n');
    expect(snippets[0]).toContain('return { metrics, model, best };');
    expect(snippets[1]).toContain("name: 'housing.train_each'");
    const source = dedent(readFileSync(new URL('./flows.ts', import.meta.url), 'utf8'));
    for (const snippet of snippets) expect(source).toContain(dedent(snippet).trim());
  });

  it('wires nine nodes, one of them dynamic, with every task cached and the fits retried once', () => {
    const nodes = train.spec.nodes;
    expect(nodes.map((node) => node.id).sort()).toEqual(['apply_features', 'clean', 'evaluate', 'features', 'fit', 'load', 'pick_best', 'split', 'train_each']);
    expect(nodes.find((node) => node.id === 'train_each')?.kind).toBe('dynamic');
    expect(trainEach.children).toEqual([fitSubset, evaluateSubset]);
    // `load` calls helpers outside its body, so `cache: true` would be refused: every version is pinned.
    for (const t of [load, clean, split, features, applyFeatures, fit, evaluate, trainEach, fitSubset, evaluateSubset, pickBest]) expect(t.defaults.cache?.version).toBe('1');
    expect([fit.defaults.retries, fitSubset.defaults.retries]).toEqual([1, 1]);
  });
});

// The example itself, run as the demo runs it but in-process: embedded mode, a fresh data dir.
describe('housing.train, run in-process (embedded)', () => {
  it('expands the fan-out the first time, serves every node from the cache the second, and replays the future after a crash', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'memoflow-ml-pipeline-'));
    const mf = await connect({ dataDir, log: 'silent' });
    try {
      // `sets` has a default (CANDIDATE_SETS), but the typed `mf.run` still asks for every input.
      const inputs = { path: CSV, l2: 0.1, testFraction: 0.2, seed: 7, sets: CANDIDATE_SETS };
      const first = await mf.run(train, inputs);
      // Annotated because the SDK's WorkflowResult<typeof train> currently infers `never`.
      const result: { metrics: Metrics; best: { features: string[]; metrics: Metrics } } = await first.result();
      expect(result.metrics.n).toBe(60);
      expect(result.metrics.r2).toBeGreaterThan(0.9);
      // Every feature matters in this data set: the full set wins, and it is the linear path's model.
      expect(result.best.features).toEqual([...FEATURES]);
      expect(result.best.metrics).toEqual(result.metrics);
      const firstNodes = await first.nodes();
      expect(firstNodes.map((node) => node.cacheStatus)).not.toContain('HIT');
      const children = firstNodes.filter((node) => node.parent === 'train_each');
      expect(children).toHaveLength(2 * CANDIDATE_SETS.length);
      expect(firstNodes).toHaveLength(9 + children.length);

      // The dynamic node hits as a whole: it does not expand, its children are not even listed.
      const second = await mf.run(train, inputs);
      expect(await second.result()).toEqual(result);
      expect((await second.nodes()).map((node) => node.cacheStatus)).toEqual(Array(9).fill('HIT'));

      // The demo's last step. `cache clear --task` removes both kinds of entry of a task (the
      // dynamic's output and its future); clearing fit_subset makes the children run again, and one crashes.
      expect(await mf.cache.evict({ task: 'housing.train_each' })).toBe(2);
      expect(await mf.cache.evict({ task: 'housing.fit_subset' })).toBe(CANDIDATE_SETS.length);
      process.env['HOUSING_CRASH_WITHOUT'] = 'bedrooms';
      try {
        const crashed = await mf.run(train, inputs);
        await expect(crashed.result()).rejects.toThrow(/child node 'train_each.fit_subset-3' \(housing.fit_subset\) failed: simulated crash/);
      } finally {
        delete process.env['HOUSING_CRASH_WITHOUT'];
      }
      const retried = await mf.run(train, inputs);
      expect(await retried.result()).toEqual(result);
      const status = new Map((await retried.nodes()).map((node) => [node.id, node.cacheStatus]));
      expect(status.get('train_each')).toBe('FUTURE_HIT');
      expect(status.get('train_each.fit_subset-3')).toBe('POPULATED');
      expect(status.get('train_each.evaluate_subset-3')).toBe('SKIPPED');
      expect([...status].filter(([id, s]) => id.startsWith('train_each.') && s === 'HIT')).toHaveLength(2 * CANDIDATE_SETS.length - 2);
      expect(status.get('pick_best')).toBe('SKIPPED'); // upstream-reran: a child of train_each executed
    } finally {
      await mf.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000); // creating a fresh embedded database takes several seconds
});
