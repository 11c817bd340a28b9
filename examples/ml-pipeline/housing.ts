// The housing data set: row schemas, CSV parsing and the cleaning rules. Plain functions, so the
// tasks in flows.ts stay thin and the rules can be unit-tested without memoflow.
import { createHash } from 'node:crypto';
import { hashWith, z } from '@memoflow/sdk';

/** The model's features, in the column order of every feature matrix. */
export const FEATURES = ['sqft', 'bedrooms', 'bathrooms', 'age_years', 'distance_km'] as const;
export type Feature = (typeof FEATURES)[number];
export const FeatureName = z.enum(FEATURES);

/**
 * The feature sets the fan-out in flows.ts compares by default: all five features, then each one
 * left out (does the model need it?).
 */
export const CANDIDATE_SETS: Feature[][] = [[...FEATURES], ...FEATURES.map((left) => FEATURES.filter((f) => f !== left))];

/** The column of each feature of a set in a feature matrix (FEATURES order). A repeated feature is an error. */
export function featureColumns(set: readonly Feature[]): number[] {
  if (set.length === 0) throw new Error('a feature set needs at least one feature');
  const repeated = set.find((feature, i) => set.indexOf(feature) !== i);
  if (repeated !== undefined) throw new Error(`feature ${repeated} is listed twice in [${set.join(', ')}]`);
  return set.map((feature) => {
    const column = FEATURES.indexOf(feature);
    if (column < 0) throw new Error(`unknown feature ${String(feature)} (features: ${FEATURES.join(', ')})`);
    return column;
  });
}

// A raw row is what the file says: a blank or non-numeric cell is null, not a parse error, so
// that loading never fails on dirty data and cleaning decides what to keep.
const cell = z.number().nullable();
export const RawRow = z.object({
  id: z.string(),
  sqft: cell,
  bedrooms: cell,
  bathrooms: cell,
  age_years: cell,
  distance_km: cell,
  price: cell,
});
export type RawRow = z.infer<typeof RawRow>;

// A clean row has every cell, with values a house can have.
export const Row = z.object({
  id: z.string(),
  sqft: z.number().positive(),
  bedrooms: z.number().int().nonnegative(),
  bathrooms: z.number().nonnegative(),
  age_years: z.number().nonnegative(),
  distance_km: z.number().nonnegative(),
  price: z.number().positive(),
});
export type Row = z.infer<typeof Row>;
export const Rows = z.array(Row);

/**
 * The loaded file, identified by its content (Flyte's HashMethod): the cache key of every node that
 * consumes it uses this hash instead of encoding ~300 rows, and when the loader re-executes but
 * reads the same data, the nodes after it are still looked up in the cache (the one exception to
 * the cascade rule). The schema object itself carries the hash, so export and reuse this one.
 */
export const RawRows = hashWith(z.array(RawRow), (rows) => sha256(canonicalJson(rows)));

/** JSON with object keys sorted at every level, so equal values always hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Parses the housing CSV (a header line, then comma-separated cells; no quoting in this data set). */
export function parseHousingCsv(text: string): RawRow[] {
  const [headerLine, ...lines] = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (headerLine === undefined) throw new Error('the CSV is empty');
  const header = headerLine.split(',').map((name) => name.trim());
  const columns = ['id', ...FEATURES, 'price'] as const;
  const missing = columns.filter((name) => !header.includes(name));
  if (missing.length > 0) throw new Error(`the CSV has no column ${missing.join(', ')} (header: ${headerLine})`);

  return lines.map((line) => {
    const cells = line.split(',');
    const at = (name: string) => (cells[header.indexOf(name)] ?? '').trim();
    const num = (name: Feature | 'price'): number | null => {
      const raw = at(name);
      const value = Number(raw);
      // Number('') is 0, so blank must be checked before the numeric parse.
      return raw === '' || !Number.isFinite(value) ? null : value;
    };
    return {
      id: at('id'),
      sqft: num('sqft'),
      bedrooms: num('bedrooms'),
      bathrooms: num('bathrooms'),
      age_years: num('age_years'),
      distance_km: num('distance_km'),
      price: num('price'),
    };
  });
}

/**
 * Keeps rows that are complete and plausible, then the first row of each id. Validity is checked
 * first so that an invalid first occurrence does not shadow a valid later one.
 */
export function cleanRows(rows: readonly RawRow[]): { rows: Row[]; dropped: { id: string; reason: string }[] } {
  const kept: Row[] = [];
  const dropped: { id: string; reason: string }[] = [];
  const seen = new Set<string>();
  for (const raw of rows) {
    const parsed = Row.safeParse(raw);
    if (!parsed.success || raw.id === '') {
      dropped.push({ id: raw.id, reason: parsed.success ? 'blank id' : describeIssue(raw, parsed.error.issues[0]) });
    } else if (seen.has(parsed.data.id)) {
      dropped.push({ id: raw.id, reason: 'duplicate id' });
    } else {
      seen.add(parsed.data.id);
      kept.push(parsed.data);
    }
  }
  return { rows: kept, dropped };
}

function describeIssue(raw: RawRow, issue: { path: readonly PropertyKey[]; message: string } | undefined): string {
  const field = String(issue?.path[0] ?? '?');
  const value = (raw as { [key: string]: unknown })[field];
  return value === null ? `${field} is blank or not a number` : `${field} ${JSON.stringify(value)}: ${issue?.message ?? 'invalid'}`;
}
