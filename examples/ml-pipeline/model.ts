// Ridge regression and its helpers, as plain functions over number arrays. No ML library: the
// matrices here are (features + 1) square, so the closed form is exact, fast and dependency-free.

export type Matrix = number[][];
export interface LinearModel {
  weights: number[];
  bias: number;
}
export interface Metrics {
  rmse: number;
  r2: number;
  n: number;
}
export interface Standardisation {
  means: number[];
  stds: number[];
}

/** A seeded PRNG (mulberry32): same seed, same sequence, on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates with a seeded PRNG; returns a new array. Same input and seed, same order. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rand = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Column means and (population) standard deviations; a constant column gets std 1, not 0. */
export function fitStandardisation(x: Matrix): Standardisation {
  const n = x.length;
  if (n === 0) throw new Error('cannot standardise an empty matrix');
  const width = (x[0] ?? []).length;
  const means = Array.from({ length: width }, (_, j) => x.reduce((sum, row) => sum + at(row, j), 0) / n);
  const stds = means.map((mean, j) => {
    const std = Math.sqrt(x.reduce((sum, row) => sum + (at(row, j) - mean) ** 2, 0) / n);
    return std > 1e-12 ? std : 1;
  });
  return { means, stds };
}

export function applyStandardisation(x: Matrix, { means, stds }: Standardisation): Matrix {
  return x.map((row) => row.map((value, j) => (value - at(means, j)) / at(stds, j)));
}

/**
 * Ridge regression in closed form: solves (AᵀA + l2·D) θ = Aᵀy, where A is x with a column of
 * ones appended and D is the identity except for the bias (the intercept is not penalised, so
 * shifting y shifts the bias and nothing else).
 */
export function fitRidge(x: Matrix, y: readonly number[], l2: number): LinearModel {
  if (x.length === 0 || x.length !== y.length) throw new Error(`need as many rows as targets, got ${x.length} and ${y.length}`);
  if (!(l2 >= 0)) throw new Error(`l2 must be >= 0, got ${l2}`);
  const p = (x[0] ?? []).length + 1;
  const gram: Matrix = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  const rhs = new Array<number>(p).fill(0);
  x.forEach((features, i) => {
    const a = [...features, 1];
    for (let r = 0; r < p; r++) {
      rhs[r] = at(rhs, r) + at(a, r) * at(y, i);
      const gramRow = gram[r] as number[];
      for (let c = 0; c < p; c++) gramRow[c] = at(gramRow, c) + at(a, r) * at(a, c);
    }
  });
  for (let j = 0; j < p - 1; j++) (gram[j] as number[])[j] = at(gram[j] as number[], j) + l2;
  const theta = solve(gram, rhs);
  return { weights: theta.slice(0, p - 1), bias: at(theta, p - 1) };
}

export function predict(model: LinearModel, x: Matrix): number[] {
  return x.map((row) => row.reduce((sum, value, j) => sum + value * at(model.weights, j), model.bias));
}

/** Root mean squared error and the coefficient of determination (1 is perfect, 0 is "predict the mean"). */
export function evaluate(model: LinearModel, x: Matrix, y: readonly number[]): Metrics {
  const n = y.length;
  if (n === 0 || x.length !== n) throw new Error(`need as many rows as targets, got ${x.length} and ${n}`);
  const predicted = predict(model, x);
  const mean = y.reduce((a, b) => a + b, 0) / n;
  let residual = 0;
  let total = 0;
  y.forEach((actual, i) => {
    residual += (actual - at(predicted, i)) ** 2;
    total += (actual - mean) ** 2;
  });
  return { rmse: Math.sqrt(residual / n), r2: total === 0 ? 0 : 1 - residual / total, n };
}

/** The given columns of x, in the order given. */
export function selectColumns(x: Matrix, columns: readonly number[]): Matrix {
  return x.map((row) => columns.map((column) => at(row, column)));
}

/**
 * The candidate with the lowest RMSE; on a tie, the one with fewer features, then the one listed
 * first (a simpler model that predicts as well is the better one).
 */
export function pickBest<T extends { features: readonly unknown[]; metrics: Metrics }>(candidates: readonly T[]): T {
  let best: T | undefined;
  for (const candidate of candidates) {
    if (!Number.isFinite(candidate.metrics.rmse)) continue;
    if (best === undefined || candidate.metrics.rmse < best.metrics.rmse || (candidate.metrics.rmse === best.metrics.rmse && candidate.features.length < best.features.length)) {
      best = candidate;
    }
  }
  if (best === undefined) throw new Error(`no candidate with a finite RMSE among ${candidates.length}`);
  return best;
}

/** Solves a·x = b by Gaussian elimination with partial pivoting (a is small and square). */
export function solve(a: Matrix, b: readonly number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, at(b, i)]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(at(m[r] as number[], col)) > Math.abs(at(m[pivot] as number[], col))) pivot = r;
    if (Math.abs(at(m[pivot] as number[], col)) < 1e-12) throw new Error('the system is singular: add l2 > 0 or drop a constant feature');
    [m[col], m[pivot]] = [m[pivot] as number[], m[col] as number[]];
    const pivotRow = m[col] as number[];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const row = m[r] as number[];
      const factor = at(row, col) / at(pivotRow, col);
      for (let c = col; c <= n; c++) row[c] = at(row, c) - factor * at(pivotRow, c);
    }
  }
  return m.map((row, i) => at(row, n) / at(row, i));
}

/** Indexed read that fails loudly instead of yielding undefined (noUncheckedIndexedAccess). */
function at(values: readonly number[], index: number): number {
  const value = values[index];
  if (value === undefined) throw new RangeError(`index ${index} out of range (length ${values.length})`);
  return value;
}
