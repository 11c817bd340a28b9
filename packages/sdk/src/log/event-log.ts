import { pino, type Logger } from 'pino';
import { isTerminal, shortKey, type EngineEvent } from '@memoflow/engine';
import { fitText, oneLine, padTo } from './fit-text.js';
import { formatDuration, NodeSettleTracker, statusLabel, type SettledNode } from './node-settle.js';

export type LogFormat = 'pretty' | 'json' | 'silent';

/** Where node and run events go: a formatted line per event, a pino JSON record, or nowhere. */
export type EventSink = (event: EngineEvent) => void;

export interface EventLogOptions {
  format?: LogFormat;
  /** Defaults to standard error, so a script's own standard output stays clean. */
  stream?: NodeJS.WritableStream;
  /** For `format: 'json'`: a pino logger of the caller's (e.g. with its own transport). */
  logger?: Logger;
  /**
   * For `format: 'pretty'`: a line per event (running, done, cached, ...) instead of one line per
   * node when it settles (`memoflow run --verbose`).
   */
  verbose?: boolean;
}

export function createEventLog(options: EventLogOptions = {}): EventSink {
  const format = options.format ?? 'pretty';
  const stream = options.stream ?? process.stderr;
  switch (format) {
    case 'silent':
      return () => {};
    case 'json': {
      const logger = options.logger ?? pino({ base: null }, stream as pino.DestinationStream);
      return (event) => logger[event.level](eventFields(event), eventMessage(event));
    }
    case 'pretty':
      if (options.verbose === true) {
        return (event) => {
          stream.write(`${formatEvent(event)}\n`);
        };
      }
      return settledLines((line) => stream.write(`${line}\n`));
  }
}

/**
 * One line per node when it settles (see NodeSettleTracker for which event that is), plus the
 * run's own lines and the warnings that do not wait for a node to settle (a cache write being
 * retried, a corrupt entry, a dispatch that failed), since they say what is going wrong now.
 */
export function settledLines(write: (line: string) => void): EventSink {
  const tracker = new NodeSettleTracker();
  return (event) => {
    if (event.nodeId === undefined) {
      if (event.type === 'run:succeeded' || event.type === 'run:failed' || event.type === 'run:cancelled') {
        for (const node of tracker.endRun(event.runId)) write(formatSettled(node));
      }
      write(formatEvent(event));
      return;
    }
    const settled = tracker.observe(event);
    if (settled !== undefined) write(formatSettled(settled));
    // A warning in a terminal phase either settled its node (its line says it) or repeats one that did.
    else if (event.level !== 'info' && (event.phase === undefined || !isTerminal(event.phase))) write(formatEvent(event));
  };
}

/**
 * A settled node's line:
 *   11:02:03.470 r1k2j3 clean            etl.clean                POPULATED    key 3f2a9c1b0e     12 ms  ran, result cached
 *   11:02:04.002 r1k2j3 total            etl.total                HIT          key 71c0fe3a99      1 ms  served from the cache
 * Ids longer than their column are cut in the middle (the `json` format has them whole).
 */
export function formatSettled(node: SettledNode): string {
  const time = new Date().toISOString().slice(11, 23);
  const took = node.durationMs === null ? '' : formatDuration(node.durationMs);
  return `${time} ${node.runId} ${column(node.nodeId, NODE_COLUMN)} ${column(node.task, TASK_COLUMN)} ${column(node.status, STATUS_COLUMN)} key ${node.key.padEnd(10)} ${took.padStart(8)}  ${node.outcome}`;
}

const NODE_COLUMN = 32;
const TASK_COLUMN = 24;
const STATUS_COLUMN = 24;

/** A column of a plain line: cut in the middle when longer, so the columns after it stay put. */
function column(text: string, width: number): string {
  return padTo(fitText(oneLine(text), width, 'middle'), width);
}

/** The structured fields of an event line (`--json`): every node line has run, node, task, status, key, duration. */
export function eventFields(event: EngineEvent): Record<string, unknown> {
  const fields: Record<string, unknown> = { event: event.type, runId: event.runId, workflow: event.workflow };
  if (event.nodeId !== undefined) {
    fields['nodeId'] = event.nodeId;
    fields['task'] = event.task;
    fields['attempt'] = event.attempt;
    fields['cacheStatus'] = event.cacheStatus ?? null;
    if (event.cacheReason != null) fields['cacheReason'] = event.cacheReason;
    fields['cacheKey'] = shortKey(event.cacheKey ?? null);
  }
  if (event.durationMs !== undefined) fields['durationMs'] = event.durationMs;
  if (event.plan !== undefined) fields['plan'] = event.plan;
  if (event.error !== undefined) fields['error'] = { name: event.error.name, message: event.error.message, ...(event.error.code === undefined ? {} : { code: event.error.code }) };
  return fields;
}

const VERB: { readonly [type in EngineEvent['type']]: string } = {
  'node:cache-hit': 'served from the cache',
  'node:waiting': 'waiting',
  'node:started': 'running',
  'node:retrying': 'retrying',
  'node:succeeded': 'done',
  'node:cache-written': 'cached',
  'node:expanded': 'expanded',
  'node:failed': 'failed',
  'node:aborted': 'not run',
  'node:cancelled': 'cancelled',
  'node:cache-corrupt': 'corrupt cache entry',
  'node:dispatch-failed': 'dispatch failed',
  'node:recovered': 'reused from an earlier run',
  'run:reuse-planned': 'plan',
  'run:succeeded': 'run succeeded',
  'run:failed': 'run failed',
  'run:cancelled': 'run cancelled',
  'run:taken-over': 'run taken over',
  'run:lease-lost': 'run lease lost',
  'controller:round-failed': 'controller round failed',
};

export function eventMessage(event: EngineEvent): string {
  return event.message === undefined ? VERB[event.type] : `${VERB[event.type]}: ${event.message}`;
}

/**
 * One human line per event:
 *   11:02:03.456 r1k2j3.. clean      etl.clean      MISS        key 3f2a9c1b0e  running
 *   11:02:03.470 r1k2j3.. clean      etl.clean      POPULATED   key 3f2a9c1b0e  12 ms  done
 */
export function formatEvent(event: EngineEvent): string {
  const time = new Date().toISOString().slice(11, 23);
  if (event.nodeId === undefined) {
    const error = event.error === undefined ? '' : `: ${event.error.message}`;
    const took = event.durationMs === undefined ? '' : ` in ${event.durationMs} ms`;
    return `${time} ${event.runId} ${event.workflow} ${VERB[event.type]}${took}${error}${event.message === undefined ? '' : ` (${event.message})`}`;
  }
  const status = statusLabel(event);
  const attempt = event.attempt !== undefined && event.attempt > 1 ? ` attempt ${event.attempt}` : '';
  const took = event.durationMs === undefined ? '' : `${event.durationMs} ms`;
  const error = event.error === undefined ? '' : ` ${event.error.message}`;
  // `expanded into 12 node(s)` reads as one phrase; other messages are asides in parentheses.
  const message = event.message === undefined || event.type === 'node:failed' ? '' : event.type === 'node:expanded' ? ` ${event.message}` : ` (${event.message})`;
  return `${time} ${event.runId} ${column(event.nodeId, NODE_COLUMN)} ${column(event.task ?? '', TASK_COLUMN)} ${column(status, STATUS_COLUMN)} key ${shortKey(event.cacheKey ?? null).padEnd(10)} ${took.padStart(8)}  ${VERB[event.type]}${attempt}${error}${message}`;
}

/**
 * The summary's note on cache writes that were lost for good (PUT_FAILURE: retried while the run
 * lived and once more at its end), naming the nodes; empty when none were.
 */
/**
 * The summary's note on serialized nodes that waited for another owner's reservation (WAITING, then
 * HIT or executed), with whose; empty when none did.
 */
export function waitedNote(nodes: readonly { id: string; waitedFor?: { runId: string; nodeId: string } | null }[]): string {
  const waited = nodes.filter((node) => node.waitedFor != null);
  if (waited.length === 0) return '';
  const owners = [...new Set(waited.map((node) => `${node.waitedFor?.runId ?? '?'}:${node.waitedFor?.nodeId ?? '?'}`))];
  return `; ${waited.length} WAITING first (for ${owners.slice(0, 3).join(', ')}${owners.length > 3 ? ` and ${owners.length - 3} more` : ''})`;
}

export function lostWritesNote(nodes: readonly { id: string; task: string; cacheStatus: string | null }[]): string {
  const lost = nodes.filter((node) => node.cacheStatus === 'PUT_FAILURE');
  if (lost.length === 0) return '';
  const named = lost.slice(0, 10).map((node) => `${node.id} (${node.task})`);
  return `; cache writes lost, the next run executes them again: ${named.join(', ')}${lost.length > named.length ? ` and ${lost.length - named.length} more` : ''}`;
}

