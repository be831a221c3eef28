// Kanban: the project's beads in status columns, filters, and the "New bead" dialog.
import { $, h, clear, formError, setBusy, fillSelect } from './dom.js';
import { post, ApiError } from './api.js';
import { state, on, emit, upsertBead, STATUS_LABEL, PRIORITY_LABEL, TYPES, agentName, beadNumber } from './store.js';

const COLUMNS = ['open', 'in_progress', 'blocked', 'closed', 'deferred'];
const CLOSED_SHOWN = 100;
let scheduled = false;

export function beadHref(id) {
  return `#/${encodeURIComponent(state.project ? state.project.id : '')}/kanban/${encodeURIComponent(id)}`;
}

function filters() {
  return {
    text: $('#f-text').value.trim().toLowerCase(),
    priority: $('#f-priority').value,
    type: $('#f-type').value,
    tag: $('#f-tag').value,
    assignee: $('#f-assignee').value,
    deferred: $('#f-deferred').checked,
  };
}

function matches(b, f) {
  if (f.priority !== '' && String(b.priority) !== f.priority) return false;
  if (f.type && b.type !== f.type) return false;
  if (f.tag && !(b.tags || []).includes(f.tag)) return false;
  if (f.assignee === '-' && b.assigned_to) return false;
  if (f.assignee && f.assignee !== '-' && b.assigned_to !== f.assignee) return false;
  if (f.text && !b.id.toLowerCase().includes(f.text) && !(b.title || '').toLowerCase().includes(f.text)) return false;
  return true;
}

function order(a, b) {
  if (a.status === 'closed' && b.status === 'closed') return (b.closed_at || b.updated_at || '').localeCompare(a.closed_at || a.updated_at || '');
  return (a.priority - b.priority) || (beadNumber(a.id) - beadNumber(b.id));
}

export function card(b) {
  const assignee = b.assigned_to ? agentName(b.assigned_to) : null;
  return h('li', { class: 'card-item' },
    h('a', { class: `card p${b.priority}`, href: beadHref(b.id), dataset: { bead: b.id } },
      h('span', { class: 'card-top' },
        h('span', { class: 'card-id' }, b.id),
        h('span', { class: `prio p${b.priority}`, title: `Priority ${b.priority}` }, PRIORITY_LABEL[b.priority] ?? `P${b.priority}`),
        b.type && b.type !== 'task' ? h('span', { class: 'type' }, b.type) : null),
      h('span', { class: 'card-title' }, b.title),
      h('span', { class: 'card-meta' },
        assignee ? h('span', { class: 'assignee', title: `Assigned to ${b.assigned_to}` }, `@${assignee}`) : h('span', { class: 'muted' }, 'unassigned'),
        (b.tags || []).slice(0, 3).map((t) => h('span', { class: 'tag' }, t)))));
}

export function renderBoard() {
  scheduled = false;
  const board = $('#board');
  const f = filters();
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.bead : null;
  const all = Array.from(state.beads.values());
  const empty = $('#board-empty');
  if (!state.project) {
    empty.hidden = false;
    clear(empty, h('p', {}, 'Choose a project to see its beads.'));
    board.replaceChildren();
    return;
  }
  empty.hidden = all.length > 0;
  if (!all.length) clear(empty, h('p', { class: 'big' }, 'No beads yet'), h('p', { class: 'muted' }, 'Create the first one with “New bead”.'));
  const byStatus = new Map(COLUMNS.map((c) => [c, []]));
  for (const b of all) if (byStatus.has(b.status) && matches(b, f)) byStatus.get(b.status).push(b);
  const cols = COLUMNS.filter((c) => c !== 'deferred' || f.deferred);
  board.classList.toggle('five', cols.length === 5);
  board.replaceChildren(...cols.map((c) => {
    const items = byStatus.get(c).sort(order);
    const shown = c === 'closed' ? items.slice(0, CLOSED_SHOWN) : items;
    const hid = `col-${c}-h`;
    return h('section', { class: `column col-${c}`, 'aria-labelledby': hid, dataset: { status: c } },
      h('h2', { id: hid }, STATUS_LABEL[c], h('span', { class: 'count', 'aria-label': `${items.length} beads` }, String(items.length))),
      shown.length ? h('ul', { class: 'cards' }, shown.map(card)) : h('p', { class: 'col-empty' }, all.length ? 'Nothing here' : '—'),
      items.length > shown.length ? h('p', { class: 'muted small' }, `${items.length - shown.length} older not shown`) : null);
  }));
  if (focused) {
    const el = board.querySelector(`[data-bead="${CSS.escape(focused)}"]`);
    if (el) el.focus();
  }
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(renderBoard);
}

function refreshFilterOptions() {
  const tags = new Set();
  const types = new Set(TYPES);
  for (const b of state.beads.values()) {
    (b.tags || []).forEach((t) => tags.add(t));
    if (b.type) types.add(b.type);
  }
  fillSelect($('#f-type'), 1, Array.from(types).sort().map((t) => [t, t]));
  fillSelect($('#f-tag'), 1, Array.from(tags).sort().map((t) => [t, t]));
  fillSelect($('#f-assignee'), 2, Array.from(state.agents.values()).map((a) => [a.id, `${a.name} (${a.id})`]));
}

function openNewBead() {
  const dlg = $('#new-bead');
  const form = $('#new-bead-form');
  form.reset();
  formError(form, null);
  dlg.showModal();
  $('#nb-title').focus();
}

async function createBead(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  formError(form, null);
  const tags = $('#nb-tags').value.split(',').map((t) => t.trim()).filter(Boolean);
  const body = {
    project_id: state.project.id,
    title: $('#nb-title').value.trim(),
    description: $('#nb-desc').value,
    priority: Number($('#nb-priority').value),
    type: $('#nb-type').value,
  };
  if (tags.length) body.tags = tags;
  setBusy(form, true);
  try {
    const bead = await post('/beads', body);
    upsertBead(bead);
    emit('beads');
    $('#new-bead').close();
    const el = document.querySelector(`#board [data-bead="${CSS.escape(bead.id)}"]`);
    if (el) el.focus();
  } catch (e) {
    formError(form, e instanceof ApiError ? e.message : String(e));
  } finally {
    setBusy(form, false);
  }
}

export function initKanban() {
  $('#filters').addEventListener('input', schedule);
  $('#filters').addEventListener('submit', (e) => e.preventDefault());
  $('#new-bead-btn').addEventListener('click', openNewBead);
  $('#new-bead-form').addEventListener('submit', createBead);
  $('#new-bead [data-close]').addEventListener('click', () => $('#new-bead').close());
  on('beads', () => { refreshFilterOptions(); schedule(); });
  on('agents', () => { refreshFilterOptions(); schedule(); });
  on('project', () => { $('#new-bead-btn').disabled = !state.project; });
}
