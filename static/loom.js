// Loom dashboard: no build step, ES modules served by nginx, live through one EventSource per
// project.  Routes live in the hash: #/<project>/<tab>[/<bead id>].
import { $, $$, h, clear } from './js/dom.js';
import { get, getAll, enc, onOutage } from './js/api.js';
import { state, on, emit, upsertBead } from './js/store.js';
import { initKanban, renderBoard } from './js/kanban.js';
import { initDrawer, openDrawer, closeDrawer, drawerBead } from './js/drawer.js';
import { initViews, pushEvent, resetEvents } from './js/views.js';
import { initRuns } from './js/runs.js';
import { initActionLog } from './js/actionlog.js';
import { initConversation } from './js/conversation.js';
import { initPair } from './js/pair.js';
import { initDecisions } from './js/decisions.js';
import { initMotivations } from './js/motivations.js';
import { initAnalytics } from './js/analytics.js';
import { initLogs } from './js/logs.js';
import { initBudget } from './js/budget.js';
import { LiveStream } from './js/live.js';
import { ensureSession, initAccount } from './js/account.js';
import { initNotifications } from './js/notifications.js';
import { initActivity } from './js/activity.js';

const TABS = ['home', 'kanban', 'agents', 'personas', 'providers', 'decisions', 'motivations', 'analytics', 'logs', 'events', 'account', 'users'];
const STORE_KEY = 'loom.project';
let stream = null;
let projectSeq = 0;
const beadFetches = new Set();

/* ---------- health, outage banner, live indicator ---------- */

function setHealth(ok, text) {
  const el = $('#health');
  el.textContent = text;
  el.className = `pill ${ok ? 'ok' : 'bad'}`;
}

async function checkHealth() {
  try {
    const res = await fetch('/health/ready', { headers: { Accept: 'application/json' } });
    if (res.ok) { setHealth(true, 'healthy'); banner(null); return; }
    const body = await res.json().catch(() => ({}));
    setHealth(false, res.status === 503 ? 'database down' : 'unhealthy');
    banner(`Loom is not ready: ${body.error || body.status || res.status}. Changes may fail until it recovers.`);
  } catch {
    setHealth(false, 'unreachable');
    banner('Cannot reach the Loom server. Check that it is running; the page reconnects by itself.');
  }
}

function banner(msg) {
  const b = $('#banner');
  b.hidden = !msg;
  b.textContent = msg || '';
}

let healthTimer = null;
onOutage((err) => {
  if (!err) {
    if (!$('#banner').hidden) checkHealth();
    return;
  }
  banner(`The Loom API is unavailable (${err.status || 'no answer'}: ${err.message}).`);
  setHealth(false, err.status === 503 ? 'database down' : 'unavailable');
});

function setLive(s) {
  const el = $('#live');
  const text = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', closed: 'offline' }[s] || s;
  el.className = `pill live is-${s}`;
  $('#live-text').textContent = text;
  // Each (re)connect and each loss is a moment to look at health again: no polling needed.
  clearTimeout(healthTimer);
  if (s === 'live' || s === 'reconnecting') healthTimer = setTimeout(checkHealth, s === 'live' ? 0 : 500);
}

/* ---------- routing ---------- */

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  // "#kanban" (no project) or "#/<project>/<tab>/<bead>"
  if (parts.length === 1 && TABS.includes(parts[0])) return { project: null, tab: parts[0], bead: null };
  return { project: parts[0] || null, tab: TABS.includes(parts[1]) ? parts[1] : 'home', bead: parts[2] || null };
}

function href(tab, bead) {
  const p = state.project ? enc(state.project.id) : '';
  return `#/${p}/${tab}${bead ? `/${enc(bead)}` : ''}`;
}

function setHash(tab, bead, replace) {
  const target = href(tab, bead);
  if (location.hash === target) return;
  if (replace) history.replaceState(null, '', target);
  else location.hash = target;
}

let currentTab = null;
function showTab(tab) {
  for (const t of TABS) $(`#view-${t}`).hidden = t !== tab;
  $$('.tabs a').forEach((a) => {
    a.href = href(a.dataset.tab);
    if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  if (tab !== currentTab) { currentTab = tab; emit('tab', tab); }
}

async function route() {
  const r = parseHash();
  if (r.project && (!state.project || r.project !== state.project.id) && state.projects.some((p) => p.id === r.project)) {
    await selectProject(r.project, false);
  }
  showTab(r.tab);
  if (r.bead && r.tab === 'kanban') openDrawer(r.bead);
  else closeDrawer(false);
}

/* ---------- projects and the stream ---------- */

async function loadProjects() {
  const sel = $('#project');
  try {
    state.projects = await get('/projects?limit=1000');
  } catch (e) {
    clear(sel, h('option', { value: '' }, 'Projects unavailable'));
    banner(`Could not load projects: ${e.message}`);
    return false;
  }
  clear(sel, state.projects.length
    ? state.projects.map((p) => h('option', { value: p.id }, p.status === 'closed' ? `${p.name} (closed)` : p.name))
    : h('option', { value: '' }, 'No projects'));
  sel.disabled = !state.projects.length;
  return true;
}

async function selectProject(id, updateHash = true) {
  const project = state.projects.find((p) => p.id === id) || null;
  const seq = ++projectSeq;
  if (stream) { stream.close(); stream = null; }
  state.project = project;
  state.beads = new Map();
  state.agents = new Map();
  state.loaded = false;
  $('#project').value = project ? project.id : '';
  if (project) localStorage.setItem(STORE_KEY, project.id);
  if (updateHash) setHash(parseHash().tab, null, true);
  $$('.tabs a').forEach((a) => { a.href = href(a.dataset.tab); });
  emit('project');
  emit('beads');
  emit('agents');
  resetEvents([]);
  if (!project) { setLive('closed'); return; }
  setLive('connecting');
  try {
    // The stream resumes after the newest event seen before the fetches, so nothing that
    // happens while they run is missed (replays are harmless: newer copies win).
    const head = await get('/events?limit=1');
    const headId = head.length ? head[0].id : 0;
    const pid = enc(project.id);
    const [beads, agents, events] = await Promise.all([
      getAll(`/beads?project_id=${pid}`),
      get(`/agents?project_id=${pid}`),
      get(`/events?project_id=${pid}&limit=200`),
    ]);
    if (seq !== projectSeq) return;
    for (const b of beads.rows) upsertBead(b);
    state.beadsTruncated = beads.truncated;
    for (const a of agents) state.agents.set(a.id, a);
    state.loaded = true;
    emit('beads');
    emit('agents');
    resetEvents(events.filter((e) => e.id <= headId).reverse());
    stream = new LiveStream(`/api/v1/events/stream?project_id=${pid}`, {
      lastEventId: headId, onEvent: applyEvent, onState: (s) => { if (seq === projectSeq) setLive(s); },
    });
  } catch (e) {
    if (seq !== projectSeq) return;
    banner(`Could not load ${project.name}: ${e.message}`);
    setLive('closed');
  }
}

async function fetchBead(id) {
  if (beadFetches.has(id)) return;
  beadFetches.add(id);
  try {
    const b = await get(`/beads/${enc(id)}`);
    if (upsertBead(b)) emit('beads');
  } catch (e) {
    if (e.status === 404 && state.beads.delete(id)) emit('beads');
  } finally {
    beadFetches.delete(id);
  }
}

// Applies one live event to what the page shows.
function applyEvent(ev) {
  if (!state.project || (ev.project_id && ev.project_id !== state.project.id)) return;
  const d = ev.data || {};
  const t = ev.type;
  if (t.startsWith('bead.')) {
    if (t === 'bead.deleted') { if (state.beads.delete(ev.bead_id)) emit('beads'); }
    else if (d.bead) { if (upsertBead(d.bead)) emit('beads'); }
    else if (t === 'bead.status_change') {
      const b = state.beads.get(ev.bead_id);
      if (!b) fetchBead(ev.bead_id);
      else if (b.status !== d.to && d.to) { b.status = d.to; emit('beads'); fetchBead(ev.bead_id); }
    } else if (t !== 'bead.completed' && ev.bead_id) fetchBead(ev.bead_id);
  } else if (t.startsWith('agent.')) {
    if (t === 'agent.deleted') { state.agents.delete(d.agent ? d.agent.id : d.id); emit('agents'); }
    else if (d.agent) { state.agents.set(d.agent.id, { ...(state.agents.get(d.agent.id) || {}), ...d.agent }); emit('agents'); }
  } else if (t === 'project.updated' && d.project) {
    const i = state.projects.findIndex((p) => p.id === d.project.id);
    if (i >= 0) state.projects[i] = { ...state.projects[i], ...d.project };
    if (state.project && state.project.id === d.project.id) {
      state.project = { ...state.project, ...d.project };
      emit('project');
    }
  } else if (t === 'project.deleted') {
    banner(`Project ${state.project.name} was deleted.`);
  }
  pushEvent(ev);
  emit('event', ev);
}

/* ---------- start ---------- */

async function start() {
  await ensureSession();
  initAccount();
  initKanban();
  initDrawer();
  initRuns();
  initActionLog();
  initConversation();
  initPair();
  initViews();
  initActivity();
  initNotifications();
  initDecisions();
  initMotivations();
  initAnalytics();
  initLogs();
  initBudget();
  on('close-drawer', () => {
    const tab = parseHash().tab;
    setHash(tab, null, false);
    closeDrawer();
  });
  on('drawer-closed', () => { const r = parseHash(); if (r.bead) setHash(r.tab, null, true); });
  $('#project').addEventListener('change', (e) => selectProject(e.target.value));
  window.addEventListener('hashchange', route);
  checkHealth();
  const ok = await loadProjects();
  const r = parseHash();
  const want = [r.project, localStorage.getItem(STORE_KEY)].find((id) => id && state.projects.some((p) => p.id === id))
    || (state.projects[0] && state.projects[0].id);
  if (ok && want) await selectProject(want, !r.project || r.project !== want);
  else { emit('project'); renderBoard(); }
  await route();
  if (drawerBead() && !state.beads.has(drawerBead())) fetchBead(drawerBead());
}

start();
