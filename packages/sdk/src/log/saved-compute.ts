import type { CacheStatus, CutoffHint } from '@memoflow/engine';

/*
 * The words for saved compute and the early-cutoff report (issue 11, items 3 and 4): the run
 * summary's notes, `runs show`'s lines and the JSON that `--json` carries, from a run's nodes.
 */

/** What these notes read of a node (`NodeReport` has it). */
export interface ComputeNode {
  id: string;
  parent: string | null;
  cacheStatus: CacheStatus | null;
  /** HIT, FUTURE_HIT: the compute its entry recorded; null: unknown. */
  savedMs: number | null;
  cutoffHint: CutoffHint | null;
}

/**
 * A duration for people: `850 ms`, `4.2 s`, `42 s`, `4 m 12 s`, `3 h 5 m`, `2 d 4 h`; `unknown` for
 * null. Two units at most, the smaller one dropped when it is zero.
 */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1000);
  const units: [number, string][] = [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ];
  const first = units.findIndex(([size]) => seconds >= size);
  const [bigSize, bigName] = units[first] as [number, string];
  const big = Math.floor(seconds / bigSize);
  const next = units[first + 1];
  if (next === undefined) return `${big} ${bigName}`;
  const small = Math.floor((seconds % bigSize) / next[0]);
  return small === 0 ? `${big} ${bigName}` : `${big} ${bigName} ${small} ${next[1]}`;
}

/** How much compute the cache saved a run. */
export interface SavedCompute {
  /** Nodes served from the cache (HIT). */
  fromCache: number;
  nodes: number;
  /** Compute the hits (and FUTURE_HITs: a dynamic body not compiled again) saved, as far as known. */
  savedMs: number;
  /** Hits on entries that recorded no duration (written by an earlier release): not counted in `savedMs`. */
  unknown: number;
}

export function savedCompute(nodes: readonly ComputeNode[]): SavedCompute {
  let fromCache = 0;
  let savedMs = 0;
  let unknown = 0;
  for (const node of nodes) {
    if (node.cacheStatus === 'HIT') fromCache += 1;
    if (node.cacheStatus !== 'HIT' && node.cacheStatus !== 'FUTURE_HIT') continue;
    if (node.savedMs === null) unknown += 1;
    else savedMs += node.savedMs;
  }
  return { fromCache, nodes: nodes.length, savedMs, unknown };
}

/** "9 of 9 from the cache, 4 m 12 s of compute saved"; "0 of 3 from the cache" when nothing hit. */
export function savedComputeLine(nodes: readonly ComputeNode[]): string {
  const saved = savedCompute(nodes);
  const head = `${saved.fromCache} of ${saved.nodes} from the cache`;
  if (saved.fromCache === 0 && saved.savedMs === 0 && saved.unknown === 0) return head;
  if (saved.unknown === 0) return `${head}, ${formatDuration(saved.savedMs)} of compute saved`;
  const unknown = `${saved.unknown} hit${saved.unknown === 1 ? '' : 's'} on entries from an earlier release, their compute unknown`;
  return saved.savedMs === 0 ? `${head}, compute saved unknown (${unknown})` : `${head}, at least ${formatDuration(saved.savedMs)} of compute saved (${unknown})`;
}

/** One node of the early-cutoff report. */
export interface CutoffReport extends CutoffHint {
  node: string;
}

/**
 * The nodes that reran only because of the cascade although their own key had an entry, without
 * the children of a container that is itself in the report (its hint covers them: had it hit,
 * they would not have run).
 */
export function cutoffReports(nodes: readonly ComputeNode[]): CutoffReport[] {
  const hinted = new Set(nodes.filter((node) => node.cutoffHint !== null).map((node) => node.id));
  const parentOf = new Map(nodes.map((node) => [node.id, node.parent]));
  const covered = (id: string): boolean => {
    for (let parent = parentOf.get(id) ?? null; parent !== null; parent = parentOf.get(parent) ?? null) if (hinted.has(parent)) return true;
    return false;
  };
  return nodes.flatMap((node) => (node.cutoffHint === null || covered(node.id) ? [] : [{ node: node.id, ...node.cutoffHint }]));
}

const listed = (names: readonly string[], most = 5): string => (names.length <= most ? names.join(', ') : `${names.slice(0, most).join(', ')} and ${names.length - most} more`);

/** The summary's note: empty when there is nothing to report. */
export function cutoffNote(nodes: readonly ComputeNode[]): string {
  const reports = cutoffReports(nodes);
  if (reports.length === 0) return '';
  const upstream = [...new Set(reports.map((r) => r.upstream))];
  const known = reports.filter((r) => r.savedMs !== null);
  const total = known.reduce((sum, r) => sum + (r.savedMs ?? 0), 0);
  const saving = known.length === 0 ? 'compute unknown' : `${known.length < reports.length ? 'at least ' : ''}${formatDuration(total)} of compute`;
  return `early cutoff: ${listed(reports.map((r) => r.node))} reran only because ${listed(upstream)} reran, with unchanged inputs; hashWith on ${upstream.length === 1 ? 'its output' : 'their outputs'} would have let them hit (${saving})`;
}

/** `runs show`'s lines for the report, one per node; none when there is nothing to report. */
export function cutoffLines(nodes: readonly ComputeNode[]): string[] {
  const reports = cutoffReports(nodes);
  if (reports.length === 0) return [];
  return [
    'early cutoff (reran only because of the cascade, inputs unchanged: content-hash the upstream output with hashWith to let them hit):',
    ...reports.map((r) => `  ${r.node}: upstream ${r.upstream} reran; would have hit the entry of run ${r.entry.runId} node ${r.entry.nodeId}, saving ${formatDuration(r.savedMs)}`),
  ];
}
