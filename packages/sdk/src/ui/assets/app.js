// The memoflow web UI: runs, a run's DAG (live while it runs), a node's panel, a task's cache
// entries. Hash routes: #/ · #/runs/<run> · #/runs/<run>/nodes/<node> · #/cache/<task>.
import { duration, enc, getJson, h, shortKey, showProblem, when } from './dom.js';
import { drawGraph, recolour } from './graph.js';
import { drawLegend } from './legend.js';
import { showPanel } from './panel.js';

const views = ['runs-view', 'run-view', 'cache-view'].map((id) => document.getElementById(id));
let legend = null;
/** The run on screen: its id, containers the user opened or closed, the live stream, the open node. */
let current = null;
let listTimer = null;

function show(id) {
  for (const view of views) view.hidden = view.id !== id;
}

function crumbs(...items) {
  document.getElementById('crumbs').replaceChildren(...items.flatMap((item) => [h('span', { class: 'sep' }, '/'), item]));
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map((part) => decodeURIComponent(part));
  clearTimeout(listTimer);
  showProblem(null);
  if (parts[0] === 'runs' && parts[1]) return openRun(parts[1], parts[2] === 'nodes' ? parts.slice(3).join('/') : null);
  closeRun();
  if (parts[0] === 'cache' && parts[1]) return openCache(parts.slice(1).join('/'));
  return openList();
}

async function openList() {
  show('runs-view');
  crumbs();
  try {
    const runs = await getJson('/api/runs?limit=100');
    document.getElementById('runs-empty').hidden = runs.length > 0;
    document.querySelector('#runs tbody').replaceChildren(...runs.map((run) => h('tr', { 'data-run': run.id },
      h('td', {}, h('a', { href: `#/runs/${enc(run.id)}` }, run.id)),
      h('td', {}, run.workflow),
      h('td', { class: `status ${run.status}` }, run.status),
      h('td', {}, `${run.project}/${run.domain}`),
      h('td', {}, when(run.createdAt)),
      h('td', {}, run.finishedAt === null ? 'running' : duration(new Date(run.finishedAt) - new Date(run.createdAt))),
    )));
  } catch (error) {
    showProblem(`listing runs failed: ${error.message}`);
  }
  // The list is cheap: refresh it while it is on screen, so new runs appear.
  listTimer = setTimeout(() => {
    if (!document.getElementById('runs-view').hidden) void openList();
  }, 3000);
}

async function openCache(task) {
  show('cache-view');
  crumbs(h('span', {}, `cache: ${task}`));
  document.getElementById('cache-task').textContent = task;
  try {
    const entries = await getJson(`/api/cache?task=${enc(task)}&limit=200`);
    document.getElementById('cache-empty').hidden = entries.length > 0;
    document.querySelector('#cache tbody').replaceChildren(...entries.map((entry) => h('tr', { 'data-key': entry.key },
      h('td', { title: entry.key }, shortKey(entry.key)),
      h('td', {}, entry.kind),
      h('td', {}, `${entry.project}/${entry.domain}`),
      h('td', {}, entry.parts.version),
      h('td', {}, h('a', { href: `#/runs/${enc(entry.runId)}/nodes/${enc(entry.nodeId)}` }, `${entry.runId} ${entry.nodeId}`)),
      h('td', {}, when(entry.createdAt)),
    )));
  } catch (error) {
    showProblem(`listing cache entries failed: ${error.message}`);
  }
}

function closeRun() {
  current?.events?.close();
  current = null;
}

async function openRun(runId, nodeId) {
  show('run-view');
  if (current?.runId !== runId) {
    closeRun();
    // Never show another run's picture while this one loads.
    const graph = document.getElementById('graph');
    graph.replaceChildren();
    graph.removeAttribute('data-run');
    document.getElementById('run-head').replaceChildren();
    document.getElementById('panel').hidden = true;
    current = { runId, toggled: new Set(), events: null, node: null, structure: null };
    await loadRun();
    if (current?.runId === runId && current.status === 'running') listen();
  }
  await selectNode(nodeId);
}

async function loadRun() {
  const run = current;
  const query = [...run.toggled].map((id) => `toggle=${enc(id)}`).join('&');
  try {
    legend ??= await getJson('/api/legend');
    const view = await getJson(`/api/runs/${enc(run.runId)}${query ? `?${query}` : ''}`);
    if (current !== run) return;
    run.status = view.run.status;
    run.structure = view.structure;
    drawHead(view.run);
    drawLegend(document.getElementById('legend'), legend);
    drawGraph(document.getElementById('graph'), view.layout, { selected: run.node, onPick: (id) => navigateToNode(id), onToggle: toggle });
    document.getElementById('graph').setAttribute('data-run', run.runId);
  } catch (error) {
    showProblem(error.status === 404 ? `run ${run.runId} does not exist` : `loading the run failed: ${error.message}`);
  }
}

function drawHead(run) {
  crumbs(h('a', { href: `#/runs/${enc(run.id)}` }, run.id));
  const inputs = Object.entries(run.inputs);
  document.getElementById('run-head').replaceChildren(...[
    h('h1', {}, run.workflow, ' ', h('span', { class: `status ${run.status}`, id: 'run-status' }, run.status)),
    h('p', { class: 'meta' }, `run ${run.id} · ${run.project}/${run.domain} · started ${when(run.createdAt)}${run.finishedAt ? ` · took ${duration(new Date(run.finishedAt) - new Date(run.createdAt))}` : ''}`,
      run.resumedFrom ? ` · resumed from ${run.resumedFrom.run} at ${run.resumedFrom.node}` : '', run.retryOf ? ` · retry of ${run.retryOf}` : ''),
    run.error ? h('p', { class: 'error-message', id: 'run-error' }, `${run.error.name}: ${run.error.message}`) : null,
    h('details', { class: 'io' }, h('summary', {}, `inputs (${inputs.length})${run.outputs ? ' and outputs' : ''}`),
      ...inputs.map(([name, value]) => h('div', {}, h('h4', {}, name), h('pre', {}, value.text), value.truncated ? h('p', { class: 'cut' }, 'truncated') : null)),
      run.outputs ? h('div', {}, h('h4', {}, 'outputs'), h('pre', {}, run.outputs.text), run.outputs.truncated ? h('p', { class: 'cut' }, 'truncated') : null) : null),
  ].filter((part) => part !== null));
}

function toggle(nodeId) {
  if (current.toggled.has(nodeId)) current.toggled.delete(nodeId);
  else current.toggled.add(nodeId);
  void loadRun();
}

function navigateToNode(nodeId) {
  location.hash = `#/runs/${enc(current.runId)}/nodes/${enc(nodeId)}`;
}

async function selectNode(nodeId) {
  const run = current;
  if (run === null) return;
  run.node = nodeId;
  for (const group of document.querySelectorAll('#graph g.node')) group.classList.toggle('selected', group.getAttribute('data-node-id') === nodeId);
  const panel = document.getElementById('panel');
  if (nodeId === null) {
    panel.hidden = true;
    panel.removeAttribute('data-node');
    return;
  }
  try {
    await showPanel(panel, run.runId, nodeId, {
      onPick: (id) => navigateToNode(id),
      onClose: () => (location.hash = `#/runs/${enc(run.runId)}`),
    });
  } catch (error) {
    showProblem(`loading node ${nodeId} failed: ${error.message}`);
  }
}

/** Follows a running run: node colours change in place; a container's new children bring a new layout. */
function listen() {
  const run = current;
  const events = new EventSource(`/api/runs/${enc(run.runId)}/events`);
  run.events = events;
  events.addEventListener('nodes', (message) => {
    const states = JSON.parse(message.data);
    recolour(document.getElementById('graph'), states);
    if (run.node !== null && states.some((state) => state.id === run.node)) void selectNode(run.node);
  });
  events.addEventListener('structure', () => void loadRun());
  events.addEventListener('run', (message) => {
    const { status } = JSON.parse(message.data);
    run.status = status;
    const badge = document.getElementById('run-status');
    if (badge) {
      badge.textContent = status;
      badge.className = `status ${status}`;
    }
  });
  events.addEventListener('end', (message) => {
    events.close();
    if (JSON.parse(message.data).serverClosing) return showProblem('the server stopped (the process serving this page ended); the picture is as it last was');
    // The final picture: durations and the run's outputs.
    if (current === run) void loadRun();
  });
  events.addEventListener('missing', () => events.close());
}

window.addEventListener('hashchange', () => void route());
void route();
