import type { CacheStatus, NodePhase } from '@memoflow/engine';

/**
 * What a node's box is coloured by: its cache status once it has one, else its phase; a failed,
 * aborted or cancelled node shows that instead (what went wrong matters more than how it was keyed).
 */
export type Shade = CacheStatus | 'pending' | 'running' | 'failed' | 'aborted' | 'cancelled';

export interface LegendEntry {
  shade: Shade;
  /** The box's fill, `#rrggbb` (the page sets it as the SVG `fill`). */
  fill: string;
  label: string;
  meaning: string;
}

/** One table, in legend order: the page draws the legend from it and the browser test reads it. */
export const LEGEND: readonly LegendEntry[] = [
  { shade: 'HIT', fill: '#4caf50', label: 'HIT', meaning: 'served from the cache, not executed' },
  { shade: 'FUTURE_HIT', fill: '#8bc34a', label: 'FUTURE_HIT', meaning: "a dynamic node's compiled sub-DAG came from the cache" },
  { shade: 'RECOVERED', fill: '#26a69a', label: 'RECOVERED', meaning: "reused from an earlier run (resume, retry)" },
  { shade: 'POPULATED', fill: '#42a5f5', label: 'POPULATED', meaning: 'executed, result written to the cache' },
  { shade: 'MISS', fill: '#ffca28', label: 'MISS', meaning: 'looked up, absent: executing' },
  { shade: 'EVICTED', fill: '#ffa726', label: 'EVICTED', meaning: 'entry older than its TTL: executing' },
  { shade: 'SKIPPED', fill: '#ab47bc', label: 'SKIPPED', meaning: 'executed without a lookup (cascade, overwrite, resume)' },
  { shade: 'WAITING', fill: '#fff176', label: 'WAITING', meaning: "waiting on another run's reservation" },
  { shade: 'DISABLED', fill: '#bdbdbd', label: 'DISABLED', meaning: 'caching off for this node' },
  { shade: 'LOOKUP_FAILURE', fill: '#ff7043', label: 'LOOKUP_FAILURE', meaning: 'the catalog erred on lookup; the node ran' },
  { shade: 'PUT_FAILURE', fill: '#ff8a65', label: 'PUT_FAILURE', meaning: 'the catalog erred on write; the node ran' },
  { shade: 'pending', fill: '#eceff1', label: 'pending', meaning: 'not started' },
  { shade: 'running', fill: '#b3e5fc', label: 'running', meaning: 'started, no cache status yet' },
  { shade: 'failed', fill: '#e53935', label: 'failed', meaning: 'the node failed' },
  { shade: 'aborted', fill: '#9e9e9e', label: 'aborted', meaning: 'not run: an upstream node failed' },
  { shade: 'cancelled', fill: '#757575', label: 'cancelled', meaning: 'the run was cancelled' },
];

const FILLS = new Map(LEGEND.map((entry) => [entry.shade, entry.fill]));

export function shadeOf(phase: NodePhase, cacheStatus: CacheStatus | null): Shade {
  switch (phase) {
    case 'failed':
    case 'aborted':
    case 'cancelled':
      return phase;
    case 'pending':
    case 'looking-up':
    case 'dispatched':
    case 'expanded':
    case 'writing':
    case 'succeeded':
      if (cacheStatus !== null) return cacheStatus;
      return phase === 'pending' ? 'pending' : 'running';
  }
}

export function fillOf(shade: Shade): string {
  const fill = FILLS.get(shade);
  if (fill === undefined) throw new Error(`no colour for ${shade}`);
  return fill;
}

/** Phases in which a node is doing something now (the page outlines it as running). */
export function isActive(phase: NodePhase): boolean {
  return phase === 'looking-up' || phase === 'dispatched' || phase === 'expanded' || phase === 'writing';
}
