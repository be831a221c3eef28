// Users, sessions, API keys, roles, project isolation, CSRF, login throttling and the audit
// log, through nginx against the real stack.  The route × role matrix reads the route table
// from fcgi/routes.c itself, so a route added without thinking about its permission shows up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE, api, assertError, authHeader, login, newBead, newProject, newUser, sql } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const NONE = { Authorization: null };

// ---- what each role may do: the specification the C table (fcgi/auth.c) must meet ----------
const USER = ['projects:read', 'projects:write', 'beads:read', 'beads:write', 'agents:read',
  'agents:write', 'decisions:read', 'decisions:write', 'providers:read', 'providers:write',
  'runs:read', 'runs:write', 'personas:read', 'events:read', 'logs:read', 'analytics:read',
  'chat:write', 'motivations:read', 'motivations:write'];
const VIEWER = ['projects:read', 'beads:read', 'agents:read', 'decisions:read', 'providers:read',
  'runs:read', 'personas:read', 'events:read', 'logs:read', 'analytics:read', 'motivations:read'];
function allowed(role, perm) {
  if (perm === 'public' || perm === 'self') return true;
  if (role === 'admin') return true;
  if (role === 'user') return USER.includes(perm);
  if (role === 'viewer') return VIEWER.includes(perm);
  return false; // service: only what its API key lists
}

function routeTable() {
  const src = fs.readFileSync(path.join(here, '../../fcgi/routes.c'), 'utf8');
  const re = /\.method = "([A-Z]+)",\s*\.pattern = "([^"]+)",\s*\.handler = \w+,\s*\.permission = "([^"]+)"/g;
  const routes = [];
  for (const m of src.matchAll(re)) routes.push({ method: m[1], pattern: m[2], permission: m[3] });
  return routes;
}

// A path for the pattern whose ids name nothing, so an allowed request changes nothing.
const concrete = (pattern) => pattern.replace(/\{[a-z_]+\}/g, (p) => (p === '{id}' ? '999999' : 'nosuchthing'));

// Sends a raw request (no default credential) and returns {status, headers, text}.
async function raw(method, urlPath, { headers = {}, body } = {}) {
  const res = await fetch(BASE + urlPath, { method, headers, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

test('without credentials only health, login and static files answer; the rest is 401 JSON', async () => {
  for (const p of ['/api/v1/beads', '/api/v1/projects', '/api/v1/auth/me', '/api/v1/nosuch', '/api/v1/events/stream']) {
    const r = await raw('GET', p);
    assert.equal(r.status, 401, `${p}: ${r.status} ${r.text}`);
    assert.match(JSON.parse(r.text).error, /authentication required/);
    assert.match(r.headers.get('www-authenticate') || '', /Bearer/);
  }
  assert.equal((await raw('GET', '/health')).status, 200);
  assert.equal((await raw('GET', '/')).status, 200);
  assert.equal((await raw('GET', '/js/api.js')).status, 200);
  const bad = await raw('GET', '/api/v1/beads', { headers: { Authorization: 'Bearer lms_' + '0'.repeat(32) } });
  assert.equal(bad.status, 401);
  assert.match(JSON.parse(bad.text).error, /expired, revoked or unknown/);
  const junk = await raw('GET', '/api/v1/beads', { headers: { Authorization: 'Bearer hello' } });
  assert.equal(junk.status, 401);
  assert.match(JSON.parse(junk.text).error, /malformed credential/);
});

test('login, me, refresh, logout; wrong passwords are refused; sessions expire', async () => {
  const u = await newUser('user');
  assertError(await api('POST', '/api/v1/auth/login', { username: u.username, password: 'wrong-password-1' }, NONE), 401, 'invalid user name or password');
  assertError(await api('POST', '/api/v1/auth/login', { username: 'nobody-here', password: 'whatever-123' }, NONE), 401, 'invalid user name or password');
  assertError(await api('POST', '/api/v1/auth/login', { username: u.username }, NONE), 400, 'password');

  const res = await fetch(BASE + '/api/v1/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: u.username.toUpperCase(), password: u.password }),
  });
  assert.equal(res.status, 200);
  const cookie = res.headers.get('set-cookie');
  assert.match(cookie, /^loom_session=lms_[0-9a-f]{32}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  const s = await res.json();
  assert.match(s.token, /^lms_[0-9a-f]{32}$/);
  assert.equal(s.user.username, u.username);
  assert.equal(s.user.role, 'user');
  assert.ok(s.csrf_token.length >= 32);
  assert.equal(s.user.password_hash, undefined);

  const me = await api('GET', '/api/v1/auth/me', undefined, authHeader(s.token));
  assert.equal(me.status, 200);
  assert.equal(me.body.user.username, u.username);
  assert.equal(me.body.kind, 'session');

  const fresh = await api('POST', '/api/v1/auth/refresh', undefined, authHeader(s.token));
  assert.equal(fresh.status, 200, fresh.text);
  assert.notEqual(fresh.body.token, s.token);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(s.token))).status, 401);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(fresh.body.token))).status, 200);

  assert.equal((await api('POST', '/api/v1/auth/logout', undefined, authHeader(fresh.body.token))).status, 204);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(fresh.body.token))).status, 401);

  // idle and absolute expiry, moved into the past in the table
  const idle = await login(u.username, u.password);
  sql(`UPDATE sessions SET last_seen_at = now() - make_interval(secs => idle_seconds + 1) WHERE token_hash = sha256('${idle.token}'::bytea)`);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(idle.token))).status, 401);
  const old = await login(u.username, u.password);
  sql(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = sha256('${old.token}'::bytea)`);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(old.token))).status, 401);
  // only digests are stored
  assert.equal(sql(`SELECT count(*) FROM sessions WHERE encode(token_hash, 'escape') LIKE '%lms_%'`), '0');
});

test('passwords: Argon2id hashes, the policy, change-password ends the other sessions', async () => {
  for (const [pw, why] of [['short1', 'too short'], ['Password123!', 'too common'], ['aaaaaaaaaaaa', 'repeated'],
    ['x'.repeat(129), 'too long']]) {
    assertError(await api('POST', '/api/v1/auth/users', { username: 'weakling', password: pw, role: 'user' }), 400, why);
  }
  assertError(await api('POST', '/api/v1/auth/users', { username: 'samename1', password: 'samename1', role: 'user' }), 400, 'user name');
  assertError(await api('POST', '/api/v1/auth/users', { username: 'bad name', password: 'Good-pass-9x', role: 'user' }), 400, 'username');
  assertError(await api('POST', '/api/v1/auth/users', { username: 'okname', password: 'Good-pass-9x', role: 'king' }), 400, 'role');
  assert.equal(sql(`SELECT count(*) FROM users WHERE username IN ('weakling', 'samename1', 'okname')`), '0');

  const u = await newUser('user');
  assert.match(sql(`SELECT password_hash FROM users WHERE username = '${u.username}'`), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  const other = await login(u.username, u.password);
  assertError(await api('POST', '/api/v1/auth/change-password', { current_password: 'nope-nope-1', new_password: 'Brand-new-77x' }, authHeader(u.token)), 403, 'current_password');
  assertError(await api('POST', '/api/v1/auth/change-password', { current_password: u.password, new_password: 'qwerty123' }, authHeader(u.token)), 400, 'too common');
  const ok = await api('POST', '/api/v1/auth/change-password', { current_password: u.password, new_password: 'Brand-new-77x' }, authHeader(u.token));
  assert.equal(ok.status, 204, ok.text);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(u.token))).status, 200, 'this session goes on');
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(other.token))).status, 401, 'the other one ended');
  await assert.rejects(login(u.username, u.password));
  await login(u.username, 'Brand-new-77x');
});

test('API keys: shown once, hashed, narrowed by permissions, revoked, expired', async () => {
  const u = await newUser('user');
  const project = await newProject({ name: 'Key project' }, authHeader(u.token));
  const made = await api('POST', '/api/v1/auth/api-keys', { name: 'ci', permissions: ['beads:read'] }, authHeader(u.token));
  assert.equal(made.status, 201, made.text);
  assert.match(made.body.key, /^lmk_[0-9a-f]{32}$/);
  assert.equal(made.body.prefix, made.body.key.slice(0, 12));
  const list = await api('GET', '/api/v1/auth/api-keys', undefined, authHeader(u.token));
  assert.equal(list.body.length, 1);
  assert.equal(list.body[0].key, undefined, 'the key itself is never listed');
  assert.equal(sql(`SELECT count(*) FROM api_keys WHERE key_hash = sha256('${made.body.key}'::bytea)`), '1');

  const key = authHeader(made.body.key);
  assert.equal((await api('GET', `/api/v1/beads?project_id=${project}`, undefined, key)).status, 200);
  assertError(await api('POST', '/api/v1/beads', { project_id: project, title: 'x' }, key), 403, 'beads:write');
  assertError(await api('POST', '/api/v1/auth/api-keys', { name: 'x', permissions: ['beads:fly'] }, authHeader(u.token)), 400, 'permissions[0]');
  assertError(await api('POST', '/api/v1/auth/api-keys', { name: 'x', permissions: ['users:admin'] }, authHeader(u.token)), 403, 'not granted');
  assertError(await api('POST', '/api/v1/auth/api-keys', { permissions: [] }, authHeader(u.token)), 400, 'name');

  const revoked = await api('DELETE', `/api/v1/auth/api-keys/${made.body.id}`, undefined, authHeader(u.token));
  assert.equal(revoked.status, 200);
  assert.equal(revoked.body.active, false);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, key)).status, 401);

  const full = await api('POST', '/api/v1/auth/api-keys', { name: 'full', expires_in_days: 1 }, authHeader(u.token));
  assert.equal((await api('POST', '/api/v1/beads', { project_id: project, title: 'by key' }, authHeader(full.body.key))).status, 201);
  sql(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = ${full.body.id}`);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(full.body.key))).status, 401);
  const other = await newUser('user');
  assertError(await api('DELETE', `/api/v1/auth/api-keys/${full.body.id}`, undefined, authHeader(other.token)), 404, 'not found');
});

test('disabling a user ends their sessions and keys at once; the last admin stays', async () => {
  const u = await newUser('user');
  const key = (await api('POST', '/api/v1/auth/api-keys', { name: 'k' }, authHeader(u.token))).body.key;
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(key))).status, 200);
  const off = await api('PATCH', `/api/v1/auth/users/${u.username}`, { disabled: true });
  assert.equal(off.status, 200, off.text);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(u.token))).status, 401);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(key))).status, 401);
  await assert.rejects(login(u.username, u.password));
  assertError(await api('PATCH', '/api/v1/auth/users/admin', { role: 'viewer' }), 409, 'last admin');
  assertError(await api('PATCH', '/api/v1/auth/users/admin', { username: 'root' }), 400, 'cannot be changed');
  assertError(await api('PATCH', '/api/v1/auth/users/nosuchuser', { role: 'viewer' }), 404, 'not found');
  // an admin's reset ends the user's sessions
  const v = await newUser('viewer');
  const reset = await api('PATCH', `/api/v1/auth/users/${v.username}`, { password: 'Reset-by-admin-5' });
  assert.equal(reset.status, 200);
  assert.equal((await api('GET', '/api/v1/auth/me', undefined, authHeader(v.token))).status, 401);
  await login(v.username, 'Reset-by-admin-5');
  const users = await api('GET', '/api/v1/auth/users');
  assert.ok(users.body.some((x) => x.username === v.username && x.role === 'viewer'));
  assert.ok(users.body.every((x) => x.password_hash === undefined));
});

test('every route × every role: allowed or 403, exactly as the role table says', async () => {
  const routes = routeTable();
  assert.ok(routes.length > 70, `only ${routes.length} routes parsed from routes.c`);
  const skip = new Set(['POST /api/v1/auth/logout', 'POST /api/v1/auth/refresh']); // they end the session
  const who = {};
  for (const role of ['admin', 'user', 'viewer']) who[role] = (await newUser(role)).token;
  const svc = await newUser('service', {});
  who.service = svc.token;
  let checked = 0;
  for (const r of routes) {
    if (skip.has(`${r.method} ${r.pattern}`)) continue;
    const p = concrete(r.pattern);
    const body = ['POST', 'PUT', 'PATCH'].includes(r.method) ? '{}' : undefined;
    const anon = await raw(r.method, p, { headers: body ? { 'Content-Type': 'application/json' } : {}, body });
    if (r.permission === 'public') assert.notEqual(anon.status, 401, `${r.method} ${p} is public`);
    else assert.equal(anon.status, 401, `${r.method} ${p} without credentials: ${anon.status} ${anon.text}`);
    for (const [role, token] of Object.entries(who)) {
      if (r.permission === 'public') continue;
      const res = await raw(r.method, p, {
        headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body,
      });
      const label = `${role} ${r.method} ${p} (${r.permission}): ${res.status} ${res.text.slice(0, 200)}`;
      if (allowed(role, r.permission)) assert.ok(![401, 403].includes(res.status), label);
      else {
        assert.equal(res.status, 403, label);
        assert.match(JSON.parse(res.text).error, new RegExp(r.permission.replace('*', '\\*')), label);
      }
      assert.ok(res.status < 500, label);
      checked++;
    }
  }
  assert.ok(checked > 250, `${checked} checks`);
  // denials are audited
  const audit = await api('GET', '/api/v1/audit?outcome=denied&limit=5');
  assert.equal(audit.status, 200);
  assert.ok(audit.body.length > 0 && audit.body.every((a) => a.outcome === 'denied'));
});

test('a service account acts only through the permissions its API key lists', async () => {
  const svc = await newUser('service');
  const mine = await newProject({ name: 'Service project' });
  assert.equal((await api('POST', `/api/v1/projects/${mine}/members`, { username: svc.username })).status, 201);
  const key = (await api('POST', '/api/v1/auth/api-keys', { name: 'bot', permissions: ['beads:read', 'beads:write'] }, authHeader(svc.token)));
  assert.equal(key.status, 403, 'a service account holds no permission of its own to delegate');
  const made = await api('POST', '/api/v1/auth/api-keys', { name: 'bot' }, authHeader(svc.token));
  assert.equal(made.status, 201);
  assertError(await api('GET', '/api/v1/beads', undefined, authHeader(made.body.key)), 403, 'beads:read');
  // an admin-made key for the service account, with explicit permissions
  sql(`UPDATE api_keys SET permissions = '{beads:read,beads:write}' WHERE id = ${made.body.id}`);
  assert.equal((await api('POST', '/api/v1/beads', { project_id: mine, title: 'from the bot' }, authHeader(made.body.key))).status, 201);
  assertError(await api('GET', '/api/v1/agents', undefined, authHeader(made.body.key)), 403, 'agents:read');
});

test('project isolation: a user sees and changes only the projects they belong to', async () => {
  const a = await newUser('user');
  const b = await newUser('user');
  const c = await newUser('user');
  const pa = await newProject({ name: 'A project' }, authHeader(a.token));
  const pb = await newProject({ name: 'B project' }, authHeader(b.token));
  const ba = await newBead(pa, { title: 'in A' }, authHeader(a.token));
  const bb = await newBead(pb, { title: 'in B' }, authHeader(b.token));
  const A = authHeader(a.token);

  const list = await api('GET', '/api/v1/projects', undefined, A);
  assert.ok(list.body.some((p) => p.id === pa));
  assert.ok(!list.body.some((p) => p.id === pb));
  assertError(await api('GET', `/api/v1/projects/${pb}`, undefined, A), 404, 'not found');
  assertError(await api('GET', `/api/v1/beads/${bb.id}`, undefined, A), 404, 'not found');
  assertError(await api('PATCH', `/api/v1/beads/${bb.id}`, { title: 'mine now' }, A), 404, 'not found');
  assertError(await api('POST', '/api/v1/beads', { project_id: pb, title: 'sneak' }, A), 400, 'does not exist');
  assertError(await api('POST', `/api/v1/beads/${bb.id}/comments`, { content: 'hi' }, A), 404, 'not found');
  assert.deepEqual((await api('GET', `/api/v1/beads?project_id=${pb}`, undefined, A)).body, []);
  assert.ok((await api('GET', '/api/v1/beads?limit=1000', undefined, A)).body.every((x) => x.project_id === pa));
  const evs = await api('GET', '/api/v1/events?limit=1000', undefined, A);
  assert.ok(evs.body.every((e) => e.project_id === null || e.project_id === pa), 'events of other projects hidden');
  const agents = await api('GET', '/api/v1/agents', undefined, A);
  assert.ok(agents.body.length >= 5 && agents.body.every((x) => x.project_id === pa), 'only own agents');
  assert.equal(sql(`SELECT title FROM beads WHERE id = '${bb.id}'`), 'in B', 'nothing changed');

  // members: the owner or an admin adds; a plain member cannot
  assertError(await api('POST', `/api/v1/projects/${pb}/members`, { username: a.username }, A), 404, 'not found');
  assert.equal((await api('POST', `/api/v1/projects/${pa}/members`, { username: c.username }, A)).status, 201);
  assertError(await api('POST', `/api/v1/projects/${pa}/members`, { username: b.username }, authHeader(c.token)), 403, 'owner');
  assert.equal((await api('GET', `/api/v1/beads/${ba.id}`, undefined, authHeader(c.token))).status, 200);
  const members = await api('GET', `/api/v1/projects/${pa}/members`, undefined, A);
  assert.deepEqual(members.body.map((m) => m.username).sort(), [a.username, c.username].sort());
  assertError(await api('POST', `/api/v1/projects/${pa}/members`, { username: 'ghost-user' }, A), 404, 'not found');

  // an admin grants A the B project, then takes it back
  assert.equal((await api('POST', `/api/v1/projects/${pb}/members`, { username: a.username })).status, 201);
  assert.equal((await api('GET', `/api/v1/beads/${bb.id}`, undefined, A)).status, 200);
  assert.equal((await api('DELETE', `/api/v1/projects/${pb}/members/${a.username}`)).status, 200);
  assertError(await api('GET', `/api/v1/beads/${bb.id}`, undefined, A), 404, 'not found');
  // the admin sees everything
  assert.equal((await api('GET', `/api/v1/beads/${bb.id}`)).status, 200);

  // event streams carry only the user's projects; another project's stream is a 404
  const denied = await streamOnce(`/api/v1/events/stream?project_id=${pb}`, A);
  assert.equal(denied.status, 404);
  const s = await streamOnce('/api/v1/events/stream?last_event_id=0', A, 1500);
  assert.equal(s.status, 200);
  const ids = [...s.text.matchAll(/"project_id"\s*:\s*"([^"]+)"/g)].map((m) => m[1]);
  assert.ok(ids.includes(pa), 'own project events arrive');
  assert.ok(!ids.includes(pb), 'no event of the other project');
});

// Reads a stream for ms milliseconds (or until it ends) and returns {status, text}.
function streamOnce(urlPath, headers, ms = 500) {
  return new Promise((resolve, reject) => {
    const req = http.get(BASE + urlPath, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
      setTimeout(() => { req.destroy(); resolve({ status: res.statusCode, text }); }, ms);
    });
    req.on('error', (e) => (e.code === 'ECONNRESET' ? null : reject(e)));
  });
}

test('CSRF: a cookie-authenticated change needs this Origin and the CSRF token', async () => {
  const u = await newUser('user');
  const project = await newProject({ name: 'CSRF project' }, authHeader(u.token));
  const res = await fetch(BASE + '/api/v1/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: u.username, password: u.password }),
  });
  const { csrf_token: csrf } = await res.json();
  const cookie = res.headers.get('set-cookie').split(';')[0];
  const origin = new URL(BASE).origin;
  const post = (headers) => raw('POST', '/api/v1/beads', {
    headers: { Cookie: cookie, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ project_id: project, title: 'via cookie' }),
  });
  assert.equal((await raw('GET', '/api/v1/auth/me', { headers: { Cookie: cookie } })).status, 200, 'reads need no token');
  const before = sql(`SELECT count(*) FROM beads WHERE project_id = '${project}'`);
  for (const [headers, why] of [
    [{}, 'cross-site'],
    [{ Origin: 'https://evil.example' }, 'cross-site'],
    [{ 'Sec-Fetch-Site': 'cross-site', 'X-CSRF-Token': csrf }, 'cross-site'],
    [{ Origin: origin }, 'CSRF token'],
    [{ Origin: origin, 'X-CSRF-Token': 'f'.repeat(32) }, 'CSRF token'],
  ]) {
    const r = await post(headers);
    assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.text}`);
    assert.match(JSON.parse(r.text).error, new RegExp(why));
  }
  assert.equal(sql(`SELECT count(*) FROM beads WHERE project_id = '${project}'`), before, 'nothing was written');
  assert.equal((await post({ Origin: origin, 'X-CSRF-Token': csrf })).status, 201);
  assert.equal((await post({ 'Sec-Fetch-Site': 'same-origin', 'X-CSRF-Token': csrf })).status, 201);
  // a bearer token needs neither (a browser never sends it by itself)
  assert.equal((await api('POST', '/api/v1/beads', { project_id: project, title: 'bearer' }, authHeader(u.token))).status, 201);
});

test('login throttling per user and per address: 429 with Retry-After, audited', async () => {
  const u = await newUser('viewer');
  for (let i = 0; i < 4; i++) {
    assert.equal((await api('POST', '/api/v1/auth/login', { username: u.username, password: `wrong-${i}-guess` }, NONE)).status, 401);
  }
  const fifth = await api('POST', '/api/v1/auth/login', { username: u.username, password: 'wrong-5-guess' }, NONE);
  assert.equal(fifth.status, 429, fifth.text);
  assert.ok(Number(fifth.headers.get('retry-after')) > 0);
  const right = await api('POST', '/api/v1/auth/login', { username: u.username, password: u.password }, NONE);
  assertError(right, 429, 'too many failed logins');
  assert.ok(Number(right.headers.get('retry-after')) > 0);
  const failed = await api('GET', `/api/v1/audit?action=login&outcome=failed&actor=${u.username}`);
  assert.equal(failed.body.length, 5);
  // the address: 20 failures in the window, whoever they are for
  sql(`DELETE FROM auth_throttle`);
  try {
    for (let i = 0; i < 19; i++) await api('POST', '/api/v1/auth/login', { username: `ghost${i}`, password: 'nope-nope-nope' }, NONE);
    const last = await api('POST', '/api/v1/auth/login', { username: 'ghost-last', password: 'nope-nope-nope' }, NONE);
    assert.equal(last.status, 429, last.text);
    assertError(await api('POST', '/api/v1/auth/login', { username: 'admin', password: process.env.LOOM_ADMIN_PASSWORD }, NONE), 429, 'too many');
  } finally {
    sql(`DELETE FROM auth_throttle`); // the rest of the suite logs in from this address too
  }
  await login('admin', process.env.LOOM_ADMIN_PASSWORD);
});

test('the audit log: logins, key and user changes; admins only', async () => {
  const u = await newUser('user');
  await api('POST', '/api/v1/auth/api-keys', { name: 'audited' }, authHeader(u.token));
  const rows = (await api('GET', '/api/v1/audit?limit=200')).body;
  const has = (action, target) => rows.some((r) => r.action === action && r.target.startsWith(target) && r.outcome === 'ok');
  assert.ok(has('user.create', u.username));
  assert.ok(has('login', u.username));
  assert.ok(rows.some((r) => r.action === 'api_key.create' && r.actor === u.username));
  assert.ok(rows.every((r) => !JSON.stringify(r).includes(u.password)), 'no password in the audit log');
  assertError(await api('GET', '/api/v1/audit', undefined, authHeader(u.token)), 403, 'audit:read');
  assertError(await api('GET', '/api/v1/audit?outcome=maybe'), 400, 'outcome');
});
