// The bead drawer's runs: every attempt at the bead (state, agent, iteration i/N, terminal
// reason, error, tokens and cost, start and end), kept live by the run.* events, with Cancel
// for a live run.  The chosen run (the newest unless a person picks another) is the one the
// action log shows: runs.js announces it with emit('run-chosen', id), and every sign of life of
// a run with emit('run-activity', id).
import { $, h, clear, time, keepFocus, showMessage, fmtNum, fmtUsd } from './dom.js';
import { get, post, enc, ApiError } from './api.js';
import { state, on, emit, agentName } from './store.js';

const LIVE = new Set(['queued', 'running']);
let bead = null;
let seq = 0;
let runs = new Map(); // id -> run
let chosen = null;
let pinned = false; // a person chose a run: new runs do not take the action log away

export function beadRuns() {
  return Array.from(runs.values()).sort((a, b) => b.id - a.id);
}

// Keeps the newer copy: a fetch that started before a run ended must not bring it back to life.
function upsert(run) {
  const old = runs.get(run.id);
  if (old && !LIVE.has(old.state) && LIVE.has(run.state)) return false;
  const merged = { ...old, ...run };
  if (old) merged.iterations = Math.max(old.iterations || 0, run.iterations || 0);
  runs.set(run.id, merged);
  return true;
}

function choose(id, byPerson) {
  if (byPerson) pinned = true;
  if (chosen === id) return;
  chosen = id;
  render();
  emit('run-chosen', id);
}

function followNewest() {
  const newest = beadRuns()[0];
  if (newest && (!pinned || chosen == null)) choose(newest.id, false);
}

function metaRows(r) {
  const tokens = `${fmtNum(r.prompt_tokens)} in · ${fmtNum(r.completion_tokens)} out${r.cached_tokens ? ` · ${fmtNum(r.cached_tokens)} cached` : ''}`;
  return [
    h('dt', {}, 'Agent'), h('dd', {}, r.agent_id ? `${agentName(r.agent_id)} (${r.persona_name || r.agent_id})` : '—'),
    h('dt', {}, 'Iteration'), h('dd', { class: 'run-iter' }, `${r.iterations ?? 0}/${r.max_iterations ?? '?'}`),
    h('dt', {}, 'Tokens'), h('dd', {}, tokens),
    h('dt', {}, 'Cost'), h('dd', {}, `${fmtUsd(r.cost_usd)}${r.llm_calls != null ? ` · ${fmtNum(r.llm_calls)} LLM call${r.llm_calls === 1 ? '' : 's'}` : ''}`),
    h('dt', {}, 'Started'), h('dd', {}, r.started_at ? time(r.started_at) : h('span', { class: 'muted' }, 'waiting for an executor')),
    r.finished_at ? [h('dt', {}, 'Finished'), h('dd', {}, time(r.finished_at))] : null,
  ];
}

// A run that ends well keeps the agent's closing words in `error`; only failures are errors.
function outcome(r) {
  if (!r.error) return null;
  if (r.state === 'succeeded') return h('p', { class: 'run-result' }, h('span', { class: 'muted' }, 'Result: '), r.error);
  return h('pre', { class: 'run-error' }, r.error);
}

function runItem(r) {
  const live = LIVE.has(r.state);
  return h('li', { class: `run${r.id === chosen ? ' chosen' : ''}`, dataset: { run: String(r.id) } },
    h('div', { class: 'run-head' },
      h('strong', {}, `Run #${r.id}`),
      h('span', { class: `pill st-${r.state}` }, r.state),
      r.terminal_reason ? h('span', { class: 'reason' }, r.terminal_reason.replace(/_/g, ' ')) : null,
      r.attempt > 1 ? h('span', { class: 'muted small' }, `attempt ${r.attempt}`) : null),
    h('dl', { class: 'meta run-meta' }, metaRows(r)),
    outcome(r),
    h('div', { class: 'run-buttons' },
      runs.size > 1 ? h('button', {
        type: 'button', class: 'btn small', 'aria-pressed': String(r.id === chosen),
        dataset: { focus: `choose-${r.id}` }, onclick: () => choose(r.id, true),
      }, 'Show its action log') : null,
      live ? h('button', {
        type: 'button', class: 'btn small danger', dataset: { focus: `cancel-${r.id}` }, onclick: () => cancel(r.id),
      }, 'Cancel run') : null));
}

function render() {
  const list = $('#dr-runs');
  const all = beadRuns();
  const decision = (state.beads.get(bead) || {}).type === 'decision';
  const none = decision ? 'No runs: a person makes this decision (see Decisions).' : 'No runs yet. The dispatcher starts one when an agent is free.';
  keepFocus(list, () => clear(list, all.length ? all.map(runItem) : h('li', { class: 'empty muted' }, none)));
}

async function cancel(id) {
  showMessage($('#dr-runs-error'), null);
  try {
    const run = await post(`/runs/${enc(id)}/cancel`);
    if (upsert(run)) render();
  } catch (e) {
    showMessage($('#dr-runs-error'), `Could not cancel run #${id}: ${e instanceof ApiError ? e.message : e}`);
  }
}

async function load(id, my) {
  try {
    const list = await get(`/beads/${enc(id)}/runs?limit=100`);
    if (my !== seq) return;
    for (const r of list) upsert(r);
    render();
    followNewest();
  } catch (e) {
    if (my === seq) clear($('#dr-runs'), h('li', { class: 'empty form-error' }, `Could not load runs: ${e.message}`));
  }
}

async function fetchRun(id) {
  const my = seq;
  try {
    const run = await get(`/runs/${enc(id)}`);
    if (my !== seq || run.bead_id !== bead) return;
    if (upsert(run)) render();
    followNewest();
  } catch (e) {
    if (my === seq) showMessage($('#dr-runs-error'), `Could not load run #${id}: ${e.message}`);
  }
}

// run.iteration carries the iteration; run.finished the whole run; the others only its id.
function onRunEvent(ev) {
  const d = ev.data || {};
  const id = d.run ? d.run.id : d.run_id;
  if (id == null) return;
  if (d.run) {
    if (upsert(d.run)) render();
    followNewest();
  } else if (ev.type === 'run.iteration' && runs.has(id)) {
    const r = runs.get(id);
    if (!LIVE.has(r.state)) return;
    Object.assign(r, { state: 'running', iterations: Math.max(r.iterations || 0, d.iteration || 0) });
    if (d.max_iterations) r.max_iterations = d.max_iterations;
    render();
  } else {
    fetchRun(id);
  }
  emit('run-activity', id);
}

function show(id) {
  seq += 1;
  bead = id;
  runs = new Map();
  chosen = null;
  pinned = false;
  showMessage($('#dr-runs-error'), null);
  if (!id) return;
  clear($('#dr-runs'), h('li', { class: 'empty muted' }, 'Loading runs…'));
  emit('run-chosen', null);
  load(id, seq);
}

export function initRuns() {
  on('drawer-bead', show);
  on('event', (ev) => { if (bead && ev.bead_id === bead && ev.type.startsWith('run.')) onRunEvent(ev); });
  on('agents', () => { if (bead && runs.size) render(); });
}
