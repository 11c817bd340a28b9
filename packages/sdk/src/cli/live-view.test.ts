import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import stringWidth from 'string-width';
import type { EngineEvent, NodePhase } from '@memoflow/engine';
import type { RunGraphNode } from '../client/run-graph.js';
import { LiveView } from './live-view.js';

/** A terminal as far as log-update can tell: a Writable with isTTY, columns and rows. */
class FakeTty extends Writable {
  readonly isTTY = true;
  output = '';
  constructor(
    readonly columns: number,
    readonly rows: number,
  ) {
    super();
  }
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.output += chunk.toString();
    done();
  }
  /** The text written, without escape sequences. */
  plain(): string {
    // eslint-disable-next-line no-control-regex
    return this.output.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  }
}

const KEY = 'c0ffee'.repeat(10) + 'abcd';

function event(type: EngineEvent['type'], nodeId: string, phase: NodePhase, extra: Partial<EngineEvent> = {}): EngineEvent {
  return { type, level: 'info', runId: 'r1', workflow: 'etl.main', nodeId, task: `t.${nodeId}`, attempt: 1, cacheStatus: 'MISS', cacheReason: null, cacheKey: KEY, phase, ...extra };
}

const cachedRun = (id: string, durationMs = 12): EngineEvent[] => [
  event('node:started', id, 'dispatched'),
  event('node:succeeded', id, 'writing', { durationMs }),
  event('node:cache-written', id, 'succeeded', { cacheStatus: 'POPULATED', durationMs }),
];

const etl: RunGraphNode[] = [
  { id: 'extract', task: 't.extract', parents: [], container: null },
  { id: 'clean', task: 't.clean', parents: ['extract'], container: null },
  { id: 'fan', task: 't.fan', parents: ['extract'], container: null },
  { id: 'total', task: 't.total', parents: ['clean', 'fan'], container: null },
];

function view(stream: FakeTty, graph: readonly RunGraphNode[], intervalMs = 20): { live: LiveView; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  const live = new LiveView({ stream: stream as unknown as NodeJS.WriteStream, graph, intervalMs, now: () => clock.t });
  return { live, clock };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('live view', () => {
  it('draws the DAG as a tree with each node as it is now, and its last frame stays on the screen', () => {
    const tty = new FakeTty(100, 30);
    const { live, clock } = view(tty, etl);
    live.follow('r1');
    for (const e of cachedRun('extract')) live.sink(e);
    live.sink(event('node:cache-hit', 'clean', 'succeeded', { cacheStatus: 'HIT', durationMs: 1 }));
    live.sink(event('node:started', 'fan', 'dispatched'));
    clock.t += 1500;
    let frame = live.frame();
    expect(frame[0]).toMatch(/^run r1 etl\.main {2}2 of 4 settled · 1 running · 1 pending {2}1\.50 s$/);
    expect(frame.slice(1)).toEqual([
      expect.stringMatching(/^extract +POPULATED +c0ffeec0ff +12 ms +ran, result cached$/),
      expect.stringMatching(/^├─ clean +HIT +c0ffeec0ff +1 ms +served from the cache$/),
      expect.stringMatching(/^│ {2}└─ total +pending +- *← also needs fan$/),
      expect.stringMatching(/^└─ fan +running +c0ffeec0ff +1\.50 s$/),
    ]);
    // A dynamic node's children appear under it as they start.
    live.sink(event('node:expanded', 'fan', 'expanded', { message: 'into 2 node(s)' }));
    live.sink(event('node:cache-hit', 'fan.item-0', 'succeeded', { cacheStatus: 'HIT' }));
    frame = live.frame();
    expect(frame.findIndex((line) => line.includes('.item-0'))).toBe(frame.findIndex((line) => line.includes('fan ')) + 1);
    live.sink(event('node:cache-hit', 'fan.item-1', 'succeeded', { cacheStatus: 'HIT' }));
    for (const e of [...cachedRun('fan'), ...cachedRun('total')]) live.sink(e);
    live.sink({ type: 'run:succeeded', level: 'info', runId: 'r1', workflow: 'etl.main', durationMs: 1600 });
    live.finish();
    const screen = tty.plain();
    expect(screen).toMatch(/6 of 6 settled · none left/);
    expect(screen).toMatch(/└─ total +POPULATED .* ran, result cached/);
    expect(screen).toMatch(/ r1 etl\.main run succeeded in 1600 ms\n$/);
  });

  it('a burst of 10,000 events draws a few throttled frames, and a tree taller than the terminal is a window with counts', async () => {
    const tty = new FakeTty(80, 12);
    const size = 4300;
    const graph = Array.from({ length: size }, (_, i): RunGraphNode => ({ id: `n${i}`, task: 't', parents: i === 0 ? [] : [`n${Math.floor(i / 2)}`], container: null }));
    const { live } = view(tty, graph, 50);
    live.follow('r1');
    // Every third node is still running; the rest ran and were cached.
    const events = graph.flatMap((node, i) => cachedRun(node.id).slice(0, i % 3 === 0 ? 1 : 3));
    expect(events.length).toBeGreaterThanOrEqual(10_000);
    const running = Math.ceil(size / 3);
    const started = Date.now();
    for (const e of events) live.sink(e);
    const burstMs = Date.now() - started;
    await sleep(120);
    // One frame at the first event, then at most one per interval.
    expect(live.frames).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - started) / 50));
    const frame = live.frame();
    expect(frame.length).toBeLessThanOrEqual(12);
    for (const line of frame) expect(stringWidth(line)).toBeLessThanOrEqual(80);
    expect(frame[0]).toMatch(new RegExp(`${size - running} of ${size} settled · ${running} running`));
    const shown = frame.length - 2;
    expect(frame.at(-1)).toBe(`… ${size - shown} more node(s) not shown (${running - shown} running · ${size - running} settled)`);
    // The window shows running nodes first.
    expect(frame.slice(1, -1).every((line) => / running /.test(line))).toBe(true);
    console.info(`${events.length} events into the live view: ${burstMs} ms, ${live.frames} frame(s)`);
    live.finish();
  });

  it('keeps its columns with 200-character and unicode ids', () => {
    const tty = new FakeTty(90, 20);
    const long = 'x'.repeat(200);
    const wide = '数据清洗'.repeat(15);
    const { live } = view(tty, [
      { id: long, task: 't', parents: [], container: null },
      { id: wide, task: 't', parents: [long], container: null },
      { id: 'ok', task: 't', parents: [wide], container: null },
    ]);
    for (const id of [long, wide, 'ok']) for (const e of cachedRun(id)) live.sink(e);
    const frame = live.frame();
    for (const line of frame) expect(stringWidth(line)).toBeLessThanOrEqual(90);
    const statusAt = frame.slice(1).map((line) => stringWidth(line.slice(0, line.indexOf('POPULATED'))));
    expect(new Set(statusAt).size).toBe(1);
    live.finish();
  });

  it('writes warnings above the view, where they stay, and the events of other runs only as warnings', () => {
    const tty = new FakeTty(120, 20);
    const { live } = view(tty, etl);
    live.follow('r1');
    live.sink(event('node:started', 'extract', 'dispatched'));
    live.sink(event('node:succeeded', 'extract', 'writing'));
    live.sink(event('node:cache-written', 'extract', 'writing', { level: 'warn', message: 'cache write failed (attempt 1), retrying in 100 ms: ECONNREFUSED' }));
    live.sink({ ...event('node:started', 'other', 'dispatched'), runId: 'r2' });
    live.sink({ ...event('node:cache-corrupt', 'other', 'looking-up', { level: 'warn', message: 'catalog entry undecodable' }), runId: 'r2' });
    live.finish();
    const screen = tty.plain();
    // Written whole (the terminal wraps them), not cut to the width like the view's rows.
    expect(screen).toMatch(/ r1 extract [\s\S]* cached \(cache write failed \(attempt 1\), retrying in 100 ms: ECONNREFUSED\)/);
    expect(screen).toMatch(/ r2 other [\s\S]* corrupt cache entry \(catalog entry undecodable\)/);
    expect(live.frame().some((line) => line.includes('other'))).toBe(false);
    expect(live.frame()[1]).toMatch(/^extract +writing/);
  });

  it('reads the DAG again when a dynamic node expands, so its children are drawn with their dependencies', async () => {
    const tty = new FakeTty(100, 30);
    const { live } = view(tty, [{ id: 'fan', task: 't', parents: [], container: null }]);
    const children: RunGraphNode[] = [
      { id: 'fan', task: 't', parents: [], container: null },
      { id: 'fan.fit', task: 't', parents: [], container: 'fan' },
      { id: 'fan.score', task: 't', parents: ['fan.fit'], container: 'fan' },
    ];
    let loads = 0;
    live.follow('r1', () => {
      loads++;
      return Promise.resolve(children);
    });
    live.sink(event('node:started', 'fan', 'dispatched'));
    live.sink(event('node:expanded', 'fan', 'expanded', { message: 'into 2 node(s)' }));
    live.sink(event('node:expanded', 'fan', 'expanded', { message: 'into 2 node(s)' }));
    await sleep(50);
    expect(loads).toBe(1);
    expect(live.frame().slice(1)).toEqual([
      expect.stringMatching(/^fan +running/),
      expect.stringMatching(/^└─ \.fit +pending/),
      expect.stringMatching(/^ {3}└─ \.score +pending/),
    ]);
    live.finish();
  });
});
