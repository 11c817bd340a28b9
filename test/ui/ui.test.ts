/**
 * The web UI in a real headless Chromium: the run list, the DAG coloured by cache status, the
 * node panel, containers, live updates of a running run, escaping of hostile strings, and that
 * nothing but GET is served. Screenshots land in test/ui/screenshots/.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryRunStore, InMemoryCacheCatalog, newRunState, type CacheListFilter, type NodeExecution, type RunListFilter, type RunState } from '@memoflow/engine';
import { serveUi, type NodeReport, type UiServer } from '@memoflow/sdk';
import { startUiServer } from '../../packages/sdk/src/ui/server.js';
import { explainRunNode } from '../../packages/sdk/src/client/explain.js';
import { fillOf, LEGEND, shadeOf } from '../../packages/sdk/src/ui/status-palette.js';
import { useEmbedded } from '../support/modes.js';
import { hostile, latched, MARKUP, pipeline } from '../fixtures/ui-flows.js';
import { drawnNodes, launchBrowser, nodeSelector, rgb, screenshot, type Browser } from './browser.js';

describe('web UI in a browser (embedded: the page served by the process that runs the workflows)', { timeout: 90_000 }, () => {
  const embedded = useEmbedded();
  let browser: Browser;
  let ui: UiServer;
  let scratch: string;

  beforeAll(async () => {
    browser = await launchBrowser();
    ui = await serveUi(embedded.mf, { port: 0, liveIntervalMs: 100 });
    scratch = await mkdtemp(join(tmpdir(), 'memoflow-ui-'));
  });
  afterAll(async () => {
    await ui?.close();
    await browser?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('lists a run; its nodes have the colours of their cache statuses (HIT, POPULATED, SKIPPED) and the legend names them', async () => {
    await (await embedded.mf.run(pipeline, { n: 3, salt: 'first' })).result();
    // Same n, new salt: `load` and what reads only it hit; `label` executes; `combine` cascades.
    const run = await embedded.mf.run(pipeline, { n: 3, salt: 'second' });
    await run.result();
    const nodes = await run.nodes();
    const byId = new Map(nodes.map((node) => [node.id, node]));
    expect([byId.get('load')?.cacheStatus, byId.get('label')?.cacheStatus, byId.get('combine')?.cacheStatus]).toEqual(['HIT', 'POPULATED', 'SKIPPED']);

    const { page } = browser;
    await page.goto(ui.url);
    await page.locator(`#runs tr[data-run="${run.id}"] a`).click();
    await page.waitForSelector(nodeSelector('combine'));
    const drawn = await drawnNodes(page);
    // Every drawn node shows its stored status; the three statuses are three colours.
    for (const node of drawn) {
      const stored = byId.get(node.id);
      expect(stored, node.id).toBeDefined();
      const shade = shadeOf(stored?.status ?? 'pending', stored?.cacheStatus ?? null);
      expect([node.id, node.shade, node.fill]).toEqual([node.id, shade, rgb(fillOf(shade))]);
    }
    const fill = (id: string) => drawn.find((node) => node.id === id)?.fill;
    expect([fill('load'), fill('label'), fill('combine')]).toEqual([rgb(fillOf('HIT')), rgb(fillOf('POPULATED')), rgb(fillOf('SKIPPED'))]);
    expect(new Set([fill('load'), fill('label'), fill('combine')]).size).toBe(3);
    expect(drawn.map((node) => node.id).sort()).toEqual(nodes.filter((node) => node.parent === null || byId.get(node.parent)?.parent === null).map((node) => node.id).sort());
    const legend = await page.$$eval('#legend li', (items) => items.map((item) => item.textContent));
    expect(legend).toEqual(LEGEND.map((entry) => entry.label));
    await screenshot(page, 'run-dag');
  });

  it("opens a node's panel: status, explain, key parts, attempts and previews of inputs and output", async () => {
    const run = await embedded.mf.run(pipeline, { n: 4, salt: 'panel' });
    await run.result();
    const label = (await run.nodes()).find((node) => node.id === 'label');
    const { page } = browser;
    await page.goto(`${ui.url}#/runs/${run.id}`);
    await page.waitForSelector(`#graph[data-run="${run.id}"]`);
    await page.locator(nodeSelector('label')).click();
    const panel = page.locator('#panel[data-node="label"]');
    await panel.waitFor();
    expect(await panel.locator('h2').textContent()).toBe('label');
    expect(await panel.locator('[data-part="key"] .key').textContent()).toBe(label?.cacheKey);
    const parts = await panel.locator('[data-part="key"] table.kv').first().textContent();
    expect(parts).toContain('versionversion'.slice(0, 7));
    expect(parts).toContain('input salt');
    expect(await panel.locator('[data-part="attempts"]').textContent()).toContain('attempts1');
    expect(await panel.locator('[data-input="salt"] pre').textContent()).toBe('"panel"');
    expect(await panel.locator('[data-part="output"] pre').textContent()).toBe('"label-panel"');
    // Explain: the reason mf.explain gives, and the input that differs from the nearest entry.
    const explained = await embedded.mf.explain(run.id, 'label');
    expect(explained.differences).toEqual(expect.arrayContaining([expect.objectContaining({ part: 'input', name: 'salt', now: 'panel' })]));
    expect(await panel.locator('[data-part="explain"] .reason').textContent()).toBe(explained.reason);
    const rows = await panel.locator('[data-part="explain"] table.differences tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)));
    expect(rows).toContainEqual(['input', 'salt', expect.stringMatching(/^"(first|second)"$/), '"panel"']);
    // A cascaded node's explain names the upstream node that reran, linked.
    await page.locator(nodeSelector('combine')).click();
    await page.locator('#panel[data-node="combine"]').waitFor();
    const upstream = (await embedded.mf.explain(run.id, 'combine')).upstream?.node as string;
    expect(['load', 'label']).toContain(upstream);
    expect(await page.locator('#panel [data-part="explain"] .upstream li a').first().textContent()).toBe(upstream);
    await screenshot(page, 'explain-cascade');
    await page.locator('#panel [data-part="explain"] .upstream li a').first().click();
    await page.locator(`#panel[data-node="${upstream}"]`).waitFor();
    await page.locator('#panel a[href^="#/cache/"]').click();
    await page.waitForSelector('#cache tbody tr');
    const writers = await page.$$eval('#cache tbody tr td:nth-child(5)', (cells) => cells.map((cell) => cell.textContent));
    expect(writers).toContain(`${run.id} ${upstream}`);
    await screenshot(page, 'cache-entries');
    await page.goto(`${ui.url}#/runs/${run.id}/nodes/label`);
    await panel.waitFor();
    await screenshot(page, 'node-panel');
  });

  it('opens and closes containers: a dynamic fan-out and a sub-workflow, children drawn inside them', async () => {
    const run = await embedded.mf.run(pipeline, { n: 5, salt: 'containers' });
    await run.result();
    const children = (await run.nodes()).filter((node) => node.parent === 'fan').map((node) => node.id);
    expect(children).toHaveLength(5);
    const { page } = browser;
    await page.goto(`${ui.url}#/runs/${run.id}`);
    await page.waitForSelector(`#graph[data-run="${run.id}"]`);
    await page.waitForSelector(nodeSelector('fan.square'));
    const ids = async () => (await drawnNodes(page)).map((node) => node.id);
    expect(await ids()).toEqual(expect.arrayContaining([...children, 'report', 'report.format']));
    // A child is drawn inside its container's box.
    const box = async (id: string) => (await page.locator(`${nodeSelector(id)} rect.box`).boundingBox()) as { x: number; y: number; width: number; height: number };
    const [fan, child] = [await box('fan'), await box('fan.square')];
    expect(child.x).toBeGreaterThan(fan.x);
    expect(child.x + child.width).toBeLessThan(fan.x + fan.width);
    await page.locator(`${nodeSelector('fan')} text.toggle`).click();
    await page.waitForSelector(nodeSelector('fan.square'), { state: 'detached' });
    expect((await ids()).filter((id) => id.startsWith('fan.'))).toEqual([]);
    expect(await page.locator(`${nodeSelector('fan')} text.toggle`).textContent()).toBe('▸5');
    await page.locator(`${nodeSelector('fan')} text.toggle`).click();
    await page.waitForSelector(nodeSelector('fan.square-5'));
  });

  it('follows a running run: a node waiting on a latch changes colour when it finishes, without a reload', async () => {
    const latch = join(scratch, 'latch-live');
    const run = await embedded.mf.run(latched, { latch, salt: 'live' });
    const { page } = browser;
    await page.goto(`${ui.url}#/runs/${run.id}`);
    await page.waitForSelector(`#graph[data-run="${run.id}"]`);
    await page.waitForSelector(`${nodeSelector('gate')}[data-shade="MISS"]`);
    expect(await page.locator(nodeSelector('gate')).getAttribute('class')).toContain('active');
    expect(await page.locator('#run-status').textContent()).toBe('running');
    await screenshot(page, 'live-running');
    await page.evaluate(() => ((window as unknown as { stillTheSamePage: boolean }).stillTheSamePage = true));
    writeFileSync(latch, 'open');
    await page.waitForSelector(`${nodeSelector('after')}[data-shade="SKIPPED"]`, { timeout: 15_000 });
    await page.waitForSelector('#run-status.succeeded');
    const drawn = await drawnNodes(page);
    expect(drawn.find((node) => node.id === 'gate')?.fill).toBe(rgb(fillOf('POPULATED')));
    expect(drawn.find((node) => node.id === 'after')?.fill).toBe(rgb(fillOf('SKIPPED')));
    expect(await page.evaluate(() => (window as unknown as { stillTheSamePage?: boolean }).stillTheSamePage)).toBe(true);
    await run.result();
    await screenshot(page, 'live-finished');
  });

  it('shows markup in values, error messages, node ids and task names as text: nothing of it runs', async () => {
    const run = await embedded.mf.run(hostile, { text: MARKUP });
    await expect(run.result()).rejects.toThrow(/refused/);
    const { page } = browser;
    await page.goto(`${ui.url}#/runs/${run.id}`);
    await page.waitForSelector(`#graph[data-run="${run.id}"]`);
    await page.waitForSelector(nodeSelector('refuse'));
    expect(await page.locator('#run-error').textContent()).toContain(MARKUP);
    await page.locator(nodeSelector('markup')).click();
    await page.locator('#panel[data-node="markup"]').waitFor();
    expect(await page.locator('#panel [data-input="text"] pre').textContent()).toBe(JSON.stringify(MARKUP));
    await page.locator(nodeSelector('refuse')).click();
    await page.locator('#panel[data-node="refuse"]').waitFor();
    expect(await page.locator('#panel .error-message').textContent()).toContain(MARKUP);
    await assertNothingRan(browser);

    // Node ids and task names can hold no markup (letters, digits, '_', '-', '.'), but a store
    // written by hand or by another release might: the same run renamed, in a store of its own.
    const hostileIds = renameNodes(asStored(run.id, await run.nodes()), (id) => `${id}<script>window.__xss = 3</script><img src=x onerror="window.__xss = 4">`);
    const store = new InMemoryRunStore();
    await store.create(hostileIds);
    const catalog = new InMemoryCacheCatalog();
    const source = { listRuns: (f: RunListFilter) => store.list(f), loadRun: (id: string) => store.load(id), listCache: (f: CacheListFilter) => catalog.list(f), explain: (id: string, node: string) => explainRunNode({ catalog, runStore: store }, id, node) };
    const other = await startUiServer({ source, port: 0 });
    try {
      await page.goto(`${other.url}#/runs/${run.id}`);
      await page.waitForSelector(`#graph[data-run="${run.id}"] g.node`);
      const ids = (await drawnNodes(page)).map((node) => node.id);
      expect(ids).toEqual(Object.keys(hostileIds.nodes));
      await page.locator('#graph g.node').first().click();
      await page.locator('#panel h2').waitFor();
      expect(await page.locator('#panel h2').textContent()).toBe(ids[0]);
      expect(await page.locator('#panel .task').textContent()).toBe(`${hostileIds.nodes[ids[0] as string]?.task} (task)`);
      expect(await page.locator('#graph g.node text.sub').first().textContent()).toContain('<i>');
      expect(await page.locator('#panel [data-part="explain"] .reason').textContent()).toContain("task '<i>ui.markup</i>'");
      await screenshot(page, 'hostile-ids');
      await assertNothingRan(browser);
    } finally {
      await other.close();
    }
  });

  it('answers GET only: every other method is refused over HTTP too', async () => {
    const [run] = await embedded.mf.runs.list({ limit: 1 });
    for (const path of ['/api/runs', `/api/runs/${run?.id}`, `/api/runs/${run?.id}/events`, `/api/runs/${run?.id}/nodes/load`]) {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        const response = await fetch(new URL(path, ui.url), { method });
        expect(response.status, `${method} ${path}`).toBe(405);
      }
    }
  });
});

async function assertNothingRan(browser: Browser): Promise<void> {
  const { page } = browser;
  expect(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss)).toBeUndefined();
  expect(await page.locator('img, script:not([src])').count()).toBe(0);
}

/** The hostile run as a store holds it, rebuilt from its node reports. */
function asStored(runId: string, reports: readonly NodeReport[]): RunState {
  const state = newRunState({ id: runId, spec: hostile.spec, inputs: { text: { value: MARKUP } }, project: 'default', domain: 'development', options: { overwriteCache: false }, now: new Date() });
  for (const report of reports) {
    Object.assign(state.nodes[report.id] as NodeExecution, {
      phase: report.status, cacheStatus: report.cacheStatus, cacheReason: report.cacheReason, cacheKey: report.cacheKey, attempts: report.attempts,
      output: report.output === null ? null : { value: report.output }, error: report.error, startedAt: report.startedAt, finishedAt: report.finishedAt,
    });
  }
  state.run.status = 'failed';
  return state;
}

function renameNodes(state: RunState, rename: (id: string) => string): RunState {
  const spec = state.run.spec;
  const renameBinding = (binding: unknown): unknown => JSON.parse(JSON.stringify(binding), (key, value: unknown) => (key === 'node' && typeof value === 'string' ? rename(value) : value));
  return {
    run: { ...state.run, spec: { ...spec, nodes: spec.nodes.map((node) => ({ ...node, id: rename(node.id), task: `<i>${node.task}</i>`, inputs: renameBinding(node.inputs) as typeof node.inputs })) } },
    nodes: Object.fromEntries(Object.values(state.nodes).map((node): [string, NodeExecution] => [rename(node.nodeId), { ...node, nodeId: rename(node.nodeId), task: `<i>${node.task}</i>` }])),
  };
}
