// Generates housing.csv: 300 plausible houses plus a handful of dirty rows that `housing.clean`
// must drop. Deterministic (seeded PRNG, fixed formatting), so re-running it reproduces the
// committed file byte for byte:   node examples/ml-pipeline/data/generate.mjs
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SEED = 20240611;
const ROWS = 300;

// mulberry32: tiny, fast and good enough for synthetic data; Math.random cannot be seeded.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(SEED);
const uniform = (lo, hi) => lo + (hi - lo) * rand();
// Box-Muller; one of the pair is thrown away to keep the stream simple.
const normal = (mean, sd) => mean + sd * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

// The "true" model the pipeline should roughly recover (dollars per unit of each feature).
const TRUE = { intercept: 60_000, sqft: 140, bedrooms: 9_000, bathrooms: 14_000, age_years: -1_100, distance_km: -2_800, noise: 22_000 };

const header = ['id', 'sqft', 'bedrooms', 'bathrooms', 'age_years', 'distance_km', 'price'];
const rows = [];
for (let i = 1; i <= ROWS; i++) {
  const sqft = Math.round(clamp(normal(1_750, 550), 450, 4_500));
  const bedrooms = Math.round(clamp(sqft / 650 + normal(0, 0.7), 1, 6));
  const bathrooms = clamp(Math.round((bedrooms * 0.6 + normal(0.4, 0.5)) * 2) / 2, 1, 4);
  const age = Math.round(uniform(0, 80));
  const distance = Math.round(clamp(Math.abs(normal(9, 7)), 0.3, 45) * 10) / 10;
  const price =
    TRUE.intercept + TRUE.sqft * sqft + TRUE.bedrooms * bedrooms + TRUE.bathrooms * bathrooms +
    TRUE.age_years * age + TRUE.distance_km * distance + normal(0, TRUE.noise);
  rows.push([`H${String(i).padStart(4, '0')}`, sqft, bedrooms, bathrooms, age, distance, Math.round(price / 100) * 100]);
}

// Dirty rows, spliced in at fixed places so they are not all at the end of the file.
const dirty = [
  [40, ['H0301', '', 3, 2, 15, 4.2, 310_000]], // blank sqft
  [75, ['H0302', 1_420, 3, 1.5, 22, 6.1, '']], // blank price (the label)
  [110, ['H0303', -1_200, 2, 1, 30, 3.3, 205_000]], // negative sqft: a data-entry error
  [150, ['H0304', 1_980, '', 2, 9, 12.5, 355_000]], // blank bedrooms
  [190, ['H0305', 2_100, 4, 'n/a', 41, 8.8, 298_000]], // non-numeric bathrooms
  [230, [...rows[9].slice(0, 6), rows[9][6] + 15_000]], // H0010 again, re-listed at a new price
  [260, ['H0306', 0, 1, 1, 60, 30.0, 95_000]], // zero sqft
];
for (const [at, row] of dirty.reverse()) rows.splice(at, 0, row);
const dupes = new Set();
const seen = new Set();
for (const row of rows) (seen.has(row[0]) ? dupes : seen).add(row[0]);

const csv = [header, ...rows].map((r) => r.join(',')).join('\n') + '\n';
const out = fileURLToPath(new URL('./housing.csv', import.meta.url));
writeFileSync(out, csv);
console.log(`wrote ${rows.length} rows to ${out} (${dirty.length} dirty, duplicated ids: ${[...dupes].join(', ')})`);
