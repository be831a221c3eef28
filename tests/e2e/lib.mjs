// Helpers for the e2e tests: a tiny HTTP client for the Loom API behind the stack's nginx.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

export const BASE = process.env.LOOM_URL;
if (!BASE) throw new Error('LOOM_URL is not set (run through tests/lib/run-e2e.sh)');

// Logs in; returns the login response body ({token, csrf_token, user, ...}) or throws.
export async function login(username, password) {
  const res = await fetch(BASE + '/api/v1/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${text}`);
  return JSON.parse(text);
}

// Every api() call acts as the first admin unless its headers say otherwise: pass
// { Authorization: 'Bearer …' } for another user, or { Authorization: null } for none.
export const ADMIN = await login('admin', process.env.LOOM_ADMIN_PASSWORD);
export const ADMIN_TOKEN = ADMIN.token;
export const authHeader = (token = ADMIN_TOKEN) => ({ Authorization: `Bearer ${token}` });

// api('POST', '/api/v1/beads', {..}) -> {status, body (parsed JSON or text), headers}
export async function api(method, path, body, extraHeaders = {}) {
  const headers = { ...authHeader(), ...extraHeaders };
  for (const k of Object.keys(headers)) if (headers[k] === null) delete headers[k];
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    if (!headers['Content-Type']) headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(BASE + path, { method, headers, body: payload });
  const text = await res.text();
  let parsed = text;
  try { parsed = text.length ? JSON.parse(text) : null; } catch { /* left as text */ }
  return { status: res.status, body: parsed, headers: res.headers, text };
}

// Asserts a 4xx JSON error whose message contains `fragment`.
export function assertError(res, status, fragment) {
  assert.equal(res.status, status, `want ${status}, got ${res.status}: ${res.text}`);
  assert.equal(typeof res.body, 'object', `error body is not JSON: ${res.text}`);
  assert.equal(typeof res.body.error, 'string');
  if (fragment) assert.ok(res.body.error.includes(fragment), `"${res.body.error}" lacks "${fragment}"`);
}

let seq = 0;
const run = Date.now().toString(36).slice(-4);
// A fresh project for one test; returns its id (also its bead prefix).  The dispatcher leaves
// it alone (context dispatch_paused) unless the test passes { dispatch: true }.
// headers: another user's credential (authHeader(token)); the admin's by default.
export async function newProject({ dispatch = false, ...extra } = {}, headers = {}) {
  seq += 1;
  const id = `e${run}${seq}`;
  const context = dispatch ? {} : { dispatch_paused: 'true' };
  const res = await api('POST', '/api/v1/projects', { id, name: `Project ${id}`, bead_prefix: id, context, ...extra }, headers);
  assert.equal(res.status, 201, res.text);
  return id;
}

export async function newBead(project, extra = {}, headers = {}) {
  const res = await api('POST', '/api/v1/beads', { project_id: project, title: 'work', ...extra }, headers);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

// psql against the stack's database, for checks the API cannot make (e.g. row counts).
export function sql(query) {
  return execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', process.env.LOOM_DATABASE_URL, '-c', query],
    { encoding: 'utf8' }).trim();
}

// A snapshot of everything a request could have written for a project.
export function footprint(project) {
  return sql(`SELECT (SELECT count(*) FROM beads WHERE project_id='${project}') || '/' ||
                     (SELECT count(*) FROM events WHERE project_id='${project}') || '/' ||
                     (SELECT count(*) FROM bead_deps d JOIN beads b ON b.id=d.bead_id WHERE b.project_id='${project}') || '/' ||
                     (SELECT count(*) FROM bead_comments c JOIN beads b ON b.id=c.bead_id WHERE b.project_id='${project}') || '/' ||
                     (SELECT md5(string_agg(b::text, ',' ORDER BY id)) FROM beads b WHERE project_id='${project}')`);
}

// Runs a shell snippet with the stack's helpers loaded (stack_ctl, stack_pg_restart, ...).
export function stackShell(snippet) {
  return execFileSync('bash', ['-c', `source tests/lib/stack.sh && ${snippet}`], { encoding: 'utf8' });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let userSeq = 0;
// A fresh user with role (admin, user, viewer, service) and a password; returns
// { username, password, id, token } with token from a login (none for service users).
export async function newUser(role = 'user', extra = {}) {
  userSeq += 1;
  const username = `u${run}${userSeq}${role}`.toLowerCase();
  const password = `Tq7-${run}-${userSeq}-zebra-lamp`;
  const res = await api('POST', '/api/v1/auth/users', { username, password, role, ...extra });
  assert.equal(res.status, 201, res.text);
  const token = (await login(username, password)).token;
  return { username, password, id: res.body.id, token };
}
