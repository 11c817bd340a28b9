import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '@memoflow/engine';
import { eventFields, formatEvent, lostWritesNote, waitedNote } from './event-log.js';

const hit: EngineEvent = {
  type: 'node:cache-hit',
  level: 'info',
  runId: 'r123',
  workflow: 'etl.main',
  nodeId: 'clean',
  task: 'etl.clean',
  attempt: 0,
  cacheStatus: 'HIT',
  cacheReason: 'from run r1',
  cacheKey: 'a'.repeat(64),
  durationMs: 3,
};

describe('node log lines', () => {
  it('carry run id, node id, task, status, short key and duration', () => {
    const line = formatEvent(hit);
    for (const part of ['r123', 'clean', 'etl.clean', 'HIT', 'aaaaaaaaaa', '3 ms']) expect(line).toContain(part);
    expect(line).not.toContain('a'.repeat(11));
  });

  it('show the skip reason with SKIPPED', () => {
    expect(formatEvent({ ...hit, type: 'node:started', cacheStatus: 'SKIPPED', cacheReason: 'upstream-reran' })).toContain('SKIPPED(upstream-reran)');
  });

  it('have the same fields in JSON', () => {
    expect(eventFields(hit)).toEqual({
      event: 'node:cache-hit',
      runId: 'r123',
      workflow: 'etl.main',
      nodeId: 'clean',
      task: 'etl.clean',
      attempt: 0,
      cacheStatus: 'HIT',
      cacheReason: 'from run r1',
      cacheKey: 'aaaaaaaaaa',
      durationMs: 3,
    });
  });
});

describe('lostWritesNote', () => {
  it('names the nodes whose cache write was lost, and is empty when none was', () => {
    expect(lostWritesNote([{ id: 'a', task: 't.a', cacheStatus: 'POPULATED' }])).toBe('');
    expect(lostWritesNote([{ id: 'a', task: 't.a', cacheStatus: 'PUT_FAILURE' }, { id: 'b', task: 't.b', cacheStatus: 'HIT' }])).toBe(
      '; cache writes lost, the next run executes them again: a (t.a)',
    );
    const many = Array.from({ length: 12 }, (_, i) => ({ id: `n${i}`, task: 't', cacheStatus: 'PUT_FAILURE' }));
    expect(lostWritesNote(many)).toMatch(/n9 \(t\) and 2 more$/);
  });

  it('shows WAITING in node lines and JSON fields, and the summary counts nodes that waited, naming whose reservation', () => {
    const waiting: EngineEvent = { ...hit, type: 'node:waiting', cacheStatus: 'WAITING', cacheReason: "reservation held by run r0 node 'clean'", message: "run r0 node 'clean' holds the reservation on this key" };
    expect(formatEvent(waiting)).toMatch(/WAITING .* waiting \(run r0 node 'clean' holds the reservation/);
    expect(eventFields(waiting)).toMatchObject({ event: 'node:waiting', cacheStatus: 'WAITING', cacheReason: "reservation held by run r0 node 'clean'" });
    expect(waitedNote([{ id: 'a', waitedFor: null }])).toBe('');
    expect(waitedNote([{ id: 'a', waitedFor: { runId: 'r0', nodeId: 'x' } }, { id: 'b', waitedFor: { runId: 'r0', nodeId: 'x' } }, { id: 'c' }])).toBe('; 2 WAITING first (for r0:x)');
  });
});
