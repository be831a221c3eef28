// Analytics: the LLM calls of a period (GET /analytics/stats) as totals, bars by project,
// agent, model and provider for one metric (tokens, cost, latency or calls), time lines of
// cost, tokens and latency, the spend by persona (GET /analytics/costs?group_by=persona), the
// change velocity of the agents' work (GET /analytics/change-velocity), and a CSV download of
// the calls (GET /analytics/export).  While the tab is shown, the run events of the project
// reload it (a burst costs one round of requests after it).
import { $, h, clear, showMessage, fmtNum, fmtUsd, fmtMs } from './dom.js';
import { get, enc, refresher } from './api.js';
import { state, on, agentName } from './store.js';
import { barChart, columnChart } from './charts.js';

const HOUR = 3600e3;
const DAY = 24 * HOUR;
const PERIOD_MS = { '1h': HOUR, '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY };
const TRIGGERS = new Set(['run.iteration', 'run.finished']);
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
// text: the value for tables and tooltips; short: what fits next to a bar on a phone
const METRICS = {
  tokens: { name: 'Tokens', of: (r) => (r.prompt_tokens || 0) + (r.completion_tokens || 0), text: (v) => `${fmtNum(v)} tokens`, short: (v) => compact.format(v) },
  cost: { name: 'Cost', of: (r) => Number(r.cost_usd || 0), text: fmtUsd, short: fmtUsd },
  latency: { name: 'Average latency', of: (r) => Number(r.avg_latency_ms || 0), text: fmtMs, short: fmtMs },
  calls: { name: 'Calls', of: (r) => r.calls || 0, text: (v) => `${fmtNum(v)} call${v === 1 ? '' : 's'}`, short: (v) => compact.format(v) },
};
// How a time line adds hourly buckets into its columns: sums, or a call-weighted average.
const TIMELINES = [
  { metric: 'cost', add: (b) => Number(b.cost_usd || 0) },
  { metric: 'tokens', add: (b) => b.tokens || 0 },
  { metric: 'latency', add: (b) => Number(b.avg_latency_ms || 0) * (b.calls || 0), weight: (b) => b.calls || 0 },
];
let active = false;
let stale = true;
let gen = 0;
let timer = null;
let data = null; // {stats, personas, velocity}

function card(label, value, sub) {
  return h('div', { class: 'count-card stat' },
    h('span', { class: 'num' }, value), h('span', { class: 'lbl' }, label), sub ? h('span', { class: 'muted small' }, sub) : null);
}

function renderCards(t) {
  const rate = t.calls ? `${(Number(t.error_rate ?? t.errors / t.calls) * 100).toFixed(1)} % errors` : 'no errors';
  clear($('#an-cards'),
    card('LLM calls', fmtNum(t.calls), `${fmtNum(t.errors)} failed · ${rate}`),
    card('Tokens', fmtNum(t.prompt_tokens + t.completion_tokens), `${fmtNum(t.prompt_tokens)} in · ${fmtNum(t.completion_tokens)} out · ${fmtNum(t.cached_tokens)} cached`),
    card('Cost', fmtUsd(t.cost_usd)),
    card('Avg latency', fmtMs(t.avg_latency_ms), `p95 ${fmtMs(t.p95_latency_ms)}`),
    card('Time to first token', fmtMs(t.avg_ttft_ms), 'average'));
}

function label(dim, key) {
  if (dim === 'agent') return key === '-' ? 'no agent' : agentName(key);
  if (dim === 'project') return (state.projects.find((p) => p.id === key) || {}).name || key;
  if (key === '-') return `no ${dim}`;
  return key;
}

function breakdown(dim, rows, metric) {
  const m = METRICS[metric];
  const bars = rows.map((r) => ({ label: label(dim, r.key), value: m.of(r) }))
    .map((r) => ({ ...r, text: m.text(r.value), short: m.short(r.value) }))
    .sort((a, b) => b.value - a.value);
  return barChart(`${m.name} by ${dim}`, bars, { valueHead: m.name, empty: 'No LLM calls in this period.' });
}

// Hours for a day or less, days beyond; the hourly buckets the API returned fall into them.
function timeline(byHour, period, { metric, add, weight }) {
  const m = METRICS[metric];
  const size = PERIOD_MS[period] <= DAY ? HOUR : DAY;
  const n = Math.max(1, Math.round(PERIOD_MS[period] / size));
  const start = Math.floor(Date.now() / size) * size - (n - 1) * size;
  const sums = new Array(n).fill(0);
  const weights = new Array(n).fill(0);
  for (const b of byHour) {
    const i = Math.floor((Date.parse(b.bucket) - start) / size);
    if (i < 0 || i >= n) continue;
    sums[i] += add(b);
    if (weight) weights[i] += weight(b);
  }
  const values = sums.map((v, i) => (weight ? (weights[i] ? v / weights[i] : 0) : v));
  const fmt = size === HOUR ? { weekday: 'short', hour: '2-digit', minute: '2-digit', hour12: false } : { month: 'short', day: 'numeric' };
  const cols = values.map((v, i) => ({ label: new Date(start + i * size).toLocaleString('en-GB', fmt), value: v, text: m.text(v) }));
  const title = `${m.name} per ${size === HOUR ? 'hour' : 'day'}`;
  if (!values.some((v) => v > 0)) return barChart(title, [], { empty: 'No LLM calls in this period.' });
  return columnChart(title, cols, { valueHead: m.name });
}

function personaChart(costs) {
  const rows = (costs?.rows || []).map((r) => ({
    label: r.key === '-' ? 'no persona' : r.key, value: Number(r.cost_usd || 0),
    text: `${fmtUsd(r.cost_usd)} · ${fmtNum(r.requests)} call${r.requests === 1 ? '' : 's'}`, short: fmtUsd(r.cost_usd),
  }));
  return barChart('Cost by persona', rows, { valueHead: 'Cost', empty: 'No LLM calls in this period.', labelMax: 14 });
}

function velocityCards(v) {
  const sum = (k) => (v?.projects || []).reduce((n, p) => n + Number(p[k] || 0), 0);
  const perDay = v?.days ? sum('commits') / Number(v.days) : 0;
  return h('div', { class: 'counts stats', 'aria-label': 'Change velocity' },
    card('Files changed', fmtNum(sum('files_changed')), `${fmtNum(sum('edits'))} edit${sum('edits') === 1 ? '' : 's'}`),
    card('Builds', `${fmtNum(sum('builds_passed'))} / ${fmtNum(sum('builds_run'))}`, 'passed / run'),
    card('Tests', `${fmtNum(sum('tests_passed'))} / ${fmtNum(sum('tests_run'))}`, 'passed / run'),
    card('Commits', fmtNum(sum('commits')), `${perDay.toFixed(perDay < 10 ? 1 : 0)} a day · ${fmtNum(sum('pushes'))} pushed`),
    card('Commands', fmtNum(sum('commands_run')), `${fmtNum(sum('commands_failed'))} failed`));
}

function section(title, ...children) {
  return h('section', { class: 'an-section' }, h('h2', {}, title), ...children);
}

function exportLink() {
  const all = $('#an-scope').value === 'all';
  const q = `format=csv&period=${enc($('#an-period').value)}${all || !state.project ? '' : `&project_id=${enc(state.project.id)}`}`;
  return h('p', { class: 'small' }, h('a', { href: `/api/v1/analytics/export?${q}`, download: '' }, 'Download these LLM calls (CSV)'));
}

function render() {
  if (!data) return;
  const { stats, personas, velocity } = data;
  const metric = $('#an-metric').value;
  renderCards(stats.totals);
  const dims = $('#an-scope').value === 'all' ? ['project', 'agent', 'model', 'provider'] : ['agent', 'model', 'provider'];
  clear($('#an-charts'),
    h('div', { class: 'chart-grid' }, dims.map((d) => breakdown(d, stats[`by_${d}`] || [], metric))),
    section('Over time', h('div', { class: 'chart-grid' }, TIMELINES.map((t) => timeline(stats.by_hour || [], stats.period, t)))),
    section('Spend', h('div', { class: 'chart-grid' }, personaChart(personas)), exportLink()),
    section('Change velocity', velocityCards(velocity)));
}

async function load() {
  const my = ++gen;
  const all = $('#an-scope').value === 'all';
  if (!all && !state.project) { clear($('#an-charts'), h('p', { class: 'empty-state' }, 'Choose a project.')); return; }
  const q = `period=${enc($('#an-period').value)}${all ? '' : `&project_id=${enc(state.project.id)}`}`;
  try {
    const [stats, personas, velocity] = await Promise.all([
      get(`/analytics/stats?${q}`), get(`/analytics/costs?${q}&group_by=persona`), get(`/analytics/change-velocity?${q}`),
    ]);
    if (my !== gen) return;
    data = { stats, personas, velocity };
    stale = false;
    showMessage($('#an-error'), null);
    render();
  } catch (e) {
    if (my === gen) showMessage($('#an-error'), `Could not load analytics: ${e.message}`);
  }
}

const refresh = refresher(load);

// Runs report progress often: wait for a quiet half second before asking again.
function soon() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 500);
}

export function initAnalytics() {
  on('tab', (tab) => {
    active = tab === 'analytics';
    if (active && stale) refresh();
  });
  on('project', () => { stale = true; data = null; if (active) refresh(); });
  on('event', (ev) => {
    if (!TRIGGERS.has(ev.type)) return;
    stale = true;
    if (active) soon();
  });
  $('#an-controls').addEventListener('submit', (e) => e.preventDefault());
  $('#an-scope').addEventListener('change', refresh);
  $('#an-period').addEventListener('change', refresh);
  $('#an-metric').addEventListener('change', render);
}
