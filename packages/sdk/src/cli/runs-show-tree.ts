import { shortKey } from '@memoflow/engine';
import type { RunGraphNode } from '../client/run-graph.js';
import type { NodeReport, RunReport } from '../client/run-handle.js';
import { formatDuration } from '../log/node-settle.js';
import { drawDagTree, type DagTreeNode } from './dag-tree.js';

/** The columns `runs show` draws after the tree; the last is free text (an error, a wait). */
const HEADERS = ['NODE', 'TASK', 'STATUS', 'CACHE', 'KEY', 'ATTEMPTS', 'DURATION', ''];

/**
 * `memoflow runs show <id>`: the run's DAG as a tree, a row per node with its task, status, cache
 * status, short key, attempts and duration; a container's children (a dynamic node's, a
 * sub-workflow's) under it; a failed node's error at the end of its row.
 *
 *   NODE          TASK        STATUS     CACHE      KEY         ATTEMPTS  DURATION
 *   extract       etl.load    succeeded  HIT        3f2a9c1b0e  0             1 ms
 *   └─ clean      etl.clean   failed     MISS       9d1e22a0b4  2            12 ms  boom
 */
export function runTreeLines(report: RunReport, graph: readonly RunGraphNode[], width: number): string[] {
  const byId = new Map(report.nodes.map((node) => [node.id, node]));
  const drawn = new Set<string>();
  const durations = report.nodes.map((node) => (node.durationMs === null ? '-' : formatDuration(node.durationMs)));
  // Right-aligned under their header.
  const durationWidth = durations.reduce((widest, d) => Math.max(widest, d.length), 'DURATION'.length);
  const durationOf = new Map(report.nodes.map((node, i) => [node.id, (durations[i] ?? '-').padStart(durationWidth)]));
  const row = (id: string, parents: readonly string[], container: string | null): DagTreeNode => {
    drawn.add(id);
    const node = byId.get(id);
    return { id, parents, container, columns: node === undefined ? ['', 'not recorded'] : columnsOf(node, durationOf.get(id) ?? '-') };
  };
  const nodes = graph.map((node) => row(node.id, node.parents, node.container));
  // A node the store has but the graph does not (there should be none) is still shown.
  for (const node of report.nodes) if (!drawn.has(node.id)) nodes.push(row(node.id, [], node.parent));
  return drawDagTree(nodes, { width, headers: HEADERS });
}

function columnsOf(node: NodeReport, duration: string): string[] {
  const cache = node.cacheStatus === 'SKIPPED' ? `SKIPPED(${node.cacheReason ?? ''})` : (node.cacheStatus ?? '-');
  const waited = node.waitedFor !== null && node.cacheStatus !== 'WAITING' ? ' after WAITING' : '';
  const note = node.error !== null ? node.error.message : node.cacheStatus === 'PUT_FAILURE' ? (node.cacheReason ?? '') : '';
  return [node.task, node.status, `${cache}${waited}`, shortKey(node.cacheKey), String(node.attempts), duration, note];
}

/** Where `runs show` draws: the terminal's width, or a wide page when piped. */
export function outputWidth(stream: NodeJS.WriteStream = process.stdout): number {
  return stream.isTTY && stream.columns > 0 ? stream.columns : PIPED_WIDTH;
}

const PIPED_WIDTH = 160;
