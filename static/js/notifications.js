// The bell in the header: the signed-in user's unread count, live from their own
// /api/v1/notifications/stream; a panel with the newest notifications (mark read, mark all read);
// and the notification preferences form in the Account tab.
import { $, $$, h, clear, time, formError, setBusy, showMessage } from './dom.js';
import { request, post, put, get, refresher } from './api.js';
import { state, on } from './store.js';
import { LiveStream } from './live.js';

// What a person can subscribe to: the event_type of the notifications they get.
const KINDS = [
  ['bead.assigned', 'Beads assigned to me'],
  ['bead.status_change', 'My beads change state'],
  ['decision.created', 'Decisions I may make'],
  ['bead.created', 'P0 beads in my projects'],
  ['comment.mention', '@mentions of me'],
];
const SHOWN = 20;

const items = new Map(); // id -> notification, the newest SHOWN plus what arrived since
let unread = 0;

function setCount(n) {
  unread = Math.max(0, n);
  const badge = $('#notif-count');
  badge.textContent = unread > 99 ? '99+' : String(unread);
  badge.hidden = unread === 0;
  $('#notif-btn').setAttribute('aria-label', unread ? `Notifications, ${unread} unread` : 'Notifications');
  $('#notif-all').disabled = unread === 0;
}

// The list and the count from the API: after every (re)connect and every event, so a replay
// after a reconnect can never leave an old count behind.
const reload = refresher(async () => {
  const { data, headers } = await request('GET', `/notifications?limit=${SHOWN}`);
  items.clear();
  for (const n of data) items.set(n.id, n);
  setCount(Number(headers.get('X-Unread-Count')) || 0);
  renderList();
});

function row(n) {
  const unreadNow = n.status === 'unread';
  return h('li', { class: `notif-item p-${n.priority}${unreadNow ? ' unread' : ''}`, dataset: { id: n.id } },
    h('div', { class: 'notif-title' },
      n.link ? h('a', { href: n.link, onclick: () => { markRead(n); closePanel(false); } }, n.title) : n.title),
    n.message ? h('div', { class: 'notif-msg' }, n.message) : null,
    h('div', { class: 'notif-meta' }, time(n.created_at), ` · ${n.priority}`,
      n.metadata && n.metadata.quiet_hours ? ' · held during quiet hours' : '',
      unreadNow ? h('button', { type: 'button', class: 'link-btn', 'aria-label': `Mark read: ${n.title}`, onclick: () => markRead(n) }, 'Mark read') : null));
}

function renderList() {
  const rows = Array.from(items.values()).sort((a, b) => b.id - a.id).slice(0, SHOWN);
  clear($('#notif-list'), rows.length ? rows.map(row) : h('li', { class: 'notif-empty' }, 'No notifications.'));
}

async function markRead(n) {
  if (n.status !== 'unread') return;
  showMessage($('#notif-error'), null);
  try {
    const x = await post(`/notifications/${n.id}/read`);
    items.set(x.id, x);
    setCount(unread - 1);
    renderList();
  } catch (e) {
    showMessage($('#notif-error'), `Could not mark it read: ${e.message}`);
  }
  reload();
}

async function markAll() {
  showMessage($('#notif-error'), null);
  try {
    await post('/notifications/mark-all-read');
    for (const [id, n] of items) if (n.status === 'unread') items.set(id, { ...n, status: 'read' });
    setCount(0);
    renderList();
  } catch (e) {
    showMessage($('#notif-error'), `Could not mark them read: ${e.message}`);
  }
  reload();
}

function onEvent(ev) {
  const d = ev.data || {};
  if (ev.type === 'notification' && d.notification) items.set(d.notification.id, d.notification);
  if (ev.type === 'notification.read') {
    for (const id of d.ids || []) {
      const n = items.get(id);
      if (n) items.set(id, { ...n, status: 'read' });
    }
  }
  if (typeof d.unread_count === 'number') setCount(d.unread_count);
  renderList();
  reload();
}

/* ---------- the panel ---------- */

function openPanel() {
  $('#notif-panel').hidden = false;
  $('#notif-btn').setAttribute('aria-expanded', 'true');
  reload();
}

function closePanel(focus = true) {
  if ($('#notif-panel').hidden) return;
  $('#notif-panel').hidden = true;
  $('#notif-btn').setAttribute('aria-expanded', 'false');
  if (focus) $('#notif-btn').focus();
}

/* ---------- preferences (Account tab) ---------- */

function fillPrefs(p) {
  const form = $('#np-form');
  form.elements.enable_in_app.checked = p.enable_in_app;
  for (const box of $$('input[name="kind"]', form)) box.checked = !p.subscribed_events.length || p.subscribed_events.includes(box.value);
  form.elements.min_priority.value = p.min_priority;
  form.elements.quiet_hours_start.value = p.quiet_hours_start || '';
  form.elements.quiet_hours_end.value = p.quiet_hours_end || '';
  form.elements.timezone.value = p.timezone;
  clear($('#np-projects'), state.projects.map((pr) => h('label', { class: 'check-item' },
    h('input', { type: 'checkbox', name: 'project', value: pr.id, checked: p.project_filters.includes(pr.id) }), pr.name)));
}

async function loadPrefs() {
  formError($('#np-form'), null);
  try { fillPrefs(await get('/notifications/preferences')); } catch (e) { formError($('#np-form'), e.message); }
}

async function savePrefs(e) {
  e.preventDefault();
  const form = $('#np-form');
  const kinds = $$('input[name="kind"]:checked', form).map((b) => b.value);
  formError(form, null);
  $('#np-done').hidden = true;
  if (!kinds.length) {
    formError(form, 'Choose at least one kind of notification, or turn in-app notifications off.');
    return;
  }
  const body = {
    enable_in_app: form.elements.enable_in_app.checked,
    subscribed_events: kinds.length === KINDS.length ? [] : kinds,
    min_priority: form.elements.min_priority.value,
    quiet_hours_start: form.elements.quiet_hours_start.value || null,
    quiet_hours_end: form.elements.quiet_hours_end.value || null,
    timezone: form.elements.timezone.value.trim() || 'UTC',
    project_filters: $$('input[name="project"]:checked', form).map((b) => b.value),
  };
  setBusy(form, true);
  try {
    fillPrefs(await put('/notifications/preferences', body));
    $('#np-done').hidden = false;
  } catch (x) {
    formError(form, x.message);
  } finally {
    setBusy(form, false);
  }
}

export function initNotifications() {
  clear($('#np-kinds'), KINDS.map(([v, label]) => h('label', { class: 'check-item' }, h('input', { type: 'checkbox', name: 'kind', value: v }), label)));
  $('#np-form').addEventListener('submit', savePrefs);
  $('#notif-btn').addEventListener('click', () => ($('#notif-panel').hidden ? openPanel() : closePanel()));
  $('#notif-all').addEventListener('click', markAll);
  $('#notif-prefs').addEventListener('click', () => closePanel(false));
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closePanel(); });
  document.addEventListener('click', (e) => { if (!$('#notif').contains(e.target)) closePanel(false); });
  on('tab', (tab) => { if (tab === 'account') loadPrefs(); });
  setCount(0);
  renderList();
  // eslint-disable-next-line no-new
  new LiveStream('/api/v1/notifications/stream', {
    types: ['notification', 'notification.read'],
    onEvent,
    onState: (s) => { $('#notif').dataset.live = s; if (s === 'live') reload(); },
  });
}
