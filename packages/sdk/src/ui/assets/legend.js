import { h } from './dom.js';

export function drawLegend(target, legend) {
  target.replaceChildren(
    h('ul', { class: 'legend' }, legend.map((entry) => h('li', { title: entry.meaning, 'data-shade': entry.shade }, h('span', { class: 'swatch', 'data-fill': entry.fill }), entry.label))),
  );
  // Colours as CSSOM properties: allowed under the page's CSP, unlike inline style attributes.
  for (const swatch of target.querySelectorAll('.swatch')) swatch.style.background = swatch.getAttribute('data-fill');
}
