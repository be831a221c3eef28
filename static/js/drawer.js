// The bead drawer: details, dependencies, context, the comment thread and the actions (edit,
// claim, redispatch, escalate, close).  Runs, action log and conversation are runs.js,
// actionlog.js and conversation.js, told which bead is shown by emit('drawer-bead', id).
import { $, $$, h, clear, time, formError, setBusy, showMessage } from './dom.js';
import { get, post, patch, enc, ApiError } from './api.js';
import { state, on, emit, upsertBead, STATUS_LABEL, PRIORITY_LABEL, agentName } from './store.js';
import { beadHref } from './kanban.js';

let current = null; // bead id shown
let returnFocus = null;
let loadSeq = 0;
const commentNodes = new Map(); // comment id -> li

export function drawerBead() { return current; }

const showError = (msg) => showMessage($('#dr-error'), msg);
const showNote = (msg) => showMessage($('#dr-note'), msg);

function link(id) {
  return h('a', { href: beadHref(id), class: 'dep' }, id);
}

function depRow(label, ids) {
  if (!ids || (Array.isArray(ids) && !ids.length)) return null;
  const list = Array.isArray(ids) ? ids : [ids];
  return [h('dt', {}, label), h('dd', {}, list.map((id) => [link(id), ' ']))];
}

function renderDetails(b) {
  $('#dr-id').textContent = b.id;
  const st = $('#dr-status');
  st.textContent = STATUS_LABEL[b.status] || b.status;
  st.className = `badge s-${b.status}`;
  $('#dr-title').textContent = b.title;
  const ctx = Object.entries(b.context || {});
  const deps = [
    depRow('Blocked by', b.blocked_by), depRow('Blocks', b.blocks), depRow('Parent', b.parent),
    depRow('Children', b.children), depRow('Related', b.related_to),
  ].filter(Boolean);
  clear($('#dr-details'),
    h('dl', { class: 'meta' },
      h('dt', {}, 'Priority'), h('dd', {}, h('span', { class: `prio p${b.priority}` }, PRIORITY_LABEL[b.priority] ?? String(b.priority))),
      h('dt', {}, 'Type'), h('dd', {}, b.type),
      h('dt', {}, 'Assignee'), h('dd', {}, b.assigned_to ? `${agentName(b.assigned_to)} (${b.assigned_to})` : h('span', { class: 'muted' }, 'unassigned')),
      h('dt', {}, 'Created'), h('dd', {}, time(b.created_at)),
      h('dt', {}, 'Updated'), h('dd', {}, time(b.updated_at)),
      b.closed_at ? [h('dt', {}, 'Closed'), h('dd', {}, time(b.closed_at))] : null),
    h('h3', {}, 'Description'),
    b.description ? h('p', { class: 'prose' }, b.description) : h('p', { class: 'muted' }, b.description === undefined ? 'Loading…' : 'No description.'),
    (b.tags || []).length ? [h('h3', {}, 'Tags'), h('p', { class: 'tags' }, b.tags.map((t) => h('span', { class: 'tag' }, t)))] : null,
    h('h3', {}, 'Dependencies'),
    deps.length ? h('dl', { class: 'meta' }, deps) : h('p', { class: 'muted' }, 'None.'),
    ctx.length ? [h('h3', {}, 'Context'), h('dl', { class: 'meta ctx' }, ctx.map(([k, v]) => [
      h('dt', {}, k), h('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))]))] : null);
  renderActions(b);
}

function renderActions(b) {
  const closed = b.status === 'closed';
  clear($('#dr-actions'),
    h('button', { type: 'button', class: 'btn', onclick: () => toggleForm('#dr-edit', () => {
      $('#de-title').value = b.title; $('#de-priority').value = String(b.priority); $('#de-title').focus();
    }) }, 'Edit'),
    closed ? null : h('button', { type: 'button', class: 'btn', onclick: () => toggleForm('#dr-claim', () => {
      clear($('#dc-agents'), Array.from(state.agents.values()).map((a) => h('option', { value: a.id }, `${a.name}`)));
      $('#dc-agent').focus();
    }) }, 'Claim'),
    h('button', { type: 'button', class: 'btn', onclick: () => toggleForm('#dr-redispatch', () => $('#dd-reason').focus()) }, 'Redispatch'),
    closed || b.type === 'decision' ? null
      : h('button', { type: 'button', class: 'btn', onclick: () => toggleForm('#dr-escalate', () => $('#dx-reason').focus()) }, 'Escalate'),
    closed
      ? h('button', { type: 'button', class: 'btn', onclick: () => setStatus('open') }, 'Reopen')
      : h('button', { type: 'button', class: 'btn primary', onclick: () => setStatus('closed') }, 'Close bead'));
}

function toggleForm(sel, fill) {
  const form = $(sel);
  const show = form.hidden;
  $$('#drawer .inline-form').forEach((f) => { f.hidden = true; });
  if (show) { form.hidden = false; fill(); }
}

async function act(fn) {
  showError(null);
  showNote(null);
  try {
    const bead = await fn();
    if (bead && bead.id) { upsertBead(bead); emit('beads'); if (bead.id === current) renderDetails(state.beads.get(bead.id)); }
    $$('#drawer .inline-form').forEach((f) => { f.hidden = true; });
    return true;
  } catch (e) {
    showError(e instanceof ApiError ? e.message : String(e));
    return false;
  }
}

async function escalate(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const id = current;
  formError(form, null);
  showNote(null);
  setBusy(form, true);
  try {
    const d = await post(`/beads/${enc(id)}/escalate`, { reason: $('#dx-reason').value.trim() });
    form.hidden = true;
    $('#dx-reason').value = '';
    if (id === current) showNote(`Decision ${d.id} asked; ${id} waits for it (see Decisions).`);
    refetch(id, loadSeq);
  } catch (err) {
    formError(form, err instanceof ApiError ? err.message : String(err));
  } finally {
    setBusy(form, false);
  }
}

const setStatus = (status) => act(() => patch(`/beads/${enc(current)}`, { status }));

function renderComment(c) {
  const li = h('li', { class: 'comment', id: `comment-${c.id}` },
    h('div', { class: 'comment-head' },
      h('strong', {}, c.author_username || c.author_id || 'someone'), ' ', time(c.created_at),
      c.edited ? h('span', { class: 'muted' }, ' · edited') : null),
    h('p', { class: `prose${c.deleted ? ' muted' : ''}` }, c.deleted ? 'comment deleted' : c.content),
    h('button', { type: 'button', class: 'link-btn', onclick: (e) => replyForm(li, c, e.currentTarget) }, 'Reply'),
    h('ul', { class: 'thread replies' }));
  commentNodes.set(c.id, li);
  return li;
}

function addComment(c) {
  if (commentNodes.has(c.id)) return;
  const parent = c.parent_id != null && commentNodes.get(c.parent_id);
  const list = parent ? parent.querySelector(':scope > .replies') : $('#dr-comments');
  const empty = $('#dr-comments > .empty');
  if (empty) empty.remove();
  list.append(renderComment(c));
}

function replyForm(li, c, btn) {
  const existing = li.querySelector(':scope > form');
  if (existing) { existing.remove(); return; }
  const id = `reply-${c.id}`;
  const ta = h('textarea', { id, rows: 2 });
  const form = h('form', { class: 'stack reply', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: id }, `Reply to ${c.author_username || c.author_id || 'comment'}`), ta),
    h('div', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'btn', onclick: () => { form.remove(); btn.focus(); } }, 'Cancel'),
      h('button', { type: 'submit', class: 'btn primary' }, 'Reply')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await sendComment(form, ta.value, c.id)) form.remove();
  });
  btn.after(form);
  ta.focus();
}

async function sendComment(form, content, parentId) {
  formError(form, null);
  setBusy(form, true);
  const bead = current;
  try {
    const body = { content };
    if (parentId != null) body.parent_id = parentId;
    const c = await post(`/beads/${enc(bead)}/comments`, body);
    if (bead === current) addComment(c);
    return true;
  } catch (e) {
    formError(form, e instanceof ApiError ? e.message : String(e));
    return false;
  } finally {
    setBusy(form, false);
  }
}

async function loadComments(id, seq) {
  try {
    const list = await get(`/beads/${enc(id)}/comments`);
    if (seq !== loadSeq) return;
    commentNodes.clear();
    clear($('#dr-comments'));
    const sorted = list.slice().sort((a, b) => a.id - b.id);
    if (!sorted.length) $('#dr-comments').append(h('li', { class: 'empty muted' }, 'No comments yet.'));
    for (const c of sorted) addComment(c);
  } catch (e) {
    if (seq === loadSeq) clear($('#dr-comments'), h('li', { class: 'empty muted' }, `Could not load comments: ${e.message}`));
  }
}

async function refetch(id, seq) {
  try {
    const bead = await get(`/beads/${enc(id)}`);
    if (seq !== loadSeq) return;
    upsertBead(bead);
    const b = state.beads.get(id) || bead;
    renderDetails(b.description === undefined ? bead : b);
  } catch (e) {
    if (seq !== loadSeq) return;
    if (e.status === 404) { showError(`Bead ${id} no longer exists.`); return; }
    showError(`Could not load ${id}: ${e.message}`);
  }
}

export function openDrawer(id) {
  const drawer = $('#drawer');
  if (current !== id) {
    loadSeq += 1;
    current = id;
    showError(null);
    showNote(null);
    $$('#drawer .inline-form').forEach((f) => { f.hidden = true; });
    $('#dr-comment').value = '';
    formError($('#dr-comment-form'), null);
    const known = state.beads.get(id);
    if (known) renderDetails({ ...known, description: known.description });
    else { $('#dr-id').textContent = id; $('#dr-title').textContent = 'Loading…'; clear($('#dr-details')); clear($('#dr-actions')); }
    clear($('#dr-comments'), h('li', { class: 'empty muted' }, 'Loading comments…'));
    refetch(id, loadSeq);
    loadComments(id, loadSeq);
    emit('drawer-bead', id);
  }
  if (drawer.hidden) {
    returnFocus = document.activeElement;
    drawer.hidden = false;
    document.body.classList.add('drawer-open');
  }
  $('#dr-title').focus();
}

export function closeDrawer(restoreFocus = true) {
  const drawer = $('#drawer');
  if (drawer.hidden) return;
  drawer.hidden = true;
  document.body.classList.remove('drawer-open');
  const id = current;
  current = null;
  loadSeq += 1;
  emit('drawer-bead', null);
  emit('drawer-closed', id);
  if (restoreFocus) {
    const card = id && document.querySelector(`#board [data-bead="${CSS.escape(id)}"]`);
    const target = card || (returnFocus && document.contains(returnFocus) ? returnFocus : null);
    if (target) target.focus();
  }
}

// Live: the stream tells us a bead or its comments changed.
function onEvent(ev) {
  if (!current || ev.bead_id !== current) return;
  if (ev.type === 'comment.created' && ev.data && ev.data.comment) addComment(ev.data.comment);
  else if (ev.type === 'comment.updated' || ev.type === 'comment.deleted') loadComments(current, loadSeq);
  else if (ev.type === 'bead.deleted') showError(`Bead ${current} was deleted.`);
  else if (ev.type.startsWith('bead.') && ev.type !== 'bead.completed') refetch(current, loadSeq);
}

export function initDrawer() {
  $('#dr-close').addEventListener('click', () => emit('close-drawer'));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('#drawer').hidden && !$('#new-bead').open) { e.preventDefault(); emit('close-drawer'); }
  });
  $$('#drawer [data-cancel]').forEach((b) => b.addEventListener('click', () => { b.closest('form').hidden = true; }));
  $('#dr-edit').addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => patch(`/beads/${enc(current)}`, { title: $('#de-title').value.trim(), priority: Number($('#de-priority').value) }));
  });
  $('#dr-claim').addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => post(`/beads/${enc(current)}/claim`, { agent_id: $('#dc-agent').value.trim() }));
  });
  $('#dr-redispatch').addEventListener('submit', (e) => {
    e.preventDefault();
    const reason = $('#dd-reason').value.trim();
    act(() => post(`/beads/${enc(current)}/redispatch`, reason ? { reason } : {}));
  });
  $('#dr-escalate').addEventListener('submit', escalate);
  $('#dr-comment-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await sendComment(e.currentTarget, $('#dr-comment').value, null)) $('#dr-comment').value = '';
  });
  on('event', onEvent);
}
