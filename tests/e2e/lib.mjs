// Helpers for the e2e tests: a tiny HTTP client for the Loom API behind the stack's nginx.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

export const BASE = process.env.LOOM_URL;
if (!BASE) throw new Error('LOOM_URL is not set (run through tests/lib/run-e2e.sh)');

// api('POST', '/api/v1/beads', {..}) -> {status, body (parsed JSON or text), headers}
export async function api(method, path, body, extraHeaders = {}) {
  const headers = { ...extraHeaders };
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
export async function newProject({ dispatch = false, ...extra } = {}) {
  seq += 1;
  const id = `e${run}${seq}`;
  const context = dispatch ? {} : { dispatch_paused: 'true' };
  const res = await api('POST', '/api/v1/projects', { id, name: `Project ${id}`, bead_prefix: id, context, ...extra });
  assert.equal(res.status, 201, res.text);
  return id;
}

export async function newBead(project, extra = {}) {
  const res = await api('POST', '/api/v1/beads', { project_id: project, title: 'work', ...extra });
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
