import type { CacheStatus } from '../state/cache-status.js';
import type { ErrorInfo } from '../errors.js';
import type { CacheEntryKind, NewCacheEntry } from '../ports/cache-catalog.js';
import type { CacheWrite } from './events.js';
import type { TaskAttempt } from '../ports/task-dispatcher.js';

/** What a node or run did, for logs and the event stream. Names are `noun:verb`. */
export type EngineEventType =
  | 'node:cache-hit'
  | 'node:started'
  | 'node:retrying'
  | 'node:succeeded'
  | 'node:cache-written'
  | 'node:failed'
  | 'node:aborted'
  | 'node:expanded'
  | 'node:cache-corrupt'
  | 'node:dispatch-failed'
  | 'run:succeeded'
  | 'run:failed'
  /** This controller leased a running run that was free or whose lease had expired, and continues it. */
  | 'run:taken-over'
  /** Another controller took over a run this one held (its lease had expired): it stops driving it. */
  | 'run:lease-lost'
  | 'controller:round-failed';

export interface EngineEvent {
  type: EngineEventType;
  level: 'info' | 'warn' | 'error';
  runId: string;
  workflow: string;
  nodeId?: string;
  task?: string;
  attempt?: number;
  cacheStatus?: CacheStatus | null;
  cacheReason?: string | null;
  cacheKey?: string | null;
  durationMs?: number;
  error?: ErrorInfo;
  message?: string;
}

/**
 * The effects `decide` asks for: a closed union, at most one of each kind per decision, so a round
 * costs one catalog lookup, one dispatch and one catalog write however many nodes it touches.
 */
export type Command =
  | { type: 'LookupCache'; lookups: CacheLookup[] }
  | { type: 'DispatchTask'; attempts: TaskAttempt[] }
  | { type: 'WriteCache'; writes: CacheWrite[]; entries: NewCacheEntry[] }
  | { type: 'EmitEvent'; event: EngineEvent };

/** One key to look up: a node's output, or (dynamic nodes) its future. */
export interface CacheLookup {
  nodeId: string;
  key: string;
  kind: CacheEntryKind;
}
