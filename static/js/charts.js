// Small inline SVG charts, drawn here (no library): horizontal bars for a breakdown and columns
// for a time line.  Geometry is in percent of the chart's width and CSS pixels of its height,
// so text keeps its size at any width and nothing needs redrawing on resize.  Each chart is a
// <figure> with a caption, an SVG that is role="img" with a <title> and <desc>, a <title> on
// every bar, and its numbers as a table under "Show as table".  Colours come from loom.css.
import { h, s } from './dom.js';

const ROW = 26;
const BAR = 16;
const COL_HEIGHT = 120;
let nextId = 0;

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function tableOf(caption, head, rows) {
  return h('details', { class: 'chart-table' },
    h('summary', {}, 'Show as table'),
    h('table', { class: 'table compact' },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, r.label), h('td', {}, r.text))))));
}

function frame(title, summary, svg, table) {
  const id = `chart-${++nextId}`;
  svg.setAttribute('aria-labelledby', `${id}-t ${id}-d`);
  svg.prepend(s('title', { id: `${id}-t` }, title), s('desc', { id: `${id}-d` }, summary));
  return h('figure', { class: 'chart' }, h('figcaption', {}, title), svg, table);
}

function pct(value, max) {
  if (!(value > 0) || !(max > 0)) return 0;
  return Math.max(0.5, (value / max) * 100);
}

// rows: [{label, value, text, short?}]: text is the value for people (tooltips, the table),
// short what is drawn next to the bar (default text).  Largest first.  Labels longer than
// labelMax characters are cut (the whole one is in the tooltip and the table): long names
// (personas) need a smaller one to clear the bars on a phone.
export function barChart(title, rows, { valueHead = 'Value', empty = 'No data.', labelMax = 22 } = {}) {
  if (!rows.length) return h('figure', { class: 'chart' }, h('figcaption', {}, title), h('p', { class: 'muted empty-chart' }, empty));
  const max = Math.max(...rows.map((r) => r.value || 0));
  const svg = s('svg', { class: 'bars', role: 'img', width: '100%', height: rows.length * ROW + 4 },
    rows.map((r, i) => {
      const y = i * ROW;
      return s('g', { class: 'bar-row' },
        s('text', { x: 0, y: y + 17, class: 'bar-label' }, truncate(r.label, labelMax), s('title', {}, r.label)),
        s('svg', { x: '36%', y: 0, width: '44%', height: '100%', overflow: 'visible' },
          s('rect', { x: 0, y: y + 5, width: '100%', height: BAR, rx: 3, class: 'bar-track' }),
          s('rect', { x: 0, y: y + 5, width: `${pct(r.value, max)}%`, height: BAR, rx: 3, class: 'bar' },
            s('title', {}, `${r.label}: ${r.text}`))),
        s('text', { x: '100%', y: y + 17, 'text-anchor': 'end', class: 'bar-value' }, r.short ?? r.text));
    }));
  const top = rows.reduce((a, b) => ((b.value || 0) > (a.value || 0) ? b : a));
  const summary = `Bar chart of ${rows.length} ${rows.length === 1 ? 'entry' : 'entries'}; the largest is ${top.label} with ${top.text}.`;
  return frame(title, summary, svg, tableOf(title, ['Name', valueHead], rows));
}

// columns: [{label, value, text}] in time order; first and last labels are drawn under the axis.
export function columnChart(title, columns, { valueHead = 'Value' } = {}) {
  const max = Math.max(0, ...columns.map((c) => c.value || 0));
  const w = 100 / Math.max(columns.length, 1);
  const svg = s('svg', { class: 'columns', role: 'img', width: '100%', height: COL_HEIGHT + 22 },
    s('line', { x1: 0, x2: '100%', y1: COL_HEIGHT + 0.5, y2: COL_HEIGHT + 0.5, class: 'axis' }),
    columns.map((c, i) => {
      const hgt = max > 0 && c.value > 0 ? Math.max(2, (c.value / max) * (COL_HEIGHT - 8)) : 0;
      return s('rect', { x: `${i * w + w * 0.1}%`, y: COL_HEIGHT - hgt, width: `${w * 0.8}%`, height: hgt, class: 'bar' },
        s('title', {}, `${c.label}: ${c.text}`));
    }),
    columns.length ? [
      s('text', { x: 0, y: COL_HEIGHT + 16, class: 'bar-label' }, columns[0].label),
      s('text', { x: '100%', y: COL_HEIGHT + 16, 'text-anchor': 'end', class: 'bar-label' }, columns[columns.length - 1].label),
    ] : null);
  const busiest = columns.reduce((a, b) => ((b.value || 0) > (a.value || 0) ? b : a), columns[0] || { label: '—', text: '0' });
  const summary = `Column chart over ${columns.length} periods from ${columns[0]?.label ?? '—'} to ${columns[columns.length - 1]?.label ?? '—'}; the busiest is ${busiest.label} with ${busiest.text}.`;
  return frame(title, summary, svg, tableOf(title, ['When', valueHead], columns));
}
