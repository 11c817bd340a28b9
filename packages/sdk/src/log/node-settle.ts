import { isTerminal, shortKey, type EngineEvent, type NodePhase } from '@memoflow/engine';
import { fitText, oneLine } from './fit-text.js';

/**
 * A node that has settled, as one log line or one row of the live view tells it: its status, key,
 * duration and what happened ("served from the cache", "ran, result cached", "failed: ...").
 */
export interface SettledNode {
  runId: string;
  workflow: string;
  nodeId: string;
  task: string;
  phase: NodePhase;
  /** The cache status as shown: `SKIPPED(upstream-reran)`, `HIT`, `-` when none. */
  status: string;
  /** The first ten hex digits of the key, or `-`. */
  key: string;
  durationMs: number | null;
  /** What happened, in words. */
  outcome: string;
  level: EngineEvent['level'];
}

/**
 * Decides which event ends a node's line: the first one after which the node's phase is terminal
 * (`event.phase`, set by the engine on every node event). So:
 * - a HIT or RECOVERED node settles on `node:cache-hit` / `node:recovered`;
 * - a cached node that ran settles on its output's `node:cache-written` (its `node:succeeded`
 *   comes in phase `writing`), whether the write landed or was lost for good (PUT_FAILURE); a
 *   failed write that will be retried leaves it `writing`; a dynamic node's future written
 *   while its children run leaves it `expanded`;
 * - an uncached node (or one whose output could not be stored) settles on `node:succeeded`;
 * - failed, aborted and cancelled nodes settle on those events.
 * Each node settles once: a repeated or late event about a settled node is ignored. What the node
 * went through on the way (an expansion, a wait for a reservation, failed attempts, failed cache
 * writes) is remembered and told in its line.
 */
export class NodeSettleTracker {
  private readonly settled = new Set<string>();
  private readonly notes = new Map<string, string[]>();
  /** Nodes in phase `writing`: their output is known, so a run that ends first still reports them. */
  private readonly writing = new Map<string, EngineEvent>();

  /** The node's settled line, if this event settles it. */
  observe(event: EngineEvent): SettledNode | undefined {
    if (event.nodeId === undefined || event.phase === undefined) return undefined;
    const id = nodeKey(event.runId, event.nodeId);
    if (this.settled.has(id)) return undefined;
    this.remember(id, event);
    if (event.phase === 'writing') this.writing.set(id, event);
    if (!isTerminal(event.phase)) return undefined;
    this.settled.add(id);
    this.writing.delete(id);
    const notes = this.notes.get(id) ?? [];
    this.notes.delete(id);
    return settledNode(event, notes);
  }

  /**
   * A run ended: the lines of its nodes still writing their entries (settled in all but the
   * write), and forgets the run. Nodes that never got an output (a lost lease) get no line.
   */
  endRun(runId: string): SettledNode[] {
    const lines: SettledNode[] = [];
    for (const [id, event] of this.writing) {
      if (event.runId !== runId) continue;
      lines.push(settledNode(event, [...(this.notes.get(id) ?? []), 'its cache write had not landed when the run ended']));
      this.writing.delete(id);
    }
    const prefix = `${runId}\u0000`;
    for (const id of [...this.settled]) if (id.startsWith(prefix)) this.settled.delete(id);
    for (const id of [...this.notes.keys()]) if (id.startsWith(prefix)) this.notes.delete(id);
    return lines;
  }

  private remember(id: string, event: EngineEvent): void {
    const note = noteOf(event);
    if (note === undefined) return;
    const notes = this.notes.get(id);
    if (notes === undefined) this.notes.set(id, [note]);
    else if (!notes.includes(note) && notes.length < MAX_NOTES) notes.push(note);
  }
}

const MAX_NOTES = 4;
/** A settled line stays readable however long an error message or note is. */
const MAX_OUTCOME = 160;
const MAX_NOTE = 80;

/** What an event on the way adds to a node's line (none for the ordinary steps). */
function noteOf(event: EngineEvent): string | undefined {
  switch (event.type) {
    case 'node:expanded':
      return event.message === undefined ? 'expanded' : `expanded ${event.message}`;
    case 'node:waiting':
      return event.message === undefined ? 'waited for a reservation' : `waited: ${event.message}`;
    case 'node:cache-corrupt':
      return event.message;
    case 'node:cache-written':
      // A write that failed and is retried, or a dynamic node's future that could not be stored;
      // a future stored and the write that settles the node say nothing more.
      return event.level === 'info' ? undefined : event.message;
    case 'node:cache-hit':
    case 'node:started':
    case 'node:retrying':
    case 'node:succeeded':
    case 'node:failed':
    case 'node:aborted':
    case 'node:cancelled':
    case 'node:dispatch-failed':
    case 'node:recovered':
    case 'run:reuse-planned':
    case 'run:succeeded':
    case 'run:failed':
    case 'run:cancelled':
    case 'run:taken-over':
    case 'run:lease-lost':
    case 'controller:round-failed':
      return undefined;
  }
}

export function statusLabel(event: Pick<EngineEvent, 'cacheStatus' | 'cacheReason'>): string {
  const status = event.cacheStatus ?? '-';
  return status === 'SKIPPED' && event.cacheReason != null ? `SKIPPED(${event.cacheReason})` : status;
}

function settledNode(event: EngineEvent, notes: readonly string[]): SettledNode {
  return {
    runId: event.runId,
    workflow: event.workflow,
    nodeId: event.nodeId ?? '?',
    task: event.task ?? '',
    phase: event.phase ?? 'succeeded',
    status: event.phase === 'cancelled' ? 'cancelled' : statusLabel(event),
    key: event.cacheKey == null ? '-' : shortKey(event.cacheKey),
    durationMs: event.durationMs ?? null,
    // Cut in the middle, which keeps a message's cause (usually last); warnings were printed whole as they came.
    outcome: [fitText(oneLine(outcomeOf(event)), MAX_OUTCOME, 'middle'), ...notes.map((note) => fitText(oneLine(note), MAX_NOTE, 'middle'))].filter((part) => part !== '').join('; '),
    level: event.phase === 'succeeded' && event.cacheStatus !== 'PUT_FAILURE' ? 'info' : event.level,
  };
}

/** Saved compute is reported by the engine on hits (`savedMs`) once entries record their duration. */
type WithSaved = EngineEvent & { savedMs?: number };

function outcomeOf(event: EngineEvent): string {
  const attempts = event.attempt !== undefined && event.attempt > 1 ? ` (attempt ${event.attempt})` : '';
  const aside = event.message === undefined ? '' : `: ${event.message}`;
  if (event.phase === 'failed') return `failed${attempts}: ${event.error?.message ?? 'unknown error'}`;
  if (event.phase === 'aborted') return `not run${aside}`;
  if (event.phase === 'cancelled') return `cancelled${aside}`;
  const status = event.cacheStatus ?? null;
  if (status === null) return `ran${attempts}`;
  switch (status) {
    case 'HIT': {
      const saved = (event as WithSaved).savedMs;
      return `served from the cache${saved === undefined ? '' : ` (saved ${formatDuration(saved)})`}`;
    }
    case 'RECOVERED':
      return `reused from an earlier run${event.cacheReason == null ? '' : ` (${event.cacheReason})`}`;
    case 'FUTURE_HIT':
      return 'sub-workflow from the cache, result cached';
    case 'PUT_FAILURE':
      return `ran${attempts}, result not cached: ${event.cacheReason ?? event.message ?? 'the cache write failed'}`;
    case 'DISABLED':
      return `ran${attempts} (caching off)`;
    case 'MISS':
    case 'POPULATED':
    case 'EVICTED':
    case 'SKIPPED':
    case 'LOOKUP_FAILURE':
    case 'WAITING':
      return event.cacheKey == null ? `ran${attempts}` : `ran${attempts}, result cached`;
  }
}

/** `830 ms`, `12.4 s`, `4 m 12 s`, `2 h 5 m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} m ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} m`;
}

function nodeKey(runId: string, nodeId: string): string {
  return `${runId}\u0000${nodeId}`;
}
