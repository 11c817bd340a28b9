import { readFileSync } from 'node:fs';
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { MemoflowError, type RunStatus } from '@memoflow/engine';
import { nodeState, structureOf, visibleGraph, type NodeState } from './graph.js';
import { layOut } from './layout.js';
import { nodeDetail } from './node-detail.js';
import { previewJson } from './preview.js';
import { LEGEND } from './status-palette.js';
import type { UiSource } from './source.js';

export interface UiRoutesOptions {
  /**
   * Host names the page answers to (the `Host` header, without its port). Anything else is refused,
   * so a web page elsewhere cannot rebind its DNS name to 127.0.0.1 and read runs through the
   * user's browser. `any`: no check (the server listens on every address, as the user asked).
   */
  allowedHosts: ReadonlySet<string> | 'any';
  /** How often a live stream re-reads a running run (default 400 ms). */
  liveIntervalMs?: number;
  /**
   * Aborted when the server stops: each live stream reads its run once more, sends what changed
   * and ends, so a page watching `memoflow run --ui` sees the run's final state.
   */
  closing?: AbortSignal;
}

/** The page's files, read once; served by name from this table only (no path reaches the disk). */
const SCRIPT = 'text/javascript; charset=utf-8';
const ASSETS: { readonly [name: string]: { file: string; type: string } } = {
  'app.js': { file: 'app.js', type: SCRIPT },
  'dom.js': { file: 'dom.js', type: SCRIPT },
  'graph.js': { file: 'graph.js', type: SCRIPT },
  'legend.js': { file: 'legend.js', type: SCRIPT },
  'panel.js': { file: 'panel.js', type: SCRIPT },
  'style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
const assetsDir = new URL('./assets/', import.meta.url);
const readAsset = (file: string): string => readFileSync(new URL(file, assetsDir), 'utf8');

/**
 * The page sets every user-supplied string as text (never as markup) and this policy refuses inline
 * scripts and styles, so even a value that got into markup by mistake would not run.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const LIST_LIMIT = 200;
const RUN_STATUSES: readonly RunStatus[] = ['running', 'succeeded', 'failed', 'cancelled'];

/**
 * The read-only web UI: GET routes only (any other method is 405 before routing), each reading
 * through `source`, which has no way to write.
 */
export function uiRoutes(source: UiSource, options: UiRoutesOptions): Hono {
  const liveIntervalMs = options.liveIntervalMs ?? 400;
  const page = readAsset('index.html');
  const assets = new Map(Object.entries(ASSETS).map(([name, asset]) => [name, { body: readAsset(asset.file), type: asset.type }]));
  const app = new Hono();

  app.use(async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      return c.json({ error: 'this server is read-only: it answers GET and HEAD only' }, 405, { Allow: 'GET, HEAD' });
    }
    // The request's URL is built from its Host header (@hono/node-server), so this is that name.
    if (options.allowedHosts !== 'any' && !options.allowedHosts.has(new URL(c.req.url).hostname.toLowerCase())) {
      return c.json({ error: 'unknown Host: start memoflow ui with --host <name> to serve this name' }, 403);
    }
    await next();
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cache-Control', 'no-store');
    return undefined;
  });

  app.get('/', (c) => c.html(page));
  app.get('/assets/:name', (c) => {
    const asset = assets.get(c.req.param('name'));
    if (asset === undefined) return c.json({ error: 'no such file' }, 404);
    return c.body(asset.body, 200, { 'Content-Type': asset.type });
  });
  app.get('/api/legend', (c) => c.json(LEGEND));

  app.get('/api/runs', async (c) => {
    const limit = boundedInteger(c.req.query('limit'), 50, LIST_LIMIT);
    const workflow = c.req.query('workflow');
    const status = c.req.query('status');
    const runs = await source.listRuns({
      limit,
      ...(workflow === undefined || workflow === '' ? {} : { workflow }),
      ...(status !== undefined && (RUN_STATUSES as readonly string[]).includes(status) ? { status: status as RunStatus } : {}),
    });
    return c.json(runs.map((run) => ({ id: run.id, workflow: run.workflow, project: run.project, domain: run.domain, status: run.status, error: run.error, createdAt: run.createdAt, finishedAt: run.finishedAt })));
  });

  app.get('/api/runs/:run', async (c) => {
    const state = await source.loadRun(c.req.param('run'));
    if (state === undefined) return notFound(c, `run '${c.req.param('run')}' does not exist`);
    const graph = visibleGraph(state, new Set(c.req.queries('toggle') ?? []));
    const { run } = state;
    return c.json({
      run: {
        id: run.id, workflow: run.workflow, project: run.project, domain: run.domain, status: run.status, error: run.error,
        createdAt: run.createdAt, finishedAt: run.finishedAt, resumedFrom: run.options.resumeFrom ?? null, retryOf: run.options.retryOf ?? null,
        inputs: Object.fromEntries(Object.entries(run.inputs).map(([name, value]) => [name, previewJson(value.value)])),
        outputs: run.outputs === null ? null : previewJson(run.outputs),
      },
      structure: structureOf(state),
      toggled: graph.toggled,
      layout: await layOut(graph),
    });
  });

  app.get('/api/runs/:run/nodes/:node', async (c) => {
    const state = await source.loadRun(c.req.param('run'));
    if (state === undefined) return notFound(c, `run '${c.req.param('run')}' does not exist`);
    const detail = nodeDetail(state, c.req.param('node'));
    if (detail === undefined) return notFound(c, `run ${state.run.id} has no node '${c.req.param('node')}'`);
    return c.json(detail);
  });

  app.get('/api/runs/:run/nodes/:node/explain', async (c) => {
    try {
      return c.json(await source.explain(c.req.param('run'), c.req.param('node')));
    } catch (error) {
      if (error instanceof MemoflowError && (error.code === 'RUN_NOT_FOUND' || error.code === 'NODE_NOT_FOUND')) return notFound(c, error.message);
      throw error;
    }
  });

  app.get('/api/cache', async (c) => {
    const task = c.req.query('task');
    const entries = await source.listCache({ limit: boundedInteger(c.req.query('limit'), 50, LIST_LIMIT), ...(task === undefined || task === '' ? {} : { task }) });
    return c.json(entries);
  });

  // Live: the run's node states as they change, until it is over. Each stream polls on its own:
  // one read of the run per interval per open page, and nothing at all for finished runs.
  app.get('/api/runs/:run/events', (c) => {
    const runId = c.req.param('run');
    return streamSSE(c, async (stream) => {
      const sent = new Map<string, string>();
      let structure: string | undefined;
      let status: RunStatus | undefined;
      while (!stream.aborted && !stream.closed) {
        let state;
        try {
          state = await source.loadRun(runId);
        } catch (error) {
          await stream.writeSSE({ event: 'problem', data: JSON.stringify({ message: `reading the run failed: ${error instanceof Error ? error.message : String(error)}` }) });
          await stream.sleep(liveIntervalMs * 5);
          continue;
        }
        if (state === undefined) {
          await stream.writeSSE({ event: 'missing', data: JSON.stringify({ runId }) });
          return;
        }
        const changed: NodeState[] = [];
        for (const node of Object.values(state.nodes)) {
          const current = nodeState(node);
          const encoded = JSON.stringify(current);
          if (sent.get(node.nodeId) !== encoded) changed.push(current);
          sent.set(node.nodeId, encoded);
        }
        if (changed.length > 0) await stream.writeSSE({ event: 'nodes', data: JSON.stringify(changed) });
        const now = structureOf(state);
        if (structure !== undefined && now !== structure) await stream.writeSSE({ event: 'structure', data: JSON.stringify({ structure: now }) });
        structure = now;
        if (state.run.status !== status) {
          status = state.run.status;
          await stream.writeSSE({ event: 'run', data: JSON.stringify({ status, error: state.run.error, finishedAt: state.run.finishedAt }) });
        }
        if (status !== 'running') {
          await stream.writeSSE({ event: 'end', data: '{}' });
          return;
        }
        if (options.closing?.aborted === true) {
          await stream.writeSSE({ event: 'end', data: JSON.stringify({ serverClosing: true }) });
          return;
        }
        await pause(liveIntervalMs, options.closing);
      }
    });
  });

  app.notFound((c) => c.json({ error: 'no such page' }, 404));
  app.onError((error, c) => c.json({ error: error instanceof Error ? error.message : String(error) }, 500));
  return app;
}

/** Waits `ms`, or less if `signal` aborts first. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function notFound(c: Context, message: string): Response {
  return c.json({ error: message }, 404);
}

function boundedInteger(text: string | undefined, fallback: number, max: number): number {
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? Math.min(value, max) : fallback;
}
