// Bad input at scale: a seeded generator fires malformed requests at EVERY route of loom-api
// (read from fcgi/routes.c, as auth.test.mjs does) and at loom-sse's stream paths, as the admin:
// bad JSON, wrong types, unknown fields, huge and deeply nested bodies, bad UTF-8 in bodies and
// paths, SQL metacharacters where ids and enums go, path traversal, junk query strings, wrong
// methods, bad credentials, and raw header junk sent over a plain socket.
//
// Every request is built so that the route MUST refuse it (each carries at least one defect the
// route checks before it touches anything), so the rules are strict: no 5xx at all; every
// answer from the API is a 4xx with a JSON {"error": "..."}; no loom-api or loom-sse process
// restarted (a crash would); and the database footprint is the same afterwards.
//
// The footprint: the row count of every table in the schema (read from the catalogue, so new
// tables count too), and a digest of the contents of the tables nothing else writes while the
// test runs.  Left out, on purpose: telemetry (metric_*, and logs, the programs' log lines),
// which every request and process writes.  Counted for this test's own project only: the
// tables the workers, Ralph, the motivation engine and budget accounting fill on their own
// (events, runs, actions, llm_calls, ...: executors may still be finishing beads of earlier
// test files) — in this project no worker runs (dispatch is paused), so a refused request must
// not add a row there.  Counted but not digested: rows that background processes update in
// place (providers' and agents' heartbeats, the last-seen time of sessions and API keys,
// budgets' spending, motivations' last trigger).  audit_log and sessions are counted like the
// rest: a refused request must neither log anyone in or out nor audit an action (bad
// credentials are 401s, which are not audited, and no request here is a denial).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE, ADMIN_TOKEN, api, newBead, newProject, newUser, sql, stackShell } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function routeTable() {
  const src = fs.readFileSync(path.join(here, '../../fcgi/routes.c'), 'utf8');
  const re = /\.method = "([A-Z]+)",\s*\.pattern = "([^"]+)",\s*\.handler = \w+,\s*\.permission = "([^"]+)"/g;
  return [...src.matchAll(re)].map((m) => ({ method: m[1], pattern: m[2], permission: m[3] }));
}
const STREAMS = ['/api/v1/events/stream', '/api/v1/activity-feed/stream', '/api/v1/logs/stream',
  '/api/v1/notifications/stream'];

let seed = 20270309;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const pick = (xs) => xs[rnd(xs.length)];

// A valid body for each route that takes one; the generator breaks it.  Routes not listed get
// no body junk (their handlers ignore bodies, so a body could not make them refuse).
const TEMPLATES = {
  'POST /api/v1/projects': { name: 'n', bead_prefix: 'zq', git_strategy: 'direct' },
  'PUT /api/v1/projects/{id}': { name: 'n', description: 'd' },
  'PATCH /api/v1/projects/{id}': { name: 'n', is_sticky: true },
  'POST /api/v1/projects/{id}/close': { force: false, comment: 'c' },
  'POST /api/v1/projects/{id}/reopen': { comment: 'c' },
  'POST /api/v1/beads': { project_id: 'P', title: 't', priority: 1, tags: ['a'], context: { k: 'v' } },
  'PATCH /api/v1/beads': { filter: { project_id: 'P' }, updates: { priority: 1 } },
  'PATCH /api/v1/beads/{id}': { title: 't', priority: 2, blocked_by: [] },
  'POST /api/v1/beads/{id}/claim': { agent_id: 'a' },
  'POST /api/v1/beads/{id}/redispatch': { reason: 'r' },
  'POST /api/v1/beads/{id}/comments': { content: 'c' },
  'PATCH /api/v1/comments/{id}': { content: 'c' },
  'PUT /api/v1/personas/{name}': { description: 'd', instructions: 'i' },
  'POST /api/v1/beads/{id}/escalate': { reason: 'r' },
  'POST /api/v1/decisions/{id}/decide': { decision: 'approve', rationale: 'r' },
  'POST /api/v1/agents': { persona_name: 'qa', project_id: 'P', name: 'n' },
  'PATCH /api/v1/agents/{id}': { name: 'n', status: 'idle' },
  'PUT /api/v1/agents/{id}': { name: 'n' },
  'POST /api/v1/providers': { id: 'zz', endpoint: 'http://127.0.0.1:9/v1', model: 'm' },
  'PUT /api/v1/providers/{id}': { endpoint: 'http://127.0.0.1:9/v1' },
  'PATCH /api/v1/providers/{id}': { model: 'm' },
  'POST /api/v1/auth/login': { username: 'admin', password: 'x' },
  'POST /api/v1/auth/logout': {},
  'POST /api/v1/auth/refresh': {},
  'POST /api/v1/auth/change-password': { current_password: 'a', new_password: 'b' },
  'POST /api/v1/auth/api-keys': { name: 'k', permissions: ['beads:read'] },
  'POST /api/v1/auth/users': { username: 'zz', password: 'p', role: 'user' },
  'PATCH /api/v1/auth/users/{username}': { display_name: 'd' },
  'POST /api/v1/projects/{id}/members': { username: 'u' },
  'PUT /api/v1/projects/{id}/budget': { monthly_limit_usd: 10, require_approval_merge: false },
  'PUT /api/v1/beads/{id}/budget': { limit_usd: 1 },
  'PUT /api/v1/projects/{id}/memory/{category}/{key}': { value: 'v', confidence: 0.5 },
  'POST /api/v1/pair': { bead_id: 'P-1', message: 'm' },
  'POST /api/v1/conversations/{id}/inject': { content: 'c' },
  'POST /api/v1/motivations': { name: 'n', type: 'calendar', condition: { interval_seconds: 60 }, priority: 1 },
  'PUT /api/v1/motivations/{id}': { name: 'n', wake_agent: true },
  'PATCH /api/v1/motivations/{id}': { description: 'd', cooldown_period: 5 },
  'PUT /api/v1/notifications/preferences': { enable_in_app: true, subscribed_events: ['bead.created'], timezone: 'UTC' },
  'PATCH /api/v1/notifications/preferences': { digest_mode: 'x', enable_in_app: false },
  // OpenAI-compatible: extra fields are accepted there, so only junk that breaks it for sure
  'POST /api/v1/chat/completions': { messages: [{ role: 'user', content: 'hi' }], model: 'm' },
  'POST /api/v1/chat/completions/stream': { messages: [{ role: 'user', content: 'hi' }], model: 'm' },
};
const LENIENT = new Set(['POST /api/v1/chat/completions', 'POST /api/v1/chat/completions/stream']);

const SQLI = ["'; DROP TABLE beads; --", "' OR '1'='1", '1; DELETE FROM users', '") OR 1=1 --', '$1', '\\x27'];
const PATH_JUNK = ['%ff%fe', '%c0%af', "'%20OR%201=1--", '..%2f..%2fetc%2fpasswd', '%2e%2e', 'x'.repeat(300),
  '-1', '1e9', '%e2%80%ae', '%3Cscript%3E', '%25', encodeURIComponent(SQLI[0])];
const QUERY_JUNK = ['zz_unknown=1', 'limit=abc', 'limit=1&limit=2', 'offset=-5', '%zz=1', 'x=%00', '=v',
  `status=${encodeURIComponent(SQLI[0])}`, `project_id=${encodeURIComponent(SQLI[1])}`,
  `q=${'a'.repeat(5000)}`, 'limit=99999999999999999999', 'type=%ff'];
const AUTH_JUNK = ['Bearer', 'Bearer ', 'Bearer lms_123', 'Basic YWRtaW46YWRtaW4=', `Bearer lmk_${'G'.repeat(32)}`,
  `Bearer lms_${'0'.repeat(32)}`, `Bearer ${'x'.repeat(6000)}`, 'Bearer lms_\u00ff\u00fe', `Token ${ADMIN_TOKEN}`,
  `Bearer ${ADMIN_TOKEN}x`, `Bearer ${ADMIN_TOKEN.toUpperCase()}`];
const WRONG_TYPES = [5, -1, 1.5, 1e300, true, false, [], [1, 'a'], {}, { a: { b: [] } }, 'str', ''];

const deep = (n) => { let v = 1; for (let i = 0; i < n; i++) v = [v]; return v; };

// A value of another JSON type than v (never null: nullable fields accept it).
function wrongType(v) {
  const kind = (x) => (Array.isArray(x) ? 'array' : typeof x);
  let w;
  do w = pick(WRONG_TYPES); while (kind(w) === kind(v) || (kind(v) === 'number' && typeof w === 'number'));
  return w;
}

// Bodies that break the template t of a route: each one is refused whatever the route checks
// (lenient routes, which take fields they do not know, get no unknown field and no long string).
function badBodies(t, lenient = false) {
  const keys = Object.keys(t);
  const json = JSON.stringify(t);
  const strKey = keys.find((k) => typeof t[k] === 'string');
  const out = [
    ['truncated JSON', json.slice(0, Math.max(1, rnd(json.length)))],
    ['trailing garbage', json + ' x'],
    ['trailing comma', json.replace(/}$/, ',}')],
    ['single quotes', json.replaceAll('"', "'")],
    ['not an object', pick(['[]', '[1,2]', '"text"', '123', 'null', 'true'])],
    ...(lenient ? [] : [['unknown field', JSON.stringify({ ...t, zz_unknown: 1 })]]),
    ['deep nesting', JSON.stringify({ ...t, [keys[0] || 'x']: deep(40 + rnd(40)) })],
    ['bad UTF-8', Buffer.concat([Buffer.from('{"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from('":1}')])],
    ['NUL in JSON', Buffer.from(json.replace(/^\{/, '{\u0000'))],
    ['NUL after the value', Buffer.from(`${json}\u0000`)],
    ['comment', `/* hi */${json}`],
  ];
  if (strKey && !lenient) {
    out.push(['huge string', JSON.stringify({ ...t, [strKey]: 'x'.repeat(300000 + rnd(100000)) })]);
    out.push(['NUL in a string', JSON.stringify({ ...t, [strKey]: 'a\u0000b' })]);
    out.push(['raw bad UTF-8 in a string', Buffer.from(JSON.stringify({ ...t, [strKey]: '@@' }).replace('@@', '\u00ff'), 'latin1')]);
  }
  for (const k of lenient ? ['messages'] : keys) out.push([`${k}: wrong type`, JSON.stringify({ ...t, [k]: wrongType(t[k]) })]);
  // a change that changed nothing (single quotes in "{}") would be a valid request
  return out.filter(([, body]) => String(body) !== json);
}

// A raw HTTP/1.1 exchange over a socket (fetch refuses to send most header junk).
function rawRequest(bytes) {
  const url = new URL(BASE);
  return new Promise((resolve) => {
    const chunks = [];
    // write, not end: nginx drops a proxied request whose client half-closed (499, no answer)
    const s = net.connect(Number(url.port), url.hostname, () => s.write(bytes));
    s.setTimeout(10000, () => s.destroy());
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({ status: m ? Number(m[1]) : 0, text: body, fromApp: /\r\nX-Request-Id:/i.test(text.slice(0, text.indexOf('\r\n\r\n'))) });
    });
  });
}

const apiPids = () => stackShell("stack_ctl status | grep -E '^loom-(api|sse)' | grep -o 'pid [0-9]*' | sort").trim();

// Written by every request and every process: left out.
const TELEMETRY = /^(metric_.*|logs)$/;
// Written by the workers, Ralph, the motivation engine and budget accounting on their own
// (executors may still be finishing beads of earlier test files): counted in this test's
// project only (by project_id, else by bead_id), where nothing runs; skipped when neither.
const BACKGROUND = ['events', 'runs', 'actions', 'llm_calls', 'command_logs', 'messages', 'lessons',
  'activities', 'notifications', 'motivation_triggers', 'budget_reservations', 'budget_alerts',
  'project_memory'];
// Updated in place by background processes (heartbeats, last-seen times, spent amounts,
// last-triggered times): row counts only.
const COUNTED_ONLY = ['providers', 'agents', 'sessions', 'api_keys', 'budgets', 'motivations'];

function footprint(p) {
  const cols = new Map();
  for (const line of sql("SELECT table_name || ' ' || string_agg(column_name, ',') FROM information_schema.columns WHERE table_schema = current_schema() AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = current_schema()) GROUP BY table_name").split('\n')) {
    const [t, c] = line.split(' ');
    cols.set(t, c.split(','));
  }
  const parts = [];
  for (const [t, c] of [...cols].sort()) {
    if (TELEMETRY.test(t)) continue;
    if (BACKGROUND.includes(t)) {
      const where = c.includes('project_id') ? `project_id = '${p}'`
        : c.includes('bead_id') ? `bead_id IN (SELECT id FROM beads WHERE project_id = '${p}')` : null;
      if (where) parts.push(`'${t}@p=' || (SELECT count(*) FROM ${t} WHERE ${where})`);
      continue;
    }
    parts.push(`'${t}=' || (SELECT count(*) FROM ${t})`);
    if (t === 'beads') parts.push(`'beads#' || (SELECT md5(string_agg(b::text, ',' ORDER BY id)) FROM beads b WHERE project_id = '${p}')`);
    else if (!COUNTED_ONLY.includes(t)) parts.push(`'${t}#' || (SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '-') FROM ${t} x)`);
  }
  return sql(`SELECT ${parts.join(` || ' ' || `)}`).split(' ');
}

test('600+ malformed requests at every route: no 5xx, no crash, the database unchanged', async (tc) => {
  const routes = routeTable();
  assert.ok(routes.length > 60, `only ${routes.length} routes parsed from routes.c`);
  const p = await newProject();
  const b = await newBead(p);
  const c = await api('POST', `/api/v1/beads/${b.id}/comments`, { content: 'first' });
  assert.equal(c.status, 201, c.text);
  const u = await newUser('user');
  const capture = (pattern) => pattern
    .replace('/projects/{id}', `/projects/${p}`).replace('/beads/{id}', `/beads/${b.id}`)
    .replace('/decisions/{id}', `/decisions/${b.id}`).replace('/comments/{id}', `/comments/${c.body.id}`)
    .replace(/\{username\}/g, u.username).replace('{name}', 'nosuchpersona')
    .replace('/agents/{id}', '/agents/nosuchagent').replace('/providers/{id}', '/providers/nosuchprovider')
    .replace('{category}', 'convention').replace('{key}', 'k')
    .replace(/\{id\}/g, '999999');
  const templateFor = (r) => {
    const t = TEMPLATES[`${r.method} ${r.pattern}`];
    return t && JSON.parse(JSON.stringify(t).replaceAll('"P"', `"${p}"`).replaceAll('"P-1"', `"${b.id}"`));
  };
  const junkBody = Buffer.from('{"zz_unknown":1}');
  const methodsOf = new Map();
  for (const r of routes) methodsOf.set(r.pattern, [...(methodsOf.get(r.pattern) || []), r.method]);

  const pidsBefore = apiPids();
  const before = footprint(p);
  const failures = [];
  const hit = new Set();
  let n = 0;
  // What reached loom-api or loom-sse (they set X-Request-Id) must be a JSON 4xx; nginx answers
  // header junk itself and resolves path traversal, possibly to a static file: never a 5xx.
  const statuses = {};
  const check = (res, what) => {
    n++;
    statuses[res.status] = (statuses[res.status] || 0) + 1;
    const isApi = res.fromApp;
    const ok = res.status >= 400 && res.status < 500 && (!isApi || (() => {
      try { return typeof JSON.parse(res.text).error === 'string'; } catch { return false; }
    })());
    const tolerated = !isApi && res.status > 0 && res.status < 500;
    if (!ok && !tolerated) failures.push(`${what} -> ${res.status} ${String(res.text).slice(0, 160)}`);
  };
  const send = async (method, urlPath, body, headers = {}) => {
    const h = { Authorization: `Bearer ${ADMIN_TOKEN}`, ...headers };
    if (method === 'GET' || method === 'HEAD') body = undefined;
    if (body !== undefined && !h['Content-Type']) h['Content-Type'] = 'application/json';
    try {
      const res = await fetch(BASE + urlPath, { method, headers: h, body, signal: AbortSignal.timeout(10000) });
      return { status: res.status, text: await res.text(), fromApp: res.headers.has('x-request-id') };
    } catch (e) {
      return { status: 0, text: String(e), fromApp: false };
    }
  };

  for (const r of routes) {
    const urlPath = capture(r.pattern);
    const t = templateFor(r);
    const what = (x) => `${r.method} ${r.pattern} [${x}]`;
    // junk query strings: every handler reads what it knows and refuses the rest
    for (const q of [pick(QUERY_JUNK), pick(QUERY_JUNK)]) {
      check(await send(r.method, `${urlPath}?${q}`, t ? junkBody : undefined), what(`query ${q.slice(0, 40)}`));
    }
    // bad credentials (public routes need none: they refuse a junk body or query instead)
    const pub = r.permission === 'public' && !t ? '?zz_unknown=1' : '';
    for (const a of [pick(AUTH_JUNK), pick(AUTH_JUNK)]) {
      check(await send(r.method, urlPath + pub, t || r.permission === 'public' ? junkBody : undefined, { Authorization: a }),
        what(`auth ${a.slice(0, 30)}`));
    }
    // malformed captures, with a body that is refused too where a body is read
    if (r.pattern.includes('{')) {
      for (const j of [pick(PATH_JUNK), pick(PATH_JUNK)]) {
        const bad = r.pattern.replace(/\{[a-z_]+\}/g, j);
        check(await send(r.method, bad, t ? junkBody : undefined), what(`path ${j.slice(0, 30)}`));
      }
    }
    // broken bodies, and the right body with the wrong Content-Type
    if (t) {
      for (const [kind, body] of badBodies(t, LENIENT.has(`${r.method} ${r.pattern}`))) {
        check(await send(r.method, urlPath, body), what(kind));
      }
      check(await send(r.method, urlPath, JSON.stringify(t), { 'Content-Type': pick(['text/plain', 'application/jsonx', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) }),
        what('content type'));
      check(await send(r.method, urlPath, Buffer.alloc(1100 * 1024, 0x20)), what('over 1 MiB'));
    }
    hit.add(`${r.method} ${r.pattern}`);
  }
  // wrong methods on every path
  for (const [pattern, methods] of methodsOf) {
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'FOO']) {
      if (methods.includes(m) || (m === 'HEAD' && methods.includes('GET'))) continue;
      check(await send(m, capture(pattern), m === 'GET' ? undefined : '{}'), `${m} ${pattern} [wrong method]`);
    }
  }
  // loom-sse's stream paths: junk filters, wrong methods, bad credentials
  for (const s of STREAMS) {
    for (const q of ['last_event_id=abc', 'last_event_id=-1', 'project_id=%ff', `type=${encodeURIComponent(SQLI[0])}`, 'zz=1', 'project_id=a&project_id=b']) {
      check(await send('GET', `${s}?${q}`), `GET ${s}?${q}`);
    }
    check(await send('POST', `${s}?zz=1`, '{}'), `POST ${s}`);
    check(await send('GET', `${s}?zz=1`, undefined, { Authorization: pick(AUTH_JUNK) }), `GET ${s} [auth]`);
  }
  // raw header junk: nginx refuses some itself (400, 413, 414, 494); what reaches the API carries
  // an unknown query parameter, so every route must refuse it too
  const raw = (r, line) => `${r.method} ${capture(r.pattern)}?zz_unknown=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n${line}Connection: close\r\n`;
  const HEADER_JUNK = [
    (r) => `${raw(r, 'Content-Length: 5\r\nContent-Length: 7\r\n')}\r\n{}`,
    (r) => `${raw(r, 'Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n')}\r\nzz\r\n{}\r\n0\r\n\r\n`,
    (r) => `${raw(r, 'Content-Length: -1\r\n')}\r\n`,
    (r) => `${raw(r, 'Content-Length: 99999999999\r\n')}\r\n`,
    (r) => `${raw(r, 'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n')}\r\n0\r\n\r\n`,
    (r) => `${raw(r, 'this is not a header\r\n')}\r\n`,
    (r) => `${raw(r, `X-Big: ${'b'.repeat(20000)}\r\n`)}\r\n`,
    (r) => `${raw(r, 'X-Junk: \u00ff\u00fe\u0001\r\nOrigin: \u00ff\r\nCookie: loom_session=\u00ff; loom_session=lms_x\r\n')}\r\n`,
    (r) => `${raw(r, 'Content-Type: application/json; charset=\u00ff\r\nContent-Length: 2\r\n')}\r\n{}`,
    (r) => `${raw(r, 'X-Request-Id: ../../etc\r\nX-Forwarded-For: \'; DROP TABLE users; --\r\n')}\r\n`,
    (r) => `${r.method} ${capture(r.pattern)}/../../../../etc/passwd?zz=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    (r) => `${r.method.toLowerCase()} ${capture(r.pattern)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    (r) => `${r.method} ${capture(r.pattern)}/\u00ff\u00fe?zz=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`,
    (r) => `${r.method} ${capture(r.pattern)}%00?zz=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
  ];
  for (const r of routes) {
    const make = pick(HEADER_JUNK);
    check(await rawRequest(Buffer.from(make(r), 'latin1')), `raw ${r.method} ${r.pattern} [${HEADER_JUNK.indexOf(make)}]`);
  }
  for (const make of HEADER_JUNK) {
    check(await rawRequest(Buffer.from(make(routes[rnd(routes.length)]), 'latin1')), `raw [${HEADER_JUNK.indexOf(make)}]`);
  }

  tc.diagnostic(`${n} requests at ${routes.length} routes and ${STREAMS.length} streams; statuses ${JSON.stringify(statuses)}`);
  assert.equal(hit.size, routes.length, 'a route was not exercised');
  assert.ok(n >= 600, `only ${n} requests`);
  assert.deepEqual(failures, [], `${failures.length} of ${n} malformed requests were not refused with a JSON 4xx`);
  assert.equal(apiPids(), pidsBefore, 'a loom-api or loom-sse process restarted (crashed?)');
  const after = footprint(p);
  assert.deepEqual(after.filter((x, i) => x !== before[i]), [], 'the database changed');
  // the admin's session still works: nothing logged it out
  assert.equal((await api('GET', '/api/v1/auth/me')).status, 200);
});
