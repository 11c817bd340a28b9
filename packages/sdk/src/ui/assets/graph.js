// A run's DAG: the server sends it laid out (ELK, boxes and edge polylines in page coordinates);
// this draws it as SVG and recolours nodes as the live stream reports changes.
import { cut, s } from './dom.js';

const LABEL_CHARS = 34;

/** Draws `layout` into `svg`; `onPick(nodeId)` opens a node, `onToggle(nodeId)` opens or closes a container. */
export function drawGraph(svg, layout, { selected, onPick, onToggle }) {
  svg.replaceChildren();
  svg.setAttribute('width', String(Math.max(layout.width, 200)));
  svg.setAttribute('height', String(Math.max(layout.height, 80)));
  svg.setAttribute('viewBox', `0 0 ${Math.max(layout.width, 200)} ${Math.max(layout.height, 80)}`);
  svg.append(
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))),
  );
  const containers = s('g', { class: 'containers' });
  const edges = s('g', { class: 'edges' });
  const nodes = s('g', { class: 'nodes' });
  svg.append(containers, edges, nodes);
  for (const edge of layout.edges) {
    if (edge.points.length < 2) continue;
    const d = edge.points.map((p, i) => `${i === 0 ? 'M' : 'L'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    edges.append(s('path', { class: 'edge', d, 'marker-end': 'url(#arrow)', 'data-from': edge.from, 'data-to': edge.to }));
  }
  for (const node of layout.nodes) (node.expanded ? containers : nodes).append(drawNode(node, { selected, onPick, onToggle }));
}

function drawNode(node, { selected, onPick, onToggle }) {
  const group = s('g', {
    class: `node${node.expanded ? ' open' : ''}${node.id === selected ? ' selected' : ''}${node.active ? ' active' : ''}`,
    transform: `translate(${node.x} ${node.y})`,
    'data-node-id': node.id,
    'data-shade': node.shade,
    tabindex: '0',
    role: 'button',
    'aria-label': `node ${node.id}`,
  });
  group.append(s('title', {}, `${node.id}\n${node.task}\n${statusText(node)}`));
  group.append(s('rect', { class: 'box', width: node.width, height: node.height, rx: '6', fill: node.fill }));
  const label = node.parent !== null && node.id.startsWith(`${node.parent}.`) ? node.id.slice(node.parent.length + 1) : node.id;
  group.append(s('text', { class: 'label', x: '10', y: '18' }, cut(label, LABEL_CHARS)));
  group.append(s('text', { class: 'sub', x: '10', y: '33' }, cut(node.task, LABEL_CHARS)));
  group.append(s('text', { class: 'status', x: '10', y: '48' }, cut(statusText(node), LABEL_CHARS)));
  if (node.childCount > 0) {
    const toggle = s('text', { class: 'toggle', x: String(node.width - 18), y: '18', role: 'button', 'aria-label': `${node.expanded ? 'close' : 'open'} ${node.id}` }, node.expanded ? '▾' : `▸${node.childCount}`);
    toggle.addEventListener('click', (event) => {
      event.stopPropagation();
      onToggle(node.id);
    });
    group.append(toggle);
    if (!node.expanded) toggle.setAttribute('x', String(node.width - 30));
  }
  group.addEventListener('click', () => onPick(node.id));
  group.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') onPick(node.id);
  });
  return group;
}

export function statusText(node) {
  if (node.cacheStatus === null) return node.phase;
  const reason = node.cacheStatus === 'SKIPPED' && node.cacheReason ? `(${node.cacheReason})` : '';
  return `${node.cacheStatus}${reason}${node.phase === 'succeeded' ? '' : ` · ${node.phase}`}`;
}

/** Applies node states from the live stream to the drawn graph; returns the ids it found. */
export function recolour(svg, states) {
  const found = [];
  for (const state of states) {
    const group = [...svg.querySelectorAll('g.node')].find((g) => g.getAttribute('data-node-id') === state.id);
    if (group === undefined) continue;
    found.push(state.id);
    group.setAttribute('data-shade', state.shade);
    group.classList.toggle('active', state.active);
    group.querySelector('rect.box').setAttribute('fill', state.fill);
    group.querySelector('text.status').textContent = cut(statusText(state), LABEL_CHARS);
  }
  return found;
}
