// A house-price model as a memoflow workflow: load -> clean -> split -> features -> fit -> evaluate,
// plus a dynamic fan-out that trains one model per candidate feature set and picks the best.
//
//   npx memoflow run examples/ml-pipeline/flows.ts housing.train \
//     --input path=examples/ml-pipeline/data/housing.csv --input l2=0.1 --input testFraction=0.2 --input seed=7
//
// Every task is cached, so a second run with the same inputs is served entirely from the catalog.
// Tasks hold the memoflow wiring (names, schemas, cache settings) and delegate the work to plain
// functions in housing.ts and model.ts, which are tested on their own.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { dynamic, hashWith, task, workflow, z } from '@memoflow/sdk';
import { CANDIDATE_SETS, FEATURES, FeatureName, RawRow, RawRows, Row, Rows, cleanRows, featureColumns, parseHousingCsv, sha256, type Feature } from './housing.js';
import { applyStandardisation, evaluate as evaluateModel, fitRidge, fitStandardisation, pickBest as pickBestOf, seededShuffle, selectColumns } from './model.js';

const Matrix = z.array(z.array(z.number()));
const Vector = z.array(z.number());
const Model = z.object({ weights: Vector, bias: z.number() });
const Metrics = z.object({ rmse: z.number(), r2: z.number(), n: z.number().int() });
const Design = z.object({ x: Matrix, y: Vector });
const FeatureSet = z.array(FeatureName).min(1);
const Candidate = z.object({ features: FeatureSet, metrics: Metrics });

/**
 * Reads the CSV. Its output schema, RawRows, is content-addressed (`hashWith`): nodes fed by it are
 * keyed by the hash of the rows, not by the rows themselves.
 *
 * Its version is pinned: the body calls `readFile`, `resolve` and `parseHousingCsv`, code outside
 * its own text, so `cache: true` (a version derived from the body's source) is refused for it, since
 * an edit to `parseHousingCsv` would not change that version. Bump it to `'2'` and run again:
 * `load` re-executes, but it reads the same rows, the hash is unchanged, and `clean` and everything
 * after it are still HITs instead of `SKIPPED(upstream-reran)`: content-addressed data is the
 * exception to the cascade rule.
 *
 * The input is a path, but a path says nothing about what the file holds: `CsvFile` declares a
 * content hash (computed where the run is submitted), so the key covers the file's bytes and
 * editing the CSV invalidates `load` while moving it elsewhere does not.
 */
export const CsvFile = hashWith(z.string(), (path) => sha256(readFileSync(resolve(process.cwd(), path))));

export const load = task(
  { name: 'housing.load', inputs: { path: CsvFile }, output: RawRows, cache: { version: '1' } },
  async ({ path }) => {
    // Relative to where `memoflow run` was started, like any CLI argument.
    const text = await readFile(resolve(process.cwd(), path), 'utf8');
    return parseHousingCsv(text);
  },
);

/** Drops incomplete or implausible rows and repeated ids; reports what it dropped and why. */
export const clean = task(
  {
    name: 'housing.clean',
    inputs: { rows: z.array(RawRow) },
    output: z.object({ rows: Rows, dropped: z.array(z.object({ id: z.string(), reason: z.string() })) }),
    cache: { version: '1' },
  },
  ({ rows }) => cleanRows(rows),
);

/**
 * A seeded shuffle, then the last `testFraction` of the rows is the test set. The seed is an input
 * (so part of the cache key): a different seed is a different split, and a cached split is
 * exactly the one the same seed would produce again.
 */
export const split = task(
  {
    name: 'housing.split',
    inputs: { rows: Rows, testFraction: z.number().gt(0).lt(1), seed: z.number().int() },
    output: z.object({ train: Rows, test: Rows }),
    cache: { version: '1' },
  },
  ({ rows, testFraction, seed }) => {
    const shuffled = seededShuffle(rows, seed);
    const testSize = Math.max(1, Math.round(rows.length * testFraction));
    if (testSize >= shuffled.length) throw new Error(`testFraction ${testFraction} leaves no training rows out of ${rows.length}`);
    return { train: shuffled.slice(0, -testSize), test: shuffled.slice(-testSize) };
  },
);

/**
 * Fits the standardisation on the training rows only and returns it with the standardised design
 * matrix. Fitting it on all rows would leak the test set's distribution into training.
 */
export const features = task(
  {
    name: 'housing.features',
    inputs: { rows: Rows },
    output: Design.extend({ means: Vector, stds: Vector }),
    cache: { version: '1' },
  },
  ({ rows }) => {
    const raw = toMatrix(rows);
    const standardisation = fitStandardisation(raw);
    return { x: applyStandardisation(raw, standardisation), y: rows.map((row) => row.price), ...standardisation };
  },
);

/** Applies a standardisation fitted elsewhere (the training set's) to other rows. */
export const applyFeatures = task(
  {
    name: 'housing.apply_features',
    inputs: { rows: Rows, means: Vector, stds: Vector },
    output: Design,
    cache: { version: '1' },
  },
  ({ rows, means, stds }) => ({ x: applyStandardisation(toMatrix(rows), { means, stds }), y: rows.map((row) => row.price) }),
);

/**
 * Ridge regression by the normal equations. `retries: 1` because in a real pipeline this is the
 * step that lands on a busy GPU box or a spot instance; a failed attempt is never cached, a
 * successful retry is.
 */
export const fit = task(
  {
    name: 'housing.fit',
    inputs: { x: Matrix, y: Vector, l2: z.number().nonnegative() },
    output: Model,
    cache: { version: '1' },
    retries: 1,
  },
  ({ x, y, l2 }) => fitRidge(x, y, l2),
);

/** RMSE (in dollars) and R² of a model on a standardised design matrix. */
export const evaluate = task(
  { name: 'housing.evaluate', inputs: { model: Model, x: Matrix, y: Vector }, output: Metrics, cache: { version: '1' } },
  ({ model, x, y }) => evaluateModel(model, x, y),
);

/**
 * One candidate of the fan-out: ridge regression on some of the standardised columns. (Selecting
 * columns of the standardised matrix is the same as standardising the selected columns.)
 *
 * `HOUSING_CRASH_WITHOUT=<feature>` makes it fail for every feature set that leaves that feature
 * out, like a worker lost mid-training. It is a fault-injection switch for the demo's future-cache
 * step, not an input: it is deliberately outside every cache key, so the retry has the same keys.
 */
export const fitSubset = task(
  {
    name: 'housing.fit_subset',
    inputs: { x: Matrix, y: Vector, features: FeatureSet, l2: z.number().nonnegative() },
    output: Model,
    cache: { version: '1' },
    retries: 1,
  },
  ({ x, y, features, l2 }) => {
    simulateCrash(features);
    return fitRidge(selectColumns(x, featureColumns(features)), y, l2);
  },
);

/** Scores a candidate on the held-out rows, labelled with its feature set. */
export const evaluateSubset = task(
  {
    name: 'housing.evaluate_subset',
    inputs: { model: Model, x: Matrix, y: Vector, features: FeatureSet },
    output: Candidate,
    cache: { version: '1' },
  },
  ({ model, x, y, features }) => ({ features, metrics: evaluateModel(model, selectColumns(x, featureColumns(features)), y) }),
);

/**
 * The fan-out. Unlike a workflow body, a dynamic body runs when the node runs, with the actual
 * input values, so it can loop over `sets`; the tasks it calls become child nodes (two per set)
 * that are cached one by one. The compiled sub-workflow is cached too, as the node's "future": a
 * rerun after a failed child reads it back (`FUTURE_HIT`) instead of running this body again.
 */
export const trainEach = dynamic(
  {
    name: 'housing.train_each',
    inputs: { train: Design, test: Design, sets: z.array(FeatureSet).min(1), l2: z.number().nonnegative() },
    output: z.array(Candidate),
    cache: { version: '1' },
    tasks: [fitSubset, evaluateSubset],
  },
  ({ train, test, sets, l2 }) =>
    sets.map((features) => {
      const model = fitSubset({ x: train.x, y: train.y, features, l2 });
      return evaluateSubset({ model, x: test.x, y: test.y, features });
    }),
);

/** The candidate with the lowest test RMSE (ties: fewer features). */
export const pickBest = task(
  { name: 'housing.pick_best', inputs: { candidates: z.array(Candidate).min(1) }, output: Candidate, cache: { version: '1' } },
  ({ candidates }) => pickBestOf(candidates),
);

/**
 * The pipeline. The body runs once, at definition time, with references instead of values: it only
 * wires nodes. Field reads on object outputs (`parts.train`, `trainSet.means`) bind to that field.
 */
export const train = workflow(
  {
    name: 'housing.train',
    description: 'Train and evaluate a ridge-regression house-price model, and find the best feature set',
    inputs: {
      path: CsvFile,
      l2: z.number(),
      testFraction: z.number(),
      seed: z.number().int(),
      // The feature sets the fan-out compares: `--input 'sets=[["sqft","age_years"]]'` to choose others.
      sets: z.array(FeatureSet).min(1).default(CANDIDATE_SETS),
    },
  },
  ({ path, l2, testFraction, seed, sets }) => {
    const cleaned = clean({ rows: load({ path }) });
    const parts = split({ rows: cleaned.rows, testFraction, seed });
    const trainSet = features({ rows: parts.train });
    const testSet = applyFeatures({ rows: parts.test, means: trainSet.means, stds: trainSet.stds });
    const model = fit({ x: trainSet.x, y: trainSet.y, l2 });
    // Metrics are on the held-out rows: the training error of a linear model flatters it.
    const metrics = evaluate({ model, x: testSet.x, y: testSet.y });
    // One model per feature set, fanned out at run time, then the best by test RMSE.
    const best = pickBest({ candidates: trainEach({ train: trainSet, test: testSet, sets, l2 }) });
    return { metrics, model, best };
  },
);

function simulateCrash(features: readonly Feature[]): void {
  const without = process.env['HOUSING_CRASH_WITHOUT'];
  if (without !== undefined && without !== '' && !features.includes(without as Feature)) {
    throw new Error(`simulated crash: the worker was lost while fitting [${features.join(', ')}] (HOUSING_CRASH_WITHOUT=${without})`);
  }
}

function toMatrix(rows: readonly Row[]): number[][] {
  return rows.map((row) => FEATURES.map((feature) => row[feature]));
}
