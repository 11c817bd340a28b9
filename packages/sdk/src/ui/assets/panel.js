// A node's panel: status, explain, key parts, attempts, error, previews of inputs and output.
import { enc, getJson, h, duration, shortKey, when } from './dom.js';
import { statusText } from './graph.js';

function section(title, ...body) {
  return h('section', { class: 'part', 'data-part': title.toLowerCase() }, h('h3', {}, title), ...body);
}

function rows(pairs) {
  return h('table', { class: 'kv' }, h('tbody', {}, pairs.filter(([, value]) => value !== undefined).map(([name, value]) => h('tr', {}, h('th', {}, name), h('td', {}, value ?? '-')))));
}

function previewBlock(value) {
  return h('div', { class: 'value' },
    h('pre', {}, value.preview.text),
    value.preview.truncated ? h('p', { class: 'cut' }, 'truncated: the value is longer than this preview') : null,
    value.hash ? h('p', { class: 'hash' }, `hashWith: ${value.hash}`) : null);
}

function short(value) {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

function nodeLink(runId, nodeId, text) {
  return h('a', { href: `#/runs/${enc(runId)}/nodes/${enc(nodeId)}`, class: 'node-link' }, text ?? `${runId} ${nodeId}`);
}

function explainStatus(explain) {
  if (explain.status === null) return `- (${explain.phase})`;
  return explain.status === 'SKIPPED' ? `SKIPPED(${explain.cacheReason ?? ''})` : explain.status;
}

function differenceCells(d) {
  const cell = (value, absent) => (absent ? '(absent)' : value === undefined ? '?' : short(value));
  return [d.part, d.name ?? '', cell(d.was, d.change === 'added'), cell(d.now, d.change === 'removed')];
}

/** `mf.explain`'s answer: the reason, what wrote or was nearest to the entry, the parts that differ, the cascade chain. */
function explainBlock(explain) {
  const chain = [];
  for (let up = explain.upstream; up !== undefined && up !== null && chain.length < 50; up = up.upstream) chain.push(up);
  return [
    h('p', { class: 'reason' }, explain.reason),
    explain.writtenBy ? h('p', { class: 'written-by' }, 'entry written by ', nodeLink(explain.writtenBy.runId, explain.writtenBy.nodeId), ` at ${when(explain.writtenBy.createdAt)}`) : null,
    explain.recoveredFrom ? h('p', { class: 'recovered-from' }, 'recovered from ', nodeLink(explain.recoveredFrom.runId, explain.recoveredFrom.nodeId)) : null,
    explain.nearest ? h('p', { class: 'nearest' }, `nearest entry ${shortKey(explain.nearest.key)} (${explain.nearest.project}/${explain.nearest.domain}, ${explain.nearest.differing} part(s) differ), written by `,
      nodeLink(explain.nearest.runId, explain.nearest.nodeId), ` at ${when(explain.nearest.createdAt)}`) : null,
    explain.differences.length === 0 ? null : h('table', { class: 'grid differences' },
      h('thead', {}, h('tr', {}, h('th', {}, 'part'), h('th', {}, 'name'), h('th', {}, 'was'), h('th', {}, 'now'))),
      h('tbody', {}, explain.differences.map((d) => h('tr', {}, differenceCells(d).map((text) => h('td', {}, text)))))),
    chain.length === 0 ? null : h('div', { class: 'upstream' }, h('h4', {}, 'why upstream ran'), h('ol', {}, chain.map((up) => h('li', {}, nodeLink(up.runId, up.node, up.node), ` ${explainStatus(up)}: ${up.reason}`)))),
  ];
}

/** Fills `panel` with node `nodeId` of run `runId`; `onPick` opens another node (a child). */
export async function showPanel(panel, runId, nodeId, { onPick, onClose }) {
  const base = `/api/runs/${enc(runId)}/nodes/${enc(nodeId)}`;
  const [detail, explain] = await Promise.all([
    getJson(base),
    getJson(`${base}/explain`).catch((error) => ({ unavailable: error.message })),
  ]);
  const close = h('button', { class: 'close', type: 'button', 'aria-label': 'close panel' }, '×');
  close.addEventListener('click', onClose);
  const cacheLink = h('a', { href: `#/cache/${enc(detail.task)}` }, `cache entries of ${detail.task}`);
  const parts = detail.keyParts;
  panel.replaceChildren(
    close,
    h('h2', { class: 'node-id' }, detail.id),
    h('p', { class: 'task' }, detail.task, ` (${detail.kind})`),
    section('Status',
      rows([
        ['status', statusText(detail)],
        ['phase', detail.phase],
        ['cache status', detail.cacheStatus],
        ['reason', detail.cacheReason],
        ['waited for', detail.waitedFor ? `run ${detail.waitedFor.runId} node ${detail.waitedFor.nodeId}` : undefined],
        ['cache write', detail.cacheWriteRetry ? `retrying (${detail.cacheWriteRetry.failures} failures): ${detail.cacheWriteRetry.lastError}` : undefined],
      ]),
      cacheLink),
    section('Explain', ...(explain.unavailable === undefined ? explainBlock(explain) : [h('p', { class: 'unavailable' }, `explain failed: ${explain.unavailable}`)])),
    section('Key',
      h('p', { class: 'key' }, detail.cacheKey ?? 'no key (not looked up yet, or caching off)'),
      parts === null ? null : rows([
        ['project', parts.project], ['domain', parts.domain], ['task', parts.task], ['version', parts.version], ['signature', parts.signature],
        ...Object.entries(parts.inputs).map(([name, digest]) => [`input ${name}`, digest]),
      ]),
      detail.cache === null ? h('p', {}, 'caching off for this node') : rows([['cache version', detail.cache.version], ['serialize', String(detail.cache.serialize)], ['ignored inputs', detail.cache.ignoreInputs.join(', ') || 'none'], ['ttl', duration(detail.cache.ttlMs)]])),
    section('Attempts', rows([
      ['attempts', String(detail.attempts)], ['retries allowed', String(detail.retries)], ['timeout', detail.timeoutMs === null ? 'none' : duration(detail.timeoutMs)],
      ['started', when(detail.startedAt)], ['finished', when(detail.finishedAt)], ['duration', duration(detail.durationMs)],
    ])),
    detail.error === null ? null : section('Error',
      h('p', { class: 'error-message' }, `${detail.error.name}${detail.error.code ? ` ${detail.error.code}` : ''}: ${detail.error.message}`),
      detail.error.stack ? h('details', {}, h('summary', {}, 'stack'), h('pre', {}, detail.error.stack)) : null),
    section('Inputs', detail.inputs === null ? h('p', {}, 'not resolved yet') : Object.keys(detail.inputs).length === 0 ? h('p', {}, 'none') :
      Object.entries(detail.inputs).map(([name, value]) => h('div', { class: 'input', 'data-input': name }, h('h4', {}, name), previewBlock(value)))),
    section('Output', detail.output === null ? h('p', {}, 'none yet') : previewBlock(detail.output)),
    detail.children.length === 0 ? null : section('Children', h('ul', {}, detail.children.map((child) => {
      const link = h('a', { href: '#', 'data-child': child }, child);
      link.addEventListener('click', (event) => {
        event.preventDefault();
        onPick(child);
      });
      return h('li', {}, link);
    }))),
  );
  panel.hidden = false;
  panel.setAttribute('data-node', nodeId);
}
