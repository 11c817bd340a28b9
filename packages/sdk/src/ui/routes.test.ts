import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InMemoryCacheCatalog, InMemoryRunStore, newRunState, type NodeExecution, type RunState } from '@memoflow/engine';
import { task } from '../define/task.js';
import { workflow } from '../define/workflow.js';
import { z } from 'zod';
import { explainRunNode } from '../client/explain.js';
import { uiRoutes } from './routes.js';
import type { UiSource } from './source.js';
import { fillOf } from './status-palette.js';
import type { Layout } from './layout.js';

const first = task({ name: 'routes.first', inputs: { n: z.number() }, output: z.array(z.number()), cache: { version: '1' } }, async ({ n }) => [n]);
const second = task({ name: 'routes.second', inputs: { xs: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ xs }) => xs.length);
const flow = workflow({ name: 'routes.flow', inputs: { n: z.number() } }, ({ n }) => ({ out: second({ xs: first({ n }) }) }));

/** A run as a store could hold it (written by this release or by hand), with the node ids given. */
function runWithIds(firstId: string, secondId: string, output: unknown = [1]): RunState {
  const state = newRunState({ id: 'r-test', spec: flow.spec, inputs: { n: { value: 1 } }, project: 'p', domain: 'd', options: { overwriteCache: false }, now: new Date(0) });
  const rename = (from: string, to: string) => {
    const node = state.nodes[from] as NodeExecution;
    delete state.nodes[from];
    state.nodes[to] = { ...node, nodeId: to };
    state.run.spec = {
      ...state.run.spec,
      nodes: state.run.spec.nodes.map((spec) => ({
        ...spec,
        id: spec.id === from ? to : spec.id,
        inputs: Object.fromEntries(Object.entries(spec.inputs).map(([name, binding]) => [name, binding.kind === 'output' && binding.node === from ? { ...binding, node: to } : binding])),
      })),
    };
  };
  const [a, b] = state.run.spec.nodes.map((node) => node.id) as [string, string];
  rename(a, firstId);
  rename(b, secondId);
  Object.assign(state.nodes[firstId] as NodeExecution, { phase: 'succeeded', cacheStatus: 'HIT', inputs: { n: { value: 1 } }, output: { value: output } });
  Object.assign(state.nodes[secondId] as NodeExecution, { phase: 'dispatched', cacheStatus: 'SKIPPED', cacheReason: 'upstream-reran', attempts: 1, startedAt: new Date(1) });
  return state;
}

async function appOver(state: RunState, closing?: AbortSignal) {
  const runStore = new InMemoryRunStore();
  await runStore.create(state);
  const catalog = new InMemoryCacheCatalog();
  const source: UiSource = {
    listRuns: (filter) => runStore.list(filter),
    loadRun: (id) => runStore.load(id),
    listCache: (filter) => catalog.list(filter),
    explain: (runId, nodeId) => explainRunNode({ catalog, runStore }, runId, nodeId),
  };
  const app = uiRoutes(source, { allowedHosts: new Set(['127.0.0.1', 'localhost']), liveIntervalMs: 20, ...(closing === undefined ? {} : { closing }) });
  const get = (path: string, init: RequestInit = {}) => app.request(`http://127.0.0.1:4545${path}`, init);
  return { app, get, runStore };
}

describe('web UI routes', () => {
  it('refuse every method but GET and HEAD, on every path (the server is read-only)', async () => {
    const { get } = await appOver(runWithIds('a', 'b'));
    for (const path of ['/', '/api/runs', '/api/runs/r-test', '/api/runs/r-test/events', '/api/runs/r-test/nodes/a', '/api/runs/r-test/nodes/a/explain', '/api/cache', '/nowhere']) {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
        const response = await get(path, { method });
        expect(response.status, `${method} ${path}`).toBe(405);
        expect(response.headers.get('allow')).toBe('GET, HEAD');
      }
    }
    expect((await get('/api/runs')).status).toBe(200);
    const head = await get('/api/runs', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('refuse a Host header it does not serve (DNS rebinding) and send a CSP that forbids inline scripts', async () => {
    const { app, get } = await appOver(runWithIds('a', 'b'));
    expect((await app.request('http://evil.example:4545/api/runs')).status).toBe(403);
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(await page.text()).toContain('/assets/app.js');
    expect((await get('/assets/app.js')).headers.get('content-type')).toContain('javascript');
    expect((await get('/assets/..%2Froutes.ts')).status).toBe(404);
    expect((await app.request('http://LOCALHOST:4545/api/runs')).status).toBe(200);
  });

  it('name unknown runs and nodes in a 404', async () => {
    const { get } = await appOver(runWithIds('a', 'b'));
    const run = await get('/api/runs/nope');
    expect(run.status).toBe(404);
    expect(await run.json()).toEqual({ error: "run 'nope' does not exist" });
    const node = await get('/api/runs/r-test/nodes/nope');
    expect(node.status).toBe(404);
    expect(((await node.json()) as { error: string }).error).toContain("no node 'nope'");
    const explain = await get('/api/runs/r-test/nodes/nope/explain');
    expect(explain.status).toBe(404);
    expect(((await explain.json()) as { error: string }).error).toContain('nope');
    expect((await get('/api/runs/nope/nodes/a/explain')).status).toBe(404);
    const hit = (await (await get('/api/runs/r-test/nodes/a/explain')).json()) as { node: string; status: string; reason: string };
    expect([hit.node, hit.status]).toEqual(['a', 'HIT']);
    expect(hit.reason).not.toBe('');
  });

  it('find nodes whatever characters their ids hold (a store written by hand or by another release)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 12 }), async (odd) => {
        const ids = [`x${odd}`, `<script>${odd}`] as const;
        const { get } = await appOver(runWithIds(ids[0], ids[1]));
        const view = (await (await get('/api/runs/r-test')).json()) as { layout: Layout };
        expect(view.layout.nodes.map((node) => node.id)).toEqual(ids);
        expect(view.layout.edges).toEqual([expect.objectContaining({ from: ids[0], to: ids[1] })]);
        for (const id of ids) {
          const response = await get(`/api/runs/r-test/nodes/${encodeURIComponent(id)}`);
          expect(response.status, id).toBe(200);
          expect(((await response.json()) as { id: string }).id).toBe(id);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('colour nodes by cache status and lay them out left to right', async () => {
    const { get } = await appOver(runWithIds('a', 'b'));
    const view = (await (await get('/api/runs/r-test')).json()) as { layout: Layout };
    const [a, b] = view.layout.nodes as [Layout['nodes'][number], Layout['nodes'][number]];
    expect([a.shade, a.fill, b.shade, b.fill, b.active]).toEqual(['HIT', fillOf('HIT'), 'SKIPPED', fillOf('SKIPPED'), true]);
    expect(a.x + a.width).toBeLessThanOrEqual(b.x);
  });

  it('send a preview of a huge output, not the output', async () => {
    const huge = Array.from({ length: 300_000 }, (_, i) => `value number ${i}`);
    const { get } = await appOver(runWithIds('a', 'b', huge));
    const response = await get('/api/runs/r-test/nodes/a');
    const text = await response.text();
    expect(text.length).toBeLessThan(10_000);
    const detail = JSON.parse(text) as { output: { preview: { text: string; truncated: boolean } } };
    expect(detail.output.preview.truncated).toBe(true);
    expect(detail.output.preview.text.startsWith('[\n  "value number 0",')).toBe(true);
  });

  it('stream node changes of a running run, then end when it is over', async () => {
    const state = runWithIds('a', 'b');
    const { get, runStore } = await appOver(state);
    const response = await get('/api/runs/r-test/events');
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(seen)) {
        const chunk = await reader.read();
        if (chunk.done) break;
        seen += chunk.value;
      }
      return seen;
    };
    await readUntil(/event: run\ndata: \{"status":"running"/);
    expect(seen).toMatch(/event: nodes\ndata: \[.*"id":"b".*"shade":"SKIPPED"/);
    const loaded = (await runStore.load('r-test')) as RunState;
    const b = { ...(loaded.nodes['b'] as NodeExecution), phase: 'succeeded' as const, finishedAt: new Date(5) };
    expect(await runStore.save({ run: { ...loaded.run, status: 'succeeded', finishedAt: new Date(6) }, nodes: [{ node: b }], expectedVersion: loaded.run.version })).toBe(true);
    await readUntil(/event: end/);
    expect(seen).toMatch(/event: nodes\ndata: \[\{"id":"b","phase":"succeeded"/);
    expect(seen).toMatch(/event: run\ndata: \{"status":"succeeded"/);
    expect((await reader.read()).done).toBe(true);
  });

  it('tell a live page when its run does not exist, and end the stream', async () => {
    const { get } = await appOver(runWithIds('a', 'b'));
    const text = await (await get('/api/runs/nope/events')).text();
    expect(text).toBe('event: missing\ndata: {"runId":"nope"}\n\n');
  });

  it('end live streams when the server stops, after one last read of the run', async () => {
    const closing = new AbortController();
    const state = runWithIds('a', 'b');
    const { get, runStore } = await appOver(state, closing.signal);
    const response = await get('/api/runs/r-test/events');
    const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    while (!seen.includes('event: run')) seen += (await reader.read()).value ?? '';
    const loaded = (await runStore.load('r-test')) as RunState;
    const b = { ...(loaded.nodes['b'] as NodeExecution), phase: 'failed' as const };
    expect(await runStore.save({ run: loaded.run, nodes: [{ node: b }], expectedVersion: loaded.run.version })).toBe(true);
    closing.abort();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) seen += chunk.value;
    expect(seen).toMatch(/event: nodes\ndata: \[\{"id":"b","phase":"failed".*\n\nevent: end\ndata: \{"serverClosing":true\}/s);
  });
});
