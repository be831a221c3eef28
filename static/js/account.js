// Who is signed in: the sign-in page, the user menu in the header, the Account tab (password,
// my API keys) and, for admins, the Users tab.  The session itself is the HttpOnly cookie the
// login sets; this module only keeps the CSRF token the API wants on state changes.
import { $, h, clear } from './dom.js';
import { get, post, patch, del, setCsrf, onUnauthorized, ApiError } from './api.js';
import { on } from './store.js';
import { closeAllStreams } from './live.js';

export const me = { user: null };

function showError(el, err) {
  el.hidden = !err;
  el.textContent = err ? (err instanceof ApiError ? err.message : String(err)) : '';
}

/* ---------- sign in ---------- */

function loginPage(resolve) {
  const page = $('#login');
  const form = $('#login-form');
  const err = $('#login-error');
  page.hidden = false;
  $('#app').hidden = true;
  $('#login-user').focus();
  form.onsubmit = async (e) => {
    e.preventDefault();
    showError(err, null);
    const btn = $('#login-submit');
    btn.disabled = true;
    try {
      const s = await post('/auth/login', { username: $('#login-user').value.trim(), password: $('#login-pass').value });
      $('#login-pass').value = '';
      resolve(s);
    } catch (x) {
      showError(err, x);
      $('#login-pass').select();
    } finally {
      btn.disabled = false;
    }
  };
}

// Resolves with {user, csrf_token} once someone is signed in (asking them when needed).
export async function ensureSession() {
  let s;
  try {
    s = await get('/auth/me');
  } catch (x) {
    if (!(x instanceof ApiError) || x.status !== 401) throw x;
    s = await new Promise((resolve) => loginPage(resolve));
  }
  setCsrf(s.csrf_token);
  me.user = s.user;
  $('#login').hidden = true;
  $('#app').hidden = false;
  renderUserMenu();
  return s;
}

// A session that ends while the page is open (expired, signed out elsewhere): sign in again,
// then start over, so every view and stream runs as the new session.
let asking = false;
onUnauthorized(() => {
  if (asking) return;
  asking = true;
  new Promise((resolve) => loginPage(resolve)).then(() => location.reload());
});

function renderUserMenu() {
  const u = me.user;
  clear($('#user-menu'),
    h('span', { class: 'muted', title: `role ${u.role}` }, `${u.display_name || u.username} · ${u.role}`),
    h('button', { type: 'button', class: 'btn small', id: 'logout-btn', onclick: logout }, 'Sign out'));
  $('#tab-users').hidden = u.role !== 'admin';
}

async function logout() {
  closeAllStreams();
  try { await post('/auth/logout'); } catch { /* the session may be gone already */ }
  location.reload();
}

/* ---------- Account: password, API keys ---------- */

async function changePassword(e) {
  e.preventDefault();
  const err = $('#pw-error');
  const done = $('#pw-done');
  showError(err, null);
  done.hidden = true;
  try {
    await post('/auth/change-password', { current_password: $('#pw-current').value, new_password: $('#pw-new').value });
    $('#pw-current').value = '';
    $('#pw-new').value = '';
    done.hidden = false;
  } catch (x) { showError(err, x); }
}

function keyRow(k) {
  return h('tr', null,
    h('td', null, k.name), h('td', null, h('code', null, `${k.prefix}…`)),
    h('td', null, k.permissions ? k.permissions.join(', ') : 'as my role'),
    h('td', null, k.expires_at ? new Date(k.expires_at).toLocaleDateString() : 'never'),
    h('td', null, k.last_used_at ? new Date(k.last_used_at).toLocaleString() : '—'),
    h('td', null, k.active ? h('button', { type: 'button', class: 'btn small danger', onclick: () => revokeKey(k) }, `Revoke ${k.name}`) : 'revoked'));
}

async function loadKeys() {
  const box = $('#keys-list');
  try {
    const keys = await get('/auth/api-keys');
    if (!keys.length) { clear(box, h('p', { class: 'empty-state' }, 'No API keys yet. Scripts and loomctl use them as bearer tokens.')); return; }
    clear(box, h('table', { class: 'table' },
      h('thead', null, h('tr', null, ['Name', 'Prefix', 'Permissions', 'Expires', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, keys.map(keyRow))));
  } catch (x) { showError($('#keys-error'), x); }
}

async function createKey(e) {
  e.preventDefault();
  showError($('#keys-error'), null);
  const days = $('#key-days').value;
  try {
    const k = await post('/auth/api-keys', { name: $('#key-name').value.trim(), ...(days ? { expires_in_days: Number(days) } : {}) });
    $('#key-name').value = '';
    const shown = $('#key-shown');
    clear(shown, h('p', null, 'Copy the key now; it is not shown again:'), h('code', { id: 'key-value' }, k.key));
    shown.hidden = false;
    loadKeys();
  } catch (x) { showError($('#keys-error'), x); }
}

async function revokeKey(k) {
  try { await del(`/auth/api-keys/${k.id}`); loadKeys(); } catch (x) { showError($('#keys-error'), x); }
}

/* ---------- Users (admin) ---------- */

function userRow(u) {
  const role = h('select', { 'aria-label': `role of ${u.username}`, onchange: (e) => updateUser(u, { role: e.target.value }) },
    ['admin', 'user', 'viewer', 'service'].map((r) => h('option', { value: r, selected: r === u.role }, r)));
  return h('tr', null,
    h('td', null, u.username), h('td', null, role),
    h('td', null, u.projects.join(', ') || '—'),
    h('td', null, u.last_login_at ? new Date(u.last_login_at).toLocaleString() : 'never'),
    h('td', null, h('button', { type: 'button', class: `btn small${u.disabled ? '' : ' danger'}`, onclick: () => updateUser(u, { disabled: !u.disabled }) },
      u.disabled ? `Enable ${u.username}` : `Disable ${u.username}`)));
}

async function loadUsers() {
  try {
    const users = await get('/auth/users');
    clear($('#users-list'), h('table', { class: 'table' },
      h('thead', null, h('tr', null, ['User', 'Role', 'Projects', 'Last login', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, users.map(userRow))));
  } catch (x) { showError($('#users-error'), x); }
}

async function updateUser(u, change) {
  showError($('#users-error'), null);
  try { await patch(`/auth/users/${encodeURIComponent(u.username)}`, change); } catch (x) { showError($('#users-error'), x); }
  loadUsers();
}

async function createUser(e) {
  e.preventDefault();
  showError($('#users-error'), null);
  try {
    await post('/auth/users', { username: $('#nu-name').value.trim(), password: $('#nu-pass').value, role: $('#nu-role').value });
    $('#nu-name').value = '';
    $('#nu-pass').value = '';
    loadUsers();
  } catch (x) { showError($('#users-error'), x); }
}

export function initAccount() {
  $('#pw-form').addEventListener('submit', changePassword);
  $('#key-form').addEventListener('submit', createKey);
  $('#nu-form').addEventListener('submit', createUser);
  on('tab', (tab) => {
    if (tab === 'account') { $('#key-shown').hidden = true; loadKeys(); }
    if (tab === 'users' && me.user && me.user.role === 'admin') loadUsers();
  });
}
