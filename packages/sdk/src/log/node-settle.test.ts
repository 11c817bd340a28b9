import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTerminal, type CacheStatus, type EngineEvent, type NodePhase } from '@memoflow/engine';
import { NodeSettleTracker, formatDuration } from './node-settle.js';
import { createEventLog, settledLines } from './event-log.js';

const KEY = 'ab'.repeat(32);

function event(type: EngineEvent['type'], nodeId: string, phase: NodePhase, extra: Partial<EngineEvent> = {}): EngineEvent {
  return { type, level: 'info', runId: 'r1', workflow: 'wf', nodeId, task: `t.${nodeId}`, attempt: 1, cacheStatus: 'MISS', cacheReason: null, cacheKey: KEY, phase, ...extra };
}

/** A cached node that runs: started, done (writing its entry), then its entry written. */
const cachedRun = (id: string): EngineEvent[] => [
  event('node:started', id, 'dispatched'),
  event('node:succeeded', id, 'writing', { durationMs: 12 }),
  event('node:cache-written', id, 'succeeded', { cacheStatus: 'POPULATED', durationMs: 12 }),
];

function linesOf(events: readonly EngineEvent[]): string[] {
  const lines: string[] = [];
  const sink = settledLines((line) => lines.push(line));
  for (const e of events) sink(e);
  return lines;
}

describe('one line per node', () => {
  it('a cached node that ran prints one line once its entry is written, with status, key and duration', () => {
    const lines = linesOf(cachedRun('clean'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ r1 clean +t\.clean +POPULATED +key abababab.. +12 ms {2}ran, result cached$/);
  });

  it('a HIT says it was served from the cache, with the compute it saved when the event carries savedMs', () => {
    const hit = event('node:cache-hit', 'load', 'succeeded', { cacheStatus: 'HIT', cacheReason: 'from run r0', durationMs: 1 });
    expect(linesOf([hit])[0]).toMatch(/HIT +key abababab.. +1 ms {2}served from the cache$/);
    expect(linesOf([{ ...hit, savedMs: 252_000 } as EngineEvent])[0]).toMatch(/served from the cache \(saved 4 m 12 s\)$/);
  });

  it('a write retried then lost prints the retry warning as it happens and one PUT_FAILURE line naming why', () => {
    const lines = linesOf([
      event('node:started', 'a', 'dispatched'),
      event('node:succeeded', 'a', 'writing'),
      event('node:cache-written', 'a', 'writing', { level: 'warn', message: 'cache write failed (attempt 1), retrying in 100 ms: ECONNREFUSED' }),
      event('node:cache-written', 'a', 'succeeded', { level: 'warn', cacheStatus: 'PUT_FAILURE', cacheReason: 'cache write lost after 2 attempt(s): ECONNREFUSED', message: 'cache write lost after 2 attempt(s): ECONNREFUSED' }),
    ]);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/cached \(cache write failed \(attempt 1\), retrying in 100 ms: ECONNREFUSED\)$/);
    expect(lines[1]).toMatch(/PUT_FAILURE .* ran, result not cached: cache write lost after 2 attempt\(s\): ECONNREFUSED; cache write failed \(attempt 1\)/);
  });

  it('a dynamic node prints once, after its output is written, saying what it expanded into; its future being stored is no line', () => {
    const lines = linesOf([
      event('node:started', 'fan', 'dispatched'),
      event('node:expanded', 'fan', 'expanded', { message: 'into 3 node(s)' }),
      event('node:cache-written', 'fan', 'expanded', { message: 'future stored' }),
      event('node:succeeded', 'fan', 'writing'),
      event('node:cache-written', 'fan', 'succeeded', { cacheStatus: 'POPULATED' }),
    ]);
    expect(lines).toEqual([expect.stringMatching(/fan .* POPULATED .* ran, result cached; expanded into 3 node\(s\)$/)]);
  });

  it('failed, aborted, cancelled and recovered nodes print one line each saying so', () => {
    const lines = linesOf([
      event('node:started', 'a', 'dispatched'),
      event('node:retrying', 'a', 'dispatched', { attempt: 2, message: 'attempt 1 failed: boom' }),
      event('node:failed', 'a', 'failed', { level: 'error', attempt: 2, error: { name: 'Error', message: 'boom', retryable: false } }),
      event('node:aborted', 'b', 'aborted', { level: 'warn', cacheStatus: null, message: 'an upstream node failed' }),
      event('node:cancelled', 'c', 'cancelled', { level: 'warn', message: 'cancelled with memoflow runs cancel' }),
      event('node:recovered', 'd', 'succeeded', { cacheStatus: 'RECOVERED', cacheReason: 'from run r0' }),
    ]);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/ a +t\.a +MISS .* failed \(attempt 2\): boom$/);
    expect(lines[1]).toMatch(/ b +t\.b +- .* not run: an upstream node failed$/);
    expect(lines[2]).toMatch(/ c +t\.c +cancelled .* cancelled: cancelled with memoflow runs cancel$/);
    expect(lines[3]).toMatch(/ d +t\.d +RECOVERED .* reused from an earlier run \(from run r0\)$/);
  });

  it('a node still writing when its run ends is reported before the run line', () => {
    const lines = linesOf([
      event('node:started', 'a', 'dispatched'),
      event('node:succeeded', 'a', 'writing'),
      { type: 'run:cancelled', level: 'warn', runId: 'r1', workflow: 'wf', durationMs: 5 },
    ]);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ a .* its cache write had not landed when the run ended$/);
    expect(lines[1]).toMatch(/ r1 wf run cancelled in 5 ms$/);
  });

  it('a multi-line error message stays on its node line', () => {
    const lines = linesOf([event('node:failed', 'a', 'failed', { level: 'error', error: { name: 'Error', message: 'first\n    at frame (x.js:1:1)\r\nlast', retryable: false } })]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/failed: first at frame \(x\.js:1:1\) last$/);
  });

  it('200-character and unicode node ids are cut in the middle so the columns after them stay put', () => {
    const ids = ['x'.repeat(200), '数据清洗'.repeat(10), 'short'];
    const lines = linesOf(ids.flatMap((id) => cachedRun(id)));
    const statusAt = lines.map((line) => line.indexOf('POPULATED'));
    expect(lines[0]).toMatch(/x+…x+ /);
    expect(lines[1]).toContain('…');
    // Same terminal column: the CJK id is half as many characters for the same width.
    expect(statusAt[0]).toBe(statusAt[2]);
  });

  it('--verbose restores a line per event, and json keeps its records', () => {
    const lines: string[] = [];
    const stream = { write: (text: string) => lines.push(text) } as unknown as NodeJS.WritableStream;
    const verbose = createEventLog({ format: 'pretty', verbose: true, stream });
    for (const e of cachedRun('clean')) verbose(e);
    expect(lines.map((line) => line.trim().split(/\s+/).pop())).toEqual(['running', 'done', 'cached']);
    lines.length = 0;
    const json = createEventLog({ format: 'json', stream });
    for (const e of cachedRun('clean')) json(e);
    expect(lines.map((line) => (JSON.parse(line) as { event: string }).event)).toEqual(['node:started', 'node:succeeded', 'node:cache-written']);
    expect(JSON.parse(lines[2] ?? '{}')).not.toHaveProperty('phase');
  });

  it('formats durations for people', () => {
    expect([0, 830, 1234, 12_400, 252_000, 7_500_000].map(formatDuration)).toEqual(['0 ms', '830 ms', '1.23 s', '12.4 s', '4 m 12 s', '2 h 5 m']);
  });
});

/**
 * A node's life as the engine reports it: one of the paths of the phase diagram (state/node-phase.ts),
 * with retries, failed cache writes, a dynamic node's future, and late or repeated reports after
 * it settled. `settles`: whether it reaches a terminal phase or `writing` (which a run's end reports).
 */
const lifecycle = fc
  .record({
    path: fc.constantFrom('hit', 'recovered', 'cached', 'uncached', 'failed', 'aborted', 'cancelled', 'dynamic', 'unfinished', 'still-writing'),
    retries: fc.nat(3),
    writeFailures: fc.nat(3),
    lost: fc.boolean(),
    repeats: fc.nat(2),
  })
  .map(({ path, retries, writeFailures, lost, repeats }) => (id: string): { events: EngineEvent[]; settles: boolean } => {
    const started = [event('node:started', id, 'dispatched'), ...Array.from({ length: retries }, (_, i) => event('node:retrying', id, 'dispatched', { attempt: i + 2 }))];
    const writes = (status: CacheStatus) => [
      ...Array.from({ length: writeFailures }, (_, i) => event('node:cache-written', id, 'writing', { level: 'warn', message: `cache write failed (attempt ${i + 1}), retrying` })),
      lost ? event('node:cache-written', id, 'succeeded', { level: 'warn', cacheStatus: 'PUT_FAILURE', cacheReason: 'lost' }) : event('node:cache-written', id, 'succeeded', { cacheStatus: status }),
    ];
    let events: EngineEvent[];
    switch (path) {
      case 'hit':
        events = [event('node:cache-hit', id, 'succeeded', { cacheStatus: 'HIT' })];
        break;
      case 'recovered':
        events = [event('node:recovered', id, 'succeeded', { cacheStatus: 'RECOVERED' })];
        break;
      case 'cached':
        events = [...started, event('node:succeeded', id, 'writing'), ...writes('POPULATED')];
        break;
      case 'uncached':
        events = [...started.map((e) => ({ ...e, cacheKey: null, cacheStatus: 'DISABLED' as const })), event('node:succeeded', id, 'succeeded', { cacheKey: null, cacheStatus: 'DISABLED' })];
        break;
      case 'failed':
        events = [...started, event('node:failed', id, 'failed', { level: 'error', error: { name: 'E', message: 'boom', retryable: false } })];
        break;
      case 'aborted':
        events = [event('node:aborted', id, 'aborted', { level: 'warn' })];
        break;
      case 'cancelled':
        events = [...started, event('node:cancelled', id, 'cancelled', { level: 'warn' })];
        break;
      case 'dynamic':
        events = [...started, event('node:expanded', id, 'expanded', { message: 'into 2 node(s)' }), event('node:cache-written', id, 'expanded', { message: 'future stored' }), event('node:succeeded', id, 'writing'), ...writes('POPULATED')];
        break;
      case 'unfinished':
        return { events: started, settles: false };
      case 'still-writing':
        return { events: [...started, event('node:succeeded', id, 'writing')], settles: true };
    }
    const last = events[events.length - 1] as EngineEvent;
    return { events: [...events, ...Array.from({ length: repeats }, () => last)], settles: true };
  });

/** Several nodes' lives interleaved at random, each keeping its own order. */
const interleaved = fc
  .record({
    lives: fc.array(lifecycle, { minLength: 1, maxLength: 40 }),
    picks: fc.array(fc.nat(), { minLength: 400, maxLength: 400 }),
    ends: fc.boolean(),
  })
  .map(({ lives, picks, ends }) => {
    const nodes = lives.map((life, i) => ({ id: `n${i}`, ...life(`n${i}`) }));
    const queues = nodes.map((node) => [...node.events]);
    const events: EngineEvent[] = [];
    for (let step = 0; queues.some((q) => q.length > 0); step++) {
      const open = queues.filter((q) => q.length > 0);
      const queue = open[(picks[step % picks.length] ?? 0) % open.length] as EngineEvent[];
      events.push(queue.shift() as EngineEvent);
    }
    if (ends) events.push({ type: 'run:succeeded', level: 'info', runId: 'r1', workflow: 'wf' });
    return { nodes, events, ends };
  });

describe('one line per node, over random event sequences', () => {
  it('every node that settles gets exactly one line, nodes that do not get none, and only warnings add lines', () => {
    fc.assert(
      fc.property(interleaved, ({ nodes, events, ends }) => {
        const tracker = new NodeSettleTracker();
        const settledCount = new Map<string, number>();
        const count = (id: string) => settledCount.set(id, (settledCount.get(id) ?? 0) + 1);
        for (const e of events) {
          const settled = tracker.observe(e);
          if (settled !== undefined) count(settled.nodeId);
          if (e.type === 'run:succeeded') for (const node of tracker.endRun(e.runId)) count(node.nodeId);
        }
        for (const node of nodes) {
          const stillWriting = node.events.at(-1)?.phase === 'writing';
          expect(settledCount.get(node.id) ?? 0, node.id).toBe(node.settles && (ends || !stillWriting) ? 1 : 0);
        }
        // The sink: the settled lines, plus one per warning that settles nothing, plus the run's line.
        const lines = linesOf(events);
        const warnings = events.filter((e) => e.nodeId !== undefined && e.level !== 'info' && (e.phase === undefined || !isTerminal(e.phase)));
        const settledTotal = [...settledCount.values()].reduce((a, b) => a + b, 0);
        expect(lines).toHaveLength(settledTotal + warnings.length + (ends ? 1 : 0));
      }),
      { numRuns: 300 },
    );
  });
});
