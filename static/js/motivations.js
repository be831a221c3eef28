// Motivations: the project's standing reasons for work (and the global ones), with type,
// condition, status, last and next firing; Enable / Disable / Trigger per motivation, and the
// history of firings (one motivation's, or the project's).  While the tab is shown, the
// project's motivation.* events reload the list and the history.
import { $, h, clear, time, keepFocus, showMessage } from './dom.js';
import { get, post, enc, refresher } from './api.js';
import { state, on } from './store.js';
import { beadHref } from './kanban.js';

let active = false;
let stale = true;
let gen = 0;
let motivations = [];
let selected = null; // the motivation whose history is shown; null: the project's

// A table cell: one box for its content, so the phone layout (label | content) holds.
const cell = (label, ...content) => h('td', { 'data-label': label }, h('div', { class: 'cell' }, ...content));
const pill = (kind, value) => h('span', { class: `pill ${kind}-${value}` }, String(value).replace(/_/g, ' '));

function duration(s) {
  const n = Number(s);
  if (n % 86400 === 0) return `${n / 86400} d`;
  if (n % 3600 === 0) return `${n / 3600} h`;
  if (n % 60 === 0) return `${n / 60} min`;
  return `${n} s`;
}

// The condition in words: "every 1 h", "cron 0 9 * * 1 (UTC)", "on bead completed", ...
export function conditionText(m) {
  const c = m.condition || {};
  switch (m.type) {
    case 'calendar': return c.cron ? `cron ${c.cron} (UTC)` : `every ${duration(c.interval_seconds)}`;
    case 'event': return `on ${String(c.event || '').replace(/_/g, ' ')}`;
    case 'threshold': {
      const win = duration(c.window_seconds || 3600);
      return c.metric === 'cost' ? `LLM cost over $${c.threshold} in ${win}`
        : `≥ ${Math.round(c.threshold * 100)} % of runs failed in ${win} (at least ${c.min_runs || 3})`;
    }
    case 'idle': return `${c.scope} idle for ${c.idle_minutes} min`;
    default: return 'only when triggered';
  }
}

function future(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'scheduling…');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: d.toLocaleString() },
    d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }));
}

function actionsFor(m) {
  const off = m.status === 'disabled';
  return h('td', { class: 'actions-cell' },
    h('button', {
      type: 'button', class: 'btn small', dataset: { focus: `toggle-${m.id}` }, 'aria-label': `${off ? 'Enable' : 'Disable'} ${m.name}`,
      onclick: () => act(m, off ? 'enable' : 'disable'),
    }, off ? 'Enable' : 'Disable'),
    ' ',
    h('button', {
      type: 'button', class: 'btn small primary', dataset: { focus: `trigger-${m.id}` }, 'aria-label': `Trigger ${m.name}`,
      disabled: off, onclick: () => act(m, 'trigger'),
    }, 'Trigger'),
    ' ',
    h('button', {
      type: 'button', class: 'btn small', dataset: { focus: `history-${m.id}` }, 'aria-label': `History of ${m.name}`,
      'aria-pressed': String(selected === m.id), onclick: () => showHistory(selected === m.id ? null : m.id),
    }, 'History'));
}

function row(m) {
  return h('tr', { dataset: { motivation: String(m.id) }, class: selected === m.id ? 'selected' : null },
    cell('Motivation', h('strong', {}, m.name),
      m.is_built_in ? h('span', { class: 'tag' }, 'built-in') : null,
      m.project_id ? null : h('span', { class: 'tag' }, 'global'),
      m.description ? h('div', { class: 'muted small' }, m.description) : null),
    cell('Type', m.type, h('div', { class: 'muted small' }, conditionText(m))),
    cell('Role', m.agent_role || m.agent_id || h('span', { class: 'muted' }, '—'),
      m.wake_agent ? h('div', { class: 'muted small' }, 'wakes the agent') : null),
    cell('Status', pill('st', m.status),
      m.active_bead ? h('div', { class: 'small' }, 'bead ', h('a', { href: beadHref(m.active_bead) }, m.active_bead)) : null),
    cell('Last fired', time(m.last_triggered_at),
      h('div', { class: 'muted small' }, `${m.trigger_count} time${m.trigger_count === 1 ? '' : 's'}`)),
    cell('Next', m.type === 'calendar' && m.status !== 'disabled' ? future(m.next_trigger_at) : h('span', { class: 'muted' }, '—')),
    actionsFor(m));
}

function renderList() {
  const box = $('#mot-list');
  if (!state.project) { clear(box, h('p', { class: 'empty-state' }, 'Choose a project.')); return; }
  if (!motivations.length) {
    clear(box, h('div', { class: 'empty-state' }, h('p', { class: 'big' }, 'No motivations'),
      h('p', { class: 'muted' }, 'Create one with POST /api/v1/motivations.')));
    return;
  }
  keepFocus(box, () => clear(box, h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, ['Motivation', 'Type', 'Role', 'Status', 'Last fired', 'Next', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, motivations.map(row)))));
}

function historyRow(t) {
  return h('tr', { dataset: { trigger: String(t.id) } },
    cell('When', time(t.triggered_at)),
    selected ? null : cell('Motivation', t.motivation_name),
    cell('Result', pill('r', t.result)),
    cell('Bead', t.bead_created ? h('a', { href: beadHref(t.bead_created) }, t.bead_created) : h('span', { class: 'muted' }, '—'),
      t.bead_created ? h('div', { class: 'muted small' }, t.finished_at ? 'closed' : 'open') : null),
    cell('Agent woken', t.agent_woken || h('span', { class: 'muted' }, '—')),
    cell('Source', (t.trigger_data && t.trigger_data.source) || ''),
    cell('Note', t.error || h('span', { class: 'muted' }, '—')));
}

function renderHistory(rows) {
  const m = motivations.find((x) => x.id === selected);
  $('#mot-history-h').textContent = m ? `History of ${m.name}` : 'Recent firings in this project';
  $('#mot-history-all').hidden = !m;
  const box = $('#mot-history-list');
  if (!rows.length) { clear(box, h('p', { class: 'muted' }, 'Nothing yet.')); return; }
  const head = ['When', selected ? null : 'Motivation', 'Result', 'Bead', 'Agent woken', 'Source', 'Note'].filter(Boolean);
  clear(box, h('table', { class: 'table compact' },
    h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map(historyRow))));
}

async function load() {
  const my = ++gen;
  if (!state.project) { motivations = []; renderList(); renderHistory([]); return; }
  const pid = enc(state.project.id);
  try {
    const [list, rows] = await Promise.all([
      get(`/motivations?project_id=${pid}&include_global=true&limit=1000`),
      selected ? get(`/motivations/${selected}/history?limit=50`) : get(`/motivations/history?project_id=${pid}&limit=50`),
    ]);
    if (my !== gen) return;
    motivations = list;
    if (selected && !list.some((m) => m.id === selected)) selected = null;
    stale = false;
    showMessage($('#mot-error'), null);
    renderList();
    renderHistory(rows);
  } catch (e) {
    if (my === gen) showMessage($('#mot-error'), `Could not load motivations: ${e.message}`);
  }
}

const refresh = refresher(load);

function showHistory(id) {
  selected = id;
  refresh();
}

const outcome = {
  success: (t) => `fired${t.bead_created ? `: bead ${t.bead_created}` : ''}${t.agent_woken ? `, woke ${t.agent_woken}` : ''}`,
  skipped: (t) => `skipped: ${t.error}`,
  cooldown: (t) => `not fired: ${t.error}`,
  no_target: (t) => `nothing to act on: ${t.error}`,
  error: (t) => `failed: ${t.error}`,
};

async function act(m, what) {
  showMessage($('#mot-error'), null);
  showMessage($('#mot-note'), null);
  try {
    const res = await post(`/motivations/${m.id}/${what}`);
    if (what === 'trigger') {
      showMessage($('#mot-note'), `${m.name} ${(outcome[res.result] || (() => res.result))(res)}.`);
      selected = m.id;
    }
    refresh();
  } catch (e) {
    showMessage($('#mot-error'), `Could not ${what} ${m.name}: ${e.message}`);
  }
}

export function initMotivations() {
  on('tab', (tab) => {
    active = tab === 'motivations';
    if (active && stale) refresh();
  });
  on('project', () => {
    selected = null;
    motivations = [];
    showMessage($('#mot-note'), null);
    stale = true;
    if (active) refresh();
  });
  on('event', (ev) => {
    if (!ev.type.startsWith('motivation.')) return;
    stale = true;
    if (active) refresh();
  });
  $('#mot-history-all').addEventListener('click', () => showHistory(null));
}
