// Logs: the project's log (GET /logs/recent: what the workers wrote, and every event as a
// line; level, source, agent, bead, message), newest first, at most MAX_ROWS.  Live while the
// tab is shown: the log stream (/api/v1/logs/stream, the "log.*" events the workers' lines
// are) and the project's event stream (every other event) both say "something new up to id
// N", and one request fetches the lines after the last one shown, up to N (events commit out
// of order; the streams deliver them in order).  Export CSV downloads the last 7 days with the
// same filters (GET /logs/export).
import { $, h, clear, clock, fillSelect, showMessage } from './dom.js';
import { get, enc, refresher } from './api.js';
import { state, on, agentName } from './store.js';
import { beadHref } from './kanban.js';
import { LiveStream, LOG_TYPES } from './live.js';

const MAX_ROWS = 500;
let active = false;
let paused = false;
let stream = null;
let lines = []; // newest first
let cursor = 0; // every line up to this event id is in `lines`
let bound = 0; // the newest event id a stream announced
let gen = 0;
let streamState = 'closed';
const sources = new Set();
let typing = null;

function query(extra) {
  const f = $('#log-filters').elements;
  const q = { project_id: state.project.id, level: f.level.value, ...extra };
  if (f.source.value.trim()) q.source = f.source.value.trim();
  if (f.agent_id.value) q.agent_id = f.agent_id.value;
  if (f.bead_id.value.trim()) q.bead_id = f.bead_id.value.trim();
  return Object.entries(q).map(([k, v]) => `${k}=${enc(v)}`).join('&');
}

function row(l) {
  return h('li', { class: `log lv-${l.level}`, dataset: { id: String(l.id) } },
    h('time', { class: 'ev-time', datetime: l.timestamp, title: l.timestamp }, clock(l.timestamp)),
    h('span', { class: `lvl lv-${l.level}` }, l.level),
    h('span', { class: 'log-src', title: l.type }, l.source),
    l.bead_id ? h('a', { href: beadHref(l.bead_id), class: 'log-bead' }, l.bead_id) : h('span', { class: 'log-bead muted' }, '—'),
    h('span', { class: 'log-agent' }, l.agent_id ? agentName(l.agent_id) : ''),
    h('span', { class: 'log-msg' }, l.message));
}

function note() {
  const live = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'not connected' }[streamState] || streamState;
  const waiting = paused ? ' · paused: new lines wait until you resume' : '';
  $('#log-note').textContent = state.project ? `${lines.length} lines of ${state.project.name}, newest first · ${live}${waiting}` : 'Choose a project.';
}

function render() {
  note();
  if (paused) return;
  const list = $('#log-list');
  if (!lines.length) { clear(list, h('li', { class: 'empty-row muted' }, 'No log lines match.')); return; }
  // only what is new goes in: the rows shown so far keep their place (and any selection)
  const shown = new Map(Array.from(list.children, (li) => [li.dataset.id, li]));
  let prev = null;
  for (const l of lines) {
    const li = shown.get(String(l.id)) || row(l);
    shown.delete(String(l.id));
    if (prev ? prev.nextSibling !== li : list.firstChild !== li) list.insertBefore(li, prev ? prev.nextSibling : list.firstChild);
    prev = li;
  }
  for (const li of shown.values()) li.remove();
}

function add(rows) {
  const have = new Set(lines.map((l) => l.id));
  const fresh = rows.filter((r) => !have.has(r.id));
  if (!fresh.length) return;
  lines = lines.concat(fresh).sort((a, b) => b.id - a.id).slice(0, MAX_ROWS);
  let more = false;
  for (const r of fresh) if (r.source && !sources.has(r.source)) { sources.add(r.source); more = true; }
  if (more) clear($('#log-sources'), Array.from(sources).sort().map((x) => h('option', { value: x })));
  render();
}

async function sync() {
  const upto = bound;
  if (!active || !state.project || upto <= cursor) return;
  const my = gen;
  try {
    const rows = await get(`/logs/recent?${query({ since_id: cursor, limit: 1000 })}`);
    if (my !== gen) return;
    cursor = Math.max(cursor, upto);
    add(rows.filter((r) => r.id <= upto));
  } catch (e) {
    if (my === gen) showMessage($('#log-error'), `Could not load new log lines: ${e.message}`);
  }
}

const refresh = refresher(sync);

async function reload() {
  const my = ++gen;
  lines = [];
  if (state.project) $('#log-export').href = `/api/v1/logs/export?format=csv&period=7d&${query({})}`;
  clear($('#log-list'), h('li', { class: 'empty-row muted' }, 'Loading…'));
  showMessage($('#log-error'), null);
  if (!state.project) { note(); clear($('#log-list')); return; }
  try {
    const rows = await get(`/logs/recent?${query({ limit: MAX_ROWS })}`);
    if (my !== gen) return;
    cursor = Math.max(bound, ...rows.map((r) => r.id));
    clear($('#log-list'));
    add(rows);
    render();
    refresh();
  } catch (e) {
    if (my !== gen) return;
    clear($('#log-list'));
    showMessage($('#log-error'), e.message);
  }
}

function announce(ev) {
  if (!active || typeof ev.id !== 'number') return;
  bound = Math.max(bound, ev.id);
  refresh();
}

function openStream() {
  if (stream) stream.close();
  stream = null;
  if (!active || !state.project) return;
  stream = new LiveStream(`/api/v1/logs/stream?project_id=${enc(state.project.id)}`, {
    types: LOG_TYPES, onEvent: announce, onState: (s) => { streamState = s; note(); },
  });
}

function setActive(want) {
  if (want === active) return;
  active = want;
  if (active) { bound = 0; openStream(); reload(); } else if (stream) { stream.close(); stream = null; }
}

function togglePause(e) {
  paused = !paused;
  e.currentTarget.setAttribute('aria-pressed', String(paused));
  e.currentTarget.textContent = paused ? 'Resume' : 'Pause';
  render();
}

export function initLogs() {
  on('tab', (tab) => setActive(tab === 'logs'));
  on('project', () => { if (active) { bound = 0; openStream(); reload(); } });
  on('agents', () => fillSelect($('#log-agent'), 1, Array.from(state.agents.values()).map((a) => [a.id, `${a.name} (${a.id})`])));
  on('event', announce);
  const form = $('#log-filters');
  form.addEventListener('submit', (e) => e.preventDefault());
  form.addEventListener('change', (e) => { if (e.target.tagName === 'SELECT') reload(); });
  form.addEventListener('input', (e) => {
    if (e.target.tagName !== 'INPUT') return;
    clearTimeout(typing);
    typing = setTimeout(reload, 400);
  });
  $('#log-pause').addEventListener('click', togglePause);
  $('#log-clear').addEventListener('click', () => { lines = []; clear($('#log-list')); render(); });
}
