import { createLogUpdate } from 'log-update';
import type { EngineEvent, NodePhase } from '@memoflow/engine';
import type { RunGraphNode } from '../client/run-graph.js';
import { formatEvent, type EventSink } from '../log/event-log.js';
import { fitText } from '../log/fit-text.js';
import { formatDuration, NodeSettleTracker, statusLabel, type SettledNode } from '../log/node-settle.js';
import { drawDagTree, type DagTreeNode } from './dag-tree.js';

/**
 * `memoflow run` on a terminal: the run's DAG as a tree (cli/dag-tree.ts) with each node's status,
 * key, duration and what happened, redrawn in place (log-update) as events come, like turbo's or
 * listr2's views. Piped output and `--json` get plain lines instead (log/event-log.ts).
 *
 *   run r7k2m housing.train  14 of 21 settled · 3 running · 4 pending  1.2 s
 *   load               POPULATED  key d3387ad583   85 ms  ran, result cached
 *   └─ clean           running    key db57b2a0d5  0.31 s
 *
 * Redraws are throttled (at most one per `intervalMs`, default 100 ms), so a burst of ten thousand
 * events costs a few frames, not ten thousand. A tree taller than the terminal is shown as a
 * window: the nodes running now, then failed ones, then the most recently settled, with a line
 * counting the rest. Warnings, the resume plan and run lines are written above the view, where
 * they stay. `finish()` draws the last frame and leaves it on the screen.
 */
export interface LiveViewOptions {
  /** A terminal: its `columns` and `rows` size the frame. */
  stream: NodeJS.WriteStream;
  /** The DAG as known before the run (specGraph); a dynamic node's children are added as they appear. */
  graph: readonly RunGraphNode[];
  intervalMs?: number;
  now?: () => number;
}

type LiveState = 'pending' | 'looking-up' | 'waiting' | 'running' | 'writing' | 'settled';

interface LiveNode {
  id: string;
  parents: readonly string[];
  container: string | null;
  state: LiveState;
  status: string;
  key: string;
  attempt: number;
  startedAt: number | null;
  settled: SettledNode | null;
  settledAt: number;
}

const DEFAULT_INTERVAL_MS = 100;
/** The run's DAG is read again at most this often while dynamic nodes expand. */
const GRAPH_REFRESH_MS = 1000;
/** While nodes run, their elapsed time ticks at least this often even when no event comes. */
const TICK_MS = 1000;

export class LiveView {
  readonly sink: EventSink;
  private readonly nodes = new Map<string, LiveNode>();
  private readonly tracker = new NodeSettleTracker();
  private readonly update: ReturnType<typeof createLogUpdate>;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private runId: string | null = null;
  private workflow = '';
  private runLine: string | null = null;
  private startedAt: number;
  private settledSeq = 0;
  private dirty = true;
  private lastDraw = 0;
  private timer: NodeJS.Timeout | null = null;
  private finished = false;
  private clockStarted = false;
  private loadGraph: (() => Promise<readonly RunGraphNode[]>) | null = null;
  private graphLoad: 'idle' | 'loading' | 'again' = 'idle';
  private lastGraphLoad = 0;
  /** How many frames were written (tests check the throttle with it). */
  frames = 0;

  constructor(private readonly options: LiveViewOptions) {
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.startedAt = this.now();
    this.update = createLogUpdate(options.stream, { showCursor: false });
    for (const node of options.graph) this.nodes.set(node.id, newNode(node.id, node.parents, node.container));
    this.sink = (event) => {
      this.observe(event);
    };
  }

  /**
   * The run to show (events of other runs this process drives only print their warnings), and
   * where to read its DAG when a dynamic node expands, so its children are drawn with their
   * dependencies (read at most once per GRAPH_REFRESH_MS).
   */
  follow(runId: string, loadGraph?: () => Promise<readonly RunGraphNode[]>): void {
    this.runId = runId;
    if (loadGraph !== undefined) this.loadGraph = loadGraph;
  }

  /** Draws the last frame and leaves it on the screen; later events are ignored. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.draw();
    this.update.done();
  }

  /** The frame as it would be drawn now. */
  frame(): string[] {
    const width = Math.max(20, this.options.stream.columns > 0 ? this.options.stream.columns : 80);
    const rows = Math.max(4, this.options.stream.rows > 0 ? this.options.stream.rows : 24);
    const all = [...this.nodes.values()];
    const header = this.header(all);
    const budget = rows - 2;
    const now = this.now();
    if (all.length <= budget) return [fitText(header, width, 'end'), ...drawDagTree(all.map((node) => this.row(node, now)), { width })];
    const shown = windowOf(all, budget - 1);
    const ids = new Set(shown.map((node) => node.id));
    const rowsOf = shown.map((node) => ({ ...this.row(node, now), parents: node.parents.filter((id) => ids.has(id)), container: node.container !== null && ids.has(node.container) ? node.container : null }));
    const hidden = all.length - shown.length;
    return [fitText(header, width, 'end'), ...drawDagTree(rowsOf, { width }), fitText(`… ${hidden} more node(s) not shown (${countsOf(all.filter((node) => !ids.has(node.id)))})`, width, 'end')];
  }

  private observe(event: EngineEvent): void {
    if (this.finished) return;
    if (this.runId === null) this.runId = event.runId;
    // The clock starts with the run, not with opening the store.
    if (!this.clockStarted) {
      this.clockStarted = true;
      this.startedAt = this.now();
    }
    if (event.runId !== this.runId) {
      if (event.level !== 'info') this.persist(formatEvent(event));
      return;
    }
    this.workflow = event.workflow;
    if (event.nodeId === undefined) {
      if (event.type === 'run:succeeded' || event.type === 'run:failed' || event.type === 'run:cancelled') {
        for (const settled of this.tracker.endRun(event.runId)) this.settle(settled);
        this.runLine = formatEvent(event);
      } else {
        this.persist(formatEvent(event));
      }
      this.changed();
      return;
    }
    if (event.type === 'node:expanded') this.refreshGraph();
    const node = this.nodeFor(event.nodeId);
    if (event.cacheKey != null) node.key = event.cacheKey.slice(0, 10);
    node.status = statusLabel(event);
    node.attempt = event.attempt ?? node.attempt;
    if (node.state !== 'settled') node.state = stateOf(event.type, event.phase, node.state);
    if (node.startedAt === null && (node.state === 'running' || node.state === 'looking-up' || node.state === 'waiting')) node.startedAt = this.now();
    const settled = this.tracker.observe(event);
    if (settled !== undefined) this.settle(settled);
    else if (event.level !== 'info' && node.state !== 'settled') this.persist(formatEvent(event));
    this.changed();
  }

  /** Reads the run's DAG (one read at a time, spaced out) and takes the children's dependencies from it. */
  private refreshGraph(): void {
    const load = this.loadGraph;
    if (load === null || this.finished) return;
    if (this.graphLoad !== 'idle') {
      this.graphLoad = 'again';
      return;
    }
    this.graphLoad = 'loading';
    const wait = Math.max(0, this.lastGraphLoad + GRAPH_REFRESH_MS - this.now());
    setTimeout(() => {
      this.lastGraphLoad = this.now();
      load()
        .then((graph) => {
          for (const known of graph) {
            const node = this.nodeFor(known.id);
            node.parents = known.parents;
            node.container = known.container;
          }
          this.changed();
        })
        // The picture only loses the children's edges; the run itself is not affected.
        .catch(() => undefined)
        .finally(() => {
          const again = this.graphLoad === 'again';
          this.graphLoad = 'idle';
          if (again) this.refreshGraph();
        });
    }, wait).unref();
  }

  private settle(settled: SettledNode): void {
    const node = this.nodeFor(settled.nodeId);
    node.state = 'settled';
    node.settled = settled;
    node.settledAt = ++this.settledSeq;
  }

  /** A node the spec did not know: a dynamic node's child, under the deepest known container. */
  private nodeFor(id: string): LiveNode {
    const known = this.nodes.get(id);
    if (known !== undefined) return known;
    let container: string | null = null;
    for (let cut = id.lastIndexOf('.'); cut > 0; cut = id.lastIndexOf('.', cut - 1)) {
      if (this.nodes.has(id.slice(0, cut))) {
        container = id.slice(0, cut);
        break;
      }
    }
    const node = newNode(id, [], container);
    this.nodes.set(id, node);
    return node;
  }

  private header(all: readonly LiveNode[]): string {
    const elapsed = formatDuration(this.now() - this.startedAt);
    const settled = all.filter((node) => node.state === 'settled').length;
    return `run ${this.runId ?? '(starting)'} ${this.workflow}  ${settled} of ${all.length} settled · ${countsOf(all.filter((node) => node.state !== 'settled'))}  ${elapsed}`;
  }

  private row(node: LiveNode, now: number): DagTreeNode {
    const settled = node.settled;
    if (settled !== null) {
      return { id: node.id, parents: node.parents, container: node.container, columns: [settled.status, settled.key, settled.durationMs === null ? '' : formatDuration(settled.durationMs), settled.outcome] };
    }
    const elapsed = node.startedAt === null ? '' : formatDuration(now - node.startedAt);
    const status = node.state === 'pending' ? 'pending' : node.state === 'running' ? 'running' : node.state === 'writing' ? 'writing' : node.status;
    const note = node.attempt > 1 ? `attempt ${node.attempt}` : node.state === 'waiting' ? 'waiting for a reservation' : '';
    return { id: node.id, parents: node.parents, container: node.container, columns: [status, node.key, elapsed, note] };
  }

  private persist(line: string): void {
    this.update.persist(line);
    this.dirty = true;
  }

  /** Marks the frame stale; the timer draws it at most once per interval. */
  private changed(): void {
    if (this.finished) return;
    this.dirty = true;
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      this.tick();
    }, this.intervalMs);
    this.timer.unref();
    // The first frame comes at once: a short run would otherwise show nothing until its end.
    if (this.lastDraw === 0) this.draw();
  }

  private tick(): void {
    const running = [...this.nodes.values()].some((node) => node.startedAt !== null && node.state !== 'settled');
    if (this.dirty || (running && this.now() - this.lastDraw >= TICK_MS)) this.draw();
  }

  private draw(): void {
    const lines = this.frame();
    if (this.runLine !== null) lines.push(this.runLine);
    this.update(lines.join('\n'));
    this.frames++;
    this.dirty = false;
    this.lastDraw = this.now();
  }
}

function newNode(id: string, parents: readonly string[], container: string | null): LiveNode {
  return { id, parents, container, state: 'pending', status: '-', key: '-', attempt: 0, startedAt: null, settled: null, settledAt: 0 };
}

function stateOf(type: EngineEvent['type'], phase: NodePhase | undefined, before: LiveState): LiveState {
  if (type === 'node:waiting') return 'waiting';
  switch (phase) {
    case 'pending':
      return 'pending';
    case 'looking-up':
      return 'looking-up';
    case 'dispatched':
    case 'expanded':
      return 'running';
    case 'writing':
      return 'writing';
    case 'succeeded':
    case 'failed':
    case 'aborted':
    case 'cancelled':
    case undefined:
      return before;
  }
}

/**
 * The nodes a tall tree shows: running ones first, then failed ones, then the most recently
 * settled, then the next pending ones, in their DAG order, at most `budget`.
 */
function windowOf(all: readonly LiveNode[], budget: number): LiveNode[] {
  const open = all.filter((node) => node.state !== 'settled' && node.state !== 'pending');
  const failed = all.filter((node) => node.settled !== null && node.settled.phase !== 'succeeded');
  const recent = all.filter((node) => node.settled?.phase === 'succeeded').sort((a, b) => b.settledAt - a.settledAt);
  const next = all.filter((node) => node.state === 'pending');
  const chosen = new Set<LiveNode>();
  for (const node of [...open, ...failed, ...recent, ...next]) {
    if (chosen.size >= Math.max(1, budget)) break;
    chosen.add(node);
  }
  return all.filter((node) => chosen.has(node));
}

/** The order of the counts: what needs attention first. */
const COUNT_ORDER = ['running', 'looking-up', 'waiting', 'writing', 'failed', 'aborted', 'cancelled', 'pending', 'settled'];

/** `3 running · 1 failed · 4 pending`, the parts that are not zero. */
function countsOf(nodes: readonly LiveNode[]): string {
  const counts = new Map<string, number>();
  for (const node of nodes) {
    const label = node.settled !== null ? (node.settled.phase === 'succeeded' ? 'settled' : node.settled.phase) : node.state;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  const parts = COUNT_ORDER.filter((label) => counts.has(label)).map((label) => `${counts.get(label) ?? 0} ${label}`);
  return parts.length === 0 ? 'none left' : parts.join(' · ');
}
