// Home, Agents, Personas, Providers and Events.
import { $, h, clear, time, clock, formError, setBusy, fillSelect } from './dom.js';
import { get, post, put, patch, del, enc, ApiError } from './api.js';
import { state, on, emit, STATUSES, STATUS_LABEL } from './store.js';
import { beadHref } from './kanban.js';
import { LiveStream } from './live.js';

const statusPill = (s) => h('span', { class: `pill st-${s}` }, String(s || 'unknown').replace('_', ' '));

/* ---------- Home ---------- */

function renderHome() {
  const p = state.project;
  $('#home-h').textContent = p ? p.name : 'No project';
  clear($('#home-sub'), p ? [h('code', {}, p.id), ' · ', p.status, p.git_repo ? ` · ${p.git_repo}` : '', p.description ? ` — ${p.description}` : ''] :
    'No projects yet. Create one with POST /api/v1/projects (or loomctl).');
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const b of state.beads.values()) if (b.status in counts) counts[b.status] += 1;
  clear($('#home-counts'), p ? [
    ...STATUSES.map((s) => h('a', { class: `count-card s-${s}`, href: `#/${enc(p.id)}/kanban` },
      h('span', { class: 'num' }, String(counts[s])), h('span', { class: 'lbl' }, STATUS_LABEL[s]))),
    h('div', { class: 'count-card total' }, h('span', { class: 'num' }, `${state.beads.size}${state.beadsTruncated ? '+' : ''}`), h('span', { class: 'lbl' }, 'Total')),
  ] : null);
  renderHomeAgents();
}

function renderHomeAgents() {
  const agents = Array.from(state.agents.values());
  const box = $('#home-agents');
  if (!state.project) { clear(box); return; }
  if (!agents.length) { clear(box, h('p', { class: 'muted' }, 'No agents in this project.')); return; }
  clear(box, h('ul', { class: 'agent-list' }, agents.map((a) => h('li', {},
    h('span', { class: 'agent-name' }, a.name), h('span', { class: 'muted small' }, a.persona_name),
    statusPill(a.status),
    a.current_bead ? h('a', { href: beadHref(a.current_bead), class: 'small' }, a.current_bead) : h('span', { class: 'muted small' }, 'no bead')))));
}

function eventSummary(ev) {
  const d = ev.data || {};
  if (d.trigger) return `${d.name}: ${d.trigger.result.replace('_', ' ')}${d.trigger.bead_created ? ` → ${d.trigger.bead_created}` : ''}`;
  if (d.motivation) return `${d.motivation.name}: ${d.motivation.status}`;
  if (d.bead) return d.bead.title;
  if (d.run) return `run #${d.run.id} ${d.run.state}${d.run.terminal_reason ? ` (${d.run.terminal_reason})` : ''}`;
  if (d.iteration != null) return `run #${d.run_id}: iteration ${d.iteration}/${d.max_iterations}`;
  if (d.decision_id) return `${d.decision_id}${d.decision ? `: ${d.decision}` : ''}${d.reason ? ` — ${d.reason}` : ''}`;
  if (d.run_id) return `run #${d.run_id}${d.attempt ? ` (attempt ${d.attempt})` : ''}`;
  if (d.to) return `${d.from || '?'} → ${d.to}`;
  if (d.comment) return d.comment.content;
  if (d.agent) return `${d.agent.name}: ${d.agent.status}`;
  if (d.provider) return `${d.provider.id}: ${d.provider.status}`;
  if (d.project) return d.project.name;
  if (d.title) return d.title;
  if (d.message) return d.message;
  return '';
}

function eventRow(ev, withRaw) {
  return h('li', { class: 'ev' },
    h('span', { class: 'ev-time', title: ev.timestamp }, clock(ev.timestamp)),
    h('span', { class: `ev-type t-${ev.type.split('.')[0]}` }, ev.type),
    ev.bead_id ? h('a', { href: beadHref(ev.bead_id), class: 'ev-bead' }, ev.bead_id) : h('span', { class: 'ev-bead muted' }, ev.source || ''),
    h('span', { class: 'ev-sum' }, eventSummary(ev)),
    withRaw ? h('details', { class: 'ev-raw' }, h('summary', {}, 'JSON'), h('pre', {}, JSON.stringify(ev, null, 2))) : null);
}

/* ---------- Agents ---------- */

function renderAgents() {
  const box = $('#agents-list');
  const agents = Array.from(state.agents.values()).sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
  $('#agents-sub').textContent = state.project ? `in ${state.project.name}` : '';
  if (!state.project) { clear(box, h('p', { class: 'empty-state' }, 'Choose a project.')); return; }
  if (!agents.length) { clear(box, h('p', { class: 'empty-state' }, 'No agents in this project.')); return; }
  clear(box, h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, ['Agent', 'Persona', 'Status', 'Provider', 'Current bead', 'Last active', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, agents.map((a) => {
      const paused = a.status === 'paused';
      return h('tr', {},
        h('td', { 'data-label': 'Agent' }, h('strong', {}, a.name), h('div', { class: 'muted small' }, a.id)),
        h('td', { 'data-label': 'Persona' }, a.persona_name, a.role ? h('div', { class: 'muted small' }, a.role) : null),
        h('td', { 'data-label': 'Status' }, statusPill(a.status)),
        h('td', { 'data-label': 'Provider' }, a.provider_id || h('span', { class: 'muted' }, 'none')),
        h('td', { 'data-label': 'Current bead' }, a.current_bead ? h('a', { href: beadHref(a.current_bead) }, a.current_bead) : h('span', { class: 'muted' }, '—')),
        h('td', { 'data-label': 'Last active' }, time(a.last_active)),
        h('td', { class: 'actions-cell' }, h('button', {
          type: 'button', class: 'btn small', 'aria-label': `${paused ? 'Resume' : 'Pause'} ${a.name}`,
          onclick: () => setAgentStatus(a, paused ? 'idle' : 'paused'),
        }, paused ? 'Resume' : 'Pause')));
    }))));
}

async function setAgentStatus(a, status) {
  const err = $('#agents-error');
  err.hidden = true;
  try {
    const agent = await patch(`/agents/${enc(a.id)}`, { status });
    state.agents.set(agent.id, agent);
    emit('agents');
  } catch (e) {
    err.textContent = `Could not ${status === 'paused' ? 'pause' : 'resume'} ${a.name}: ${e.message}`;
    err.hidden = false;
  }
}

/* ---------- Personas ---------- */

let personas = [];
let personaShown = null;

async function loadPersonas() {
  const list = $('#persona-list');
  try {
    personas = await get('/personas');
  } catch (e) {
    clear(list, h('li', { class: 'muted' }, `Could not load personas: ${e.message}`));
    return;
  }
  if (!personas.length) { clear(list, h('li', { class: 'muted' }, 'No personas.')); clear($('#persona-detail'), h('p', { class: 'muted' }, 'Nothing to show.')); return; }
  clear(list, personas.map((p) => h('li', {}, h('button', {
    type: 'button', class: 'side-item', 'aria-current': p.name === personaShown ? 'true' : 'false', dataset: { name: p.name },
    onclick: () => showPersona(p.name),
  }, h('span', {}, p.metadata && p.metadata.role ? p.metadata.role : p.name), h('span', { class: 'muted small' }, p.name)))));
  showPersona(personaShown && personas.some((p) => p.name === personaShown) ? personaShown : personas[0].name, false);
}

async function showPersona(name, focus = true) {
  personaShown = name;
  document.querySelectorAll('#persona-list .side-item').forEach((b) => b.setAttribute('aria-current', String(b.dataset.name === name)));
  const box = $('#persona-detail');
  clear(box, h('p', { class: 'muted' }, 'Loading…'));
  let p;
  try { p = await get(`/personas/${enc(name)}`); } catch (e) { clear(box, h('p', { class: 'form-error' }, e.message)); return; }
  if (personaShown !== name) return;
  const m = p.metadata || {};
  const heading = h('h2', { tabindex: '-1' }, m.role || p.name);
  clear(box,
    h('div', { class: 'view-head' }, heading,
      h('button', { type: 'button', class: 'btn', onclick: () => editPersona(p) }, 'Edit')),
    h('p', { class: 'muted small' }, [p.name, m.autonomy_level ? `autonomy: ${m.autonomy_level}` : null, m.version ? `v${m.version}` : null, p.source ? `source: ${p.source}` : null].filter(Boolean).join(' · ')),
    h('p', {}, p.description || h('span', { class: 'muted' }, 'No description.')),
    (m.specialties || []).length ? h('p', { class: 'tags' }, m.specialties.map((s) => h('span', { class: 'tag' }, s))) : null,
    h('h3', {}, 'Instructions'),
    p.instructions ? h('pre', { class: 'instructions' }, p.instructions) : h('p', { class: 'muted' }, 'No instructions.'));
  if (focus) heading.focus();
}

function editPersona(p) {
  const box = $('#persona-detail');
  const form = h('form', { class: 'stack', novalidate: true },
    h('h2', {}, `Edit ${p.name}`),
    h('div', { class: 'field' }, h('label', { for: 'pe-desc' }, 'Description'), h('textarea', { id: 'pe-desc', name: 'description', rows: 3, value: p.description || '' })),
    h('div', { class: 'field' }, h('label', { for: 'pe-instr' }, 'Instructions (Markdown)'), h('textarea', { id: 'pe-instr', name: 'instructions', rows: 18, class: 'mono', value: p.instructions || '' })),
    h('div', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'btn', onclick: () => showPersona(p.name) }, 'Cancel'),
      h('button', { type: 'submit', class: 'btn primary' }, 'Save persona')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formError(form, null);
    setBusy(form, true);
    try {
      await put(`/personas/${enc(p.name)}`, { description: form.elements.description.value, instructions: form.elements.instructions.value });
      showPersona(p.name);
    } catch (err) {
      formError(form, err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(form, false);
    }
  });
  clear(box, form);
  form.elements.description.focus();
}

/* ---------- Providers ---------- */

let providers = [];
let providerStream = null;

async function loadProviders() {
  try {
    providers = await get('/providers');
    renderProviders();
  } catch (e) {
    clear($('#providers-list'), h('p', { class: 'form-error' }, `Could not load providers: ${e.message}`));
  }
}

function renderProviders() {
  const box = $('#providers-list');
  if (!providers.length) {
    clear(box, h('div', { class: 'empty-state' }, h('p', { class: 'big' }, 'No providers yet'),
      h('p', { class: 'muted' }, 'Register an OpenAI-compatible endpoint below; agents stay paused until one is healthy.')));
    return;
  }
  clear(box, h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, ['Provider', 'Endpoint', 'Model', 'Status', 'Latency', 'Last check', 'Last error', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, providers.map((p) => h('tr', {},
      h('td', { 'data-label': 'Provider' }, h('strong', {}, p.id), p.has_api_key ? h('div', { class: 'muted small' }, 'API key set') : null),
      h('td', { 'data-label': 'Endpoint', class: 'break' }, p.endpoint),
      h('td', { 'data-label': 'Model' }, p.model || p.configured_model || h('span', { class: 'muted' }, '—')),
      h('td', { 'data-label': 'Status' }, statusPill(p.status)),
      h('td', { 'data-label': 'Latency' }, p.last_heartbeat_latency_ms == null ? '—' : `${p.last_heartbeat_latency_ms} ms`),
      h('td', { 'data-label': 'Last check' }, time(p.last_heartbeat_at)),
      h('td', { 'data-label': 'Last error', class: 'break' }, p.last_heartbeat_error || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'actions-cell' }, deleteButton(p)))))));
}

function deleteButton(p) {
  let armed = null;
  const btn = h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Delete provider ${p.id}` }, 'Delete');
  btn.addEventListener('click', async () => {
    if (!armed) {
      btn.textContent = 'Confirm delete';
      armed = setTimeout(() => { armed = null; btn.textContent = 'Delete'; }, 4000);
      return;
    }
    clearTimeout(armed);
    try {
      await del(`/providers/${enc(p.id)}`);
      providers = providers.filter((x) => x.id !== p.id);
      renderProviders();
    } catch (e) {
      btn.textContent = 'Delete';
      armed = null;
      formError($('#provider-form'), `Could not delete ${p.id}: ${e.message}`);
    }
  });
  return btn;
}

async function registerProvider(e) {
  e.preventDefault();
  const form = e.currentTarget;
  formError(form, null);
  const body = { id: form.elements.id.value.trim(), endpoint: form.elements.endpoint.value.trim() };
  if (form.elements.model.value.trim()) body.model = form.elements.model.value.trim();
  if (form.elements.api_key.value) body.api_key = form.elements.api_key.value;
  setBusy(form, true);
  try {
    const p = await post('/providers', body);
    providers = providers.filter((x) => x.id !== p.id).concat(p);
    renderProviders();
    form.reset();
  } catch (err) {
    formError(form, err instanceof ApiError ? err.message : String(err));
  } finally {
    setBusy(form, false);
  }
}

function onProviderEvent(ev) {
  const p = ev.data && ev.data.provider;
  if (ev.type === 'provider.deleted') providers = providers.filter((x) => x.id !== (p ? p.id : ev.data.id));
  else if (p) {
    const i = providers.findIndex((x) => x.id === p.id);
    if (i >= 0) providers[i] = { ...providers[i], ...p }; else providers.push(p);
  }
  renderProviders();
}

// Provider events belong to no project: while the tab is open, a second stream carries them.
function providersActive(active) {
  if (active && !providerStream) {
    providerStream = new LiveStream('/api/v1/events/stream?type=provider.updated', { types: ['provider.updated'], onEvent: onProviderEvent });
    loadProviders();
  } else if (!active && providerStream) {
    providerStream.close();
    providerStream = null;
  }
}

/* ---------- Events ---------- */

const MAX_EVENTS = 500;
let paused = false;
const seenTypes = new Set();

function eventVisible(ev) {
  const t = $('#ev-type').value;
  return !t || ev.type === t;
}

function renderEvents() {
  const list = $('#ev-list');
  const shown = state.events.filter(eventVisible).slice(-200).reverse();
  $('#ev-note').textContent = state.project ? `Live events of ${state.project.name}, newest first.` : '';
  clear(list, shown.length ? shown.map((ev) => eventRow(ev, true)) : h('li', { class: 'muted empty-row' }, 'No events yet.'));
}

function noteType(t) {
  if (seenTypes.has(t)) return false;
  seenTypes.add(t);
  fillSelect($('#ev-type'), 1, Array.from(seenTypes).sort().map((x) => [x, x]));
  return true;
}

export function pushEvent(ev) {
  state.events.push(ev);
  if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
  noteType(ev.type);
  if (paused || !eventVisible(ev)) return;
  const list = $('#ev-list');
  const empty = list.querySelector('.empty-row');
  if (empty) empty.remove();
  list.prepend(eventRow(ev, true));
  while (list.children.length > 200) list.lastElementChild.remove();
}

export function resetEvents(events) {
  state.events = events.slice(-MAX_EVENTS);
  seenTypes.clear();
  fillSelect($('#ev-type'), 1, []);
  for (const ev of state.events) noteType(ev.type);
  renderEvents();
}

export function initViews() {
  on('project', () => { renderHome(); renderAgents(); });
  on('beads', renderHome);
  on('agents', () => { renderHomeAgents(); renderAgents(); });
  on('tab', (tab) => {
    if (tab === 'personas' && !personas.length) loadPersonas();
    providersActive(tab === 'providers');
  });
  on('event', (ev) => {
    if (ev.type === 'persona.updated' && personas.length) loadPersonas();
  });
  $('#provider-form').addEventListener('submit', registerProvider);
  $('#ev-type').addEventListener('change', renderEvents);
  $('#ev-pause').addEventListener('click', (e) => {
    paused = !paused;
    e.currentTarget.setAttribute('aria-pressed', String(paused));
    e.currentTarget.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) renderEvents();
  });
  $('#ev-clear').addEventListener('click', () => { state.events = []; renderEvents(); });
  renderHome();
}
