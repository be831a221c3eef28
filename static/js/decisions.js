// Decisions: the questions put to a person (decision beads), waiting or decided, and the form
// that decides one (approve / deny / needs more info, with a rationale).  While the tab is
// shown, decision.* events and changes to decision beads reload the list; cards that stay keep
// what is being typed in them.  The tab's badge counts waiting decisions from the bead store.
import { $, h, time, formError, setBusy, showMessage, syncChildren } from './dom.js';
import { getAll, post, enc, ApiError, refresher } from './api.js';
import { state, on, PRIORITY_LABEL } from './store.js';
import { beadHref } from './kanban.js';

const DECIDER_KEY = 'loom.decider';
const VERDICTS = [
  ['approve', 'Approve', 'the waiting bead is closed'],
  ['deny', 'Deny', 'it goes back to triage, open and unassigned'],
  ['needs_more_info', 'Needs more info', 'it goes back to its agent with your rationale'],
];
let active = false;
let stale = true;
let gen = 0;
const cards = new Map(); // id -> {li, key}

function waitingLink(d) {
  if (!d.escalated_from) return null;
  const b = state.beads.get(d.escalated_from);
  return h('p', { class: 'small' }, 'Waiting: ', h('a', { href: beadHref(d.escalated_from), class: 'dep' }, d.escalated_from),
    b ? ` ${b.title}` : '');
}

function verdictField(d) {
  return h('fieldset', { class: 'verdicts' },
    h('legend', {}, 'Verdict'),
    VERDICTS.map(([value, label, hint]) => {
      const id = `dv-${d.id}-${value}`;
      return h('div', { class: 'radio' },
        h('input', { type: 'radio', id, name: 'decision', value }),
        h('label', { for: id }, h('strong', {}, label), h('span', { class: 'muted small' }, ` — ${hint}`)));
    }));
}

function decideForm(d) {
  const rid = `dr-rat-${d.id}`;
  const did = `dr-dec-${d.id}`;
  const form = h('form', { class: 'stack decide', novalidate: true, 'aria-label': `Decide ${d.id}` },
    verdictField(d),
    h('div', { class: 'field' }, h('label', { for: rid }, 'Rationale'), h('textarea', { id: rid, name: 'rationale', rows: 3 })),
    h('div', { class: 'field narrow-field' }, h('label', { for: did }, 'Decided by ', h('span', { class: 'muted' }, '(optional)')),
      h('input', { id: did, name: 'decider_id', autocomplete: 'off', value: localStorage.getItem(DECIDER_KEY) || '' })),
    h('div', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary' }, 'Record decision')));
  form.addEventListener('submit', (e) => { e.preventDefault(); decide(d, form); });
  return form;
}

function outcome(d) {
  const label = (VERDICTS.find(([v]) => v === d.decision) || [null, d.decision || 'closed'])[1];
  return h('dl', { class: 'meta' },
    h('dt', {}, 'Verdict'), h('dd', {}, h('span', { class: `pill v-${d.decision || 'none'}` }, label)),
    h('dt', {}, 'Rationale'), h('dd', { class: 'prose' }, d.rationale || h('span', { class: 'muted' }, 'none given')),
    d.decider_id ? [h('dt', {}, 'Decided by'), h('dd', {}, d.decider_id)] : null,
    d.decided_at ? [h('dt', {}, 'Decided'), h('dd', {}, time(d.decided_at))] : null);
}

function card(d) {
  const open = d.status !== 'closed';
  const hid = `dec-${d.id}-h`;
  return h('li', { class: `dec-card${open ? ' open' : ''}`, dataset: { decision: d.id }, 'aria-labelledby': hid },
    h('div', { class: 'card-top' },
      h('span', { class: `prio p${d.priority}` }, PRIORITY_LABEL[d.priority] ?? `P${d.priority}`),
      h('a', { class: 'card-id', href: beadHref(d.id) }, d.id),
      h('span', { class: 'muted small' }, 'asked '), time(d.created_at)),
    h('h2', { id: hid }, d.title),
    h('p', { class: 'prose question' }, d.question || h('span', { class: 'muted' }, 'No question given.')),
    waitingLink(d),
    open ? decideForm(d) : outcome(d));
}

// A card is rebuilt only when its decision changed, so a half-written rationale survives.
function cardFor(d) {
  const key = `${d.status}|${d.decision}|${d.updated_at}`;
  const old = cards.get(d.id);
  if (old && (old.key === key || (d.status !== 'closed' && old.open))) return old.li;
  const li = card(d);
  cards.set(d.id, { li, key, open: d.status !== 'closed' });
  return li;
}

function render(list) {
  const box = $('#dec-list');
  const ids = new Set(list.map((d) => d.id));
  for (const id of cards.keys()) if (!ids.has(id)) cards.delete(id);
  if (!list.length) {
    const which = $('#dec-status').value;
    syncChildren(box, [h('li', { class: 'empty-state' },
      h('p', { class: 'big' }, which === 'open' ? 'Nothing waits for a decision' : 'No decisions yet'),
      h('p', { class: 'muted' }, 'Agents escalate here when they need a person; so does Escalate in a bead’s drawer.'))]);
    return;
  }
  syncChildren(box, list.map(cardFor));
}

async function load() {
  const my = ++gen;
  if (!state.project) { render([]); return; }
  try {
    const { rows } = await getAll(`/decisions?project_id=${enc(state.project.id)}&status=${enc($('#dec-status').value)}`, 1000);
    if (my !== gen) return;
    showMessage($('#dec-error'), null);
    stale = false;
    render(rows);
  } catch (e) {
    if (my === gen) showMessage($('#dec-error'), `Could not load decisions: ${e.message}`);
  }
}

const refresh = refresher(load);

async function decide(d, form) {
  formError(form, null);
  const verdict = form.elements.decision.value;
  if (!verdict) { formError(form, 'Choose a verdict first.'); return; }
  const body = { decision: verdict, rationale: form.elements.rationale.value.trim() };
  const decider = form.elements.decider_id.value.trim();
  if (decider) body.decider_id = decider;
  setBusy(form, true);
  try {
    const done = await post(`/decisions/${enc(d.id)}/decide`, body);
    localStorage.setItem(DECIDER_KEY, decider);
    showMessage($('#dec-note'), `${done.id}: ${done.decision.replace(/_/g, ' ')} recorded${done.escalated_from ? ` for ${done.escalated_from}` : ''}.`);
    cards.delete(d.id);
    refresh();
  } catch (e) {
    formError(form, e instanceof ApiError ? e.message : String(e));
  } finally {
    setBusy(form, false);
  }
}

function countBadge() {
  let n = 0;
  for (const b of state.beads.values()) if (b.type === 'decision' && b.status !== 'closed') n += 1;
  const el = $('#dec-count');
  el.textContent = String(n);
  el.hidden = !n;
  el.setAttribute('aria-label', `${n} waiting`);
}

function concerns(ev) {
  if (ev.type.startsWith('decision.')) return true;
  if (!ev.type.startsWith('bead.')) return false;
  const d = ev.data || {};
  const b = d.bead || state.beads.get(ev.bead_id);
  return !!b && b.type === 'decision';
}

export function initDecisions() {
  on('tab', (tab) => {
    active = tab === 'decisions';
    if (active && stale) refresh();
  });
  on('project', () => { cards.clear(); showMessage($('#dec-note'), null); stale = true; if (active) refresh(); });
  on('beads', countBadge);
  on('event', (ev) => {
    if (!concerns(ev)) return;
    stale = true;
    if (active) refresh();
  });
  $('#dec-status').addEventListener('change', () => { cards.clear(); showMessage($('#dec-note'), null); refresh(); });
}
