import { describe, expect, it } from 'vitest';
import stringWidth from 'string-width';
import type { RunGraphNode } from '../client/run-graph.js';
import type { NodeReport, RunReport } from '../client/run-handle.js';
import { runTreeLines } from './runs-show-tree.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');

function node(id: string, extra: Partial<NodeReport> = {}): NodeReport {
  return {
    id,
    parent: null,
    task: `t.${id.split('.').pop() ?? id}`,
    status: 'succeeded',
    cacheStatus: 'POPULATED',
    cacheReason: null,
    cacheKey: 'f00d'.repeat(16),
    waitedFor: null,
    attempts: 1,
    startedAt: T0,
    finishedAt: T0,
    durationMs: 12,
    output: null,
    error: null,
    ...extra,
  };
}

function report(nodes: NodeReport[]): RunReport {
  return { id: 'r1', workflow: 'wf', project: 'p', domain: 'd', status: 'failed', outputs: null, error: null, createdAt: T0, finishedAt: T0, resumedFrom: null, retryOf: null, source: null, nodes };
}

const edge = (id: string, parents: string[] = [], container: string | null = null): RunGraphNode => ({ id, task: 't', parents, container });

describe('runs show tree', () => {
  it("draws statuses, keys, attempts and durations, a container's children under it, and a failed node's error", () => {
    const lines = runTreeLines(
      report([
        node('load', { cacheStatus: 'HIT', cacheReason: 'from run r0', durationMs: 3 }),
        node('fan', { status: 'failed', cacheStatus: 'MISS', attempts: 2, durationMs: 1500, error: { name: 'ChildFailed', message: "child node 'fan.sq-2' failed: boom", retryable: false } }),
        node('fan.sq', { parent: 'fan', cacheStatus: 'SKIPPED', cacheReason: 'upstream-reran' }),
        node('fan.sq-2', { parent: 'fan', status: 'failed', cacheStatus: 'MISS', error: { name: 'Error', message: 'boom', retryable: true } }),
        node('total', { status: 'aborted', cacheStatus: null, cacheKey: null, attempts: 0, startedAt: null, finishedAt: null, durationMs: null }),
      ]),
      [edge('load'), edge('fan', ['load']), edge('fan.sq', [], 'fan'), edge('fan.sq-2', [], 'fan'), edge('total', ['fan', 'load'])],
      160,
    );
    expect(lines).toEqual([
      'NODE         TASK     STATUS     CACHE                    KEY         ATTEMPTS  DURATION',
      'load         t.load   succeeded  HIT                      f00df00df0  1             3 ms',
      "├─ fan       t.fan    failed     MISS                     f00df00df0  2           1.50 s  child node 'fan.sq-2' failed: boom",
      '│  ├─ .sq    t.sq     succeeded  SKIPPED(upstream-reran)  f00df00df0  1            12 ms',
      '│  └─ .sq-2  t.sq-2   failed     MISS                     f00df00df0  1            12 ms  boom',
      '└─ total     t.total  aborted    -                        -           0                -  ← also needs fan',
    ]);
  });

  it('keeps its columns with 200-character and unicode ids, within the width, and shows nodes the graph lacks', () => {
    const long = 'x'.repeat(200);
    const wide = 'データ処理'.repeat(12);
    const nodes = [node(long), node(wide), node('orphan', { cacheStatus: 'PUT_FAILURE', cacheReason: 'cache write lost after 3 attempt(s): ECONNREFUSED' })];
    const graph = [edge(long), edge(wide, [long])];
    const lines = runTreeLines(report(nodes), graph, 100);
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(stringWidth(line)).toBeLessThanOrEqual(100);
    const taskAt = lines.slice(1).map((line) => stringWidth(line.slice(0, line.search(/ t\./) + 1)));
    expect(new Set(taskAt).size).toBe(1);
    expect(lines[1]).toMatch(/^x+…x+ /);
    expect(lines[3]).toMatch(/^orphan .* PUT_FAILURE /);
    // Wide enough, the lost write's reason is there in full.
    expect(runTreeLines(report(nodes), graph, 320)[3]).toMatch(/^orphan .* PUT_FAILURE .* cache write lost after 3 attempt\(s\): ECONNREFUSED$/);
  });
});
