// Home's "Recent activity": the project's activity feed (GET /api/v1/activity-feed), where
// repeats within five minutes are one row with a count ("× 3").  Refreshed when the project's
// event stream says something happened, so the page needs no extra stream for it.
import { $, h, clear, clock } from './dom.js';
import { get, enc, refresher } from './api.js';
import { state, on } from './store.js';
import { beadHref } from './kanban.js';

const SHOWN = 10;
const KINDS = ['bead', 'agent', 'project', 'provider', 'decision', 'motivation', 'workflow'];
let rows = [];

// "admin created 3 beads (latest: Fix the build)", "bob moved lm-4: open → blocked", …
function summary(a) {
  const m = a.metadata || {};
  const name = a.resource_title || a.resource_id;
  const id = a.resource_type === 'bead' && a.resource_title ? `${a.resource_id} ` : '';
  const what = (verb) => (a.is_aggregated && a.aggregation_count > 1 && ['bead.created', 'agent.spawned'].includes(a.event_type)
    ? `${verb} ${a.aggregation_count} ${a.resource_type}s (latest: ${name})` : `${verb} ${a.resource_type} ${id}${name}`);
  switch (a.event_type) {
    case 'bead.created': return `${a.actor_id} ${what('created')}`;
    case 'agent.spawned': return `${a.actor_id} ${what('spawned')}`;
    case 'bead.status_change': return `${a.actor_id} moved ${a.resource_id}: ${m.from || '?'} → ${m.to || '?'}`;
    case 'bead.assigned': return `${a.actor_id} assigned ${a.resource_id} to ${m.assigned_to}`;
    case 'comment.created': return `${a.actor_id} commented on ${a.bead_id}: ${m.excerpt || name}`;
    case 'decision.created': return `${a.actor_id} asked for decision ${a.resource_id}: ${m.reason || name}`;
    case 'decision.decided': return `${a.actor_id} decided ${a.resource_id}: ${m.decision}`;
    default: return `${a.actor_id} ${what(a.action.replaceAll('_', ' '))}${m.to ? ` (now ${m.to})` : ''}`;
  }
}

function row(a) {
  const text = h('span', { class: 'act-text', title: summary(a) }, summary(a));
  return h('li', { class: 'ev act', dataset: { activity: a.id } },
    h('span', { class: 'ev-time', title: a.updated_at }, clock(a.updated_at)),
    h('span', { class: `ev-type t-${a.resource_type}` }, a.event_type),
    h('span', { class: 'ev-sum' }, a.bead_id ? h('a', { href: beadHref(a.bead_id), class: 'act-link' }, text) : text,
      a.is_aggregated ? h('span', { class: 'agg', title: `${a.aggregation_count} times within five minutes` }, `× ${a.aggregation_count}`) : null));
}

function render() {
  const list = $('#home-activity');
  if (!state.project) { clear(list); return; }
  clear(list, rows.length ? rows.map(row) : h('li', { class: 'muted' }, 'Nothing has happened yet.'));
}

const load = refresher(async () => {
  const p = state.project;
  if (!p) { rows = []; render(); return; }
  const got = await get(`/activity-feed?project_id=${enc(p.id)}&limit=${SHOWN}`);
  if (state.project && state.project.id === p.id) { rows = got; render(); }
});

export function initActivity() {
  on('project', () => { rows = []; render(); load(); });
  on('event', (ev) => {
    if (KINDS.includes(ev.type.split('.')[0]) || ev.type === 'comment.created') load();
  });
}
