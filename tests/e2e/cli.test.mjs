// loomctl, the command-line client: every command against the real stack, in table and JSON
// output, with its exit codes (0 done, 1 usage error, 2 the server refused or is unreachable).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, BASE, api, newBead, newProject, newUser, sql, sleep } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(process.env.LOOM_BIN_DIR || path.join(here, '../../build/bin'), 'loomctl');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loomctl-'));

// Runs loomctl; returns {code, out, err}.  As the admin unless token says otherwise (null: none).
function ctl(args, { token = ADMIN_TOKEN, input, env = {} } = {}) {
  const e = { ...process.env, LOOM_SERVER: BASE, ...env };
  delete e.LOOM_TOKEN;
  if (token) e.LOOM_TOKEN = token;
  const r = spawnSync(BIN, args, { env: e, input: input ?? '', encoding: 'utf8', timeout: 30000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const ok = (r) => { assert.equal(r.code, 0, `exit ${r.code}: ${r.err}`); return r; };
const json = (r) => JSON.parse(ok(r).out);
// Lines of a table as arrays of cells (columns are separated by two or more spaces).
const rows = (r) => ok(r).out.trimEnd().split('\n').map((l) => l.split(/ {2,}/));

test('help: the overview and every command\'s --help exit 0; usage errors exit 1 and say why', () => {
  const all = ok(ctl(['--help']));
  for (const c of ['bead list', 'bead create', 'bead show', 'bead claim', 'bead poke', 'bead unblock', 'bead errors',
    'project list', 'project show', 'project create', 'agent list', 'provider list', 'provider register',
    'decision list', 'decision decide', 'log stream', 'event stream', 'analytics stats', 'analytics costs',
    'export', 'import', 'login', 'whoami']) {
    assert.match(all.out, new RegExp(`^  ${c} `, 'm'), c);
    const h = ok(ctl([...c.split(' '), '--help'], { token: null }));
    assert.match(h.out, new RegExp(`^Usage: loomctl ${c} `), c);
    assert.match(h.out, /Global options:/);
    assert.match(h.out, /Examples?:\n  .*loomctl /, `${c} has no example`);
  }
  assert.equal(ok(ctl(['help', 'bead', 'create'])).out, ok(ctl(['bead', 'create', '-h'])).out);
  assert.match(ok(ctl(['bead', '--help'])).out, /bead errors/);

  const usage = [
    [[], /Usage: loomctl/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['bead', 'frob'], /unknown command 'bead frob'/],
    [['bead'], /bead: which command\?/],
    [['bead', 'list', '--bogus'], /bead list: unknown option '--bogus'/],
    [['bead', 'show'], /bead show: missing argument <bead-id>/],
    [['bead', 'show', 'a-1', 'a-2'], /unexpected argument 'a-2'/],
    [['bead', 'list', '-p'], /--project needs a value/],
    [['bead', 'list', '--limit', 'lots'], /--limit: 'lots' is not a whole number/],
    [['bead', 'create', '-p', 'x'], /--project and --title are required/],
    [['bead', 'create', '-p', 'x', '-t', 'y', '--priority', 'P7'], /--priority: 'P7' is not 0 to 3/],
    [['bead', 'claim', 'x-1'], /--agent is required/],
    [['project', 'create'], /--name is required/],
    [['decision', 'decide', 'x-1', 'maybe'], /'maybe' is not approve, deny or needs_more_info/],
    [['-o', 'yaml', 'bead', 'list'], /-o: 'yaml' is not json or table/],
    [['--server', 'ftp://x', 'bead', 'list'], /--server: 'ftp:\/\/x' is not an http/],
    [['import', path.join(tmp, 'nonexistent.json')], /cannot read .*nonexistent\.json/],
    [['provider', 'register', 'p'], /--endpoint is required/],
  ];
  for (const [args, re] of usage) {
    const r = ctl(args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code} ${r.err}`);
    assert.match(r.err, re, args.join(' '));
    assert.equal(r.out, '', `${args.join(' ')} printed to stdout`);
  }
});

test('login prints a token for LOOM_TOKEN; whoami; bad, missing or unknown credentials exit 2 with the message', async () => {
  const u = await newUser('user');
  const r = ok(ctl(['login', '-u', u.username, '--password-stdin'], { token: null, input: `${u.password}\n` }));
  const token = r.out.trim();
  assert.match(token, /^lms_[0-9a-f]{32}$/);
  assert.match(r.err, new RegExp(`logged in as ${u.username} \\(user\\)`));
  const me = rows(ctl(['whoami'], { token }));
  assert.deepEqual(me[0], ['USER', u.username]);
  assert.deepEqual(me[1], ['ROLE', 'user']);
  assert.equal(json(ctl(['whoami', '-o', 'json'], { token })).user.username, u.username);
  assert.equal(json(ctl(['--token', token, 'whoami', '-o', 'json'], { token: null })).user.role, 'user');
  const full = json(ctl(['login', '-u', u.username, '--password-stdin', '-o', 'json'], { token: null, input: u.password }));
  assert.match(full.csrf_token, /./);

  let bad = ctl(['login', '-u', u.username, '--password-stdin'], { token: null, input: 'wrong-password-9\n' });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /invalid user name or password \(HTTP 401\)/);
  assert.equal(bad.out, '');
  bad = ctl(['login', '-u', u.username, '--password-stdin'], { token: null, input: '' });
  assert.equal(bad.code, 1);
  assert.match(bad.err, /no password on standard input/);
  bad = ctl(['whoami'], { token: 'lms_' + '0'.repeat(32) });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /credential expired, revoked or unknown/);
  assert.match(bad.err, /loomctl login/);
  bad = ctl(['bead', 'list'], { token: null });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /authentication required/);
  bad = ctl(['--server', 'http://127.0.0.1:9', 'project', 'list']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /cannot reach http:\/\/127\.0\.0\.1:9/);
  // a viewer may read but not write
  const v = await newUser('viewer');
  bad = ctl(['project', 'create', '--name', 'nope'], { token: v.token });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /permission projects:write is not granted/);
  assert.equal(ok(ctl(['project', 'list'], { token: v.token })).out.split('\n')[0].split(/ {2,}/)[0], 'ID');
});

test('project and bead commands: create, list, show, claim, poke, unblock, errors (table and JSON)', async () => {
  const id = `c${Date.now().toString(36).slice(-5)}`;
  let t = rows(ctl(['project', 'create', '--name', 'CLI project', '--id', id, '--prefix', id, '--paused']));
  assert.deepEqual(t[0], ['ID', id]);
  assert.ok(t.some((l) => l[0] === 'CONTEXT' && l[1] === '{"dispatch_paused":"true"}'));
  assert.ok(rows(ctl(['project', 'list'])).some((l) => l[0] === id && l[1] === 'CLI project'));
  assert.ok(json(ctl(['project', 'list', '-o', 'json'])).some((p) => p.id === id));
  t = rows(ctl(['project', 'show', id]));
  assert.deepEqual(t.at(-1), ['BEADS', 'open 0, in_progress 0, blocked 0, deferred 0, closed 0']);
  assert.equal(json(ctl(['project', 'show', id, '-o', 'json'])).bead_prefix, id);
  let r = ctl(['project', 'show', 'no-such-project']);
  assert.equal(r.code, 2);
  assert.match(r.err, /project no-such-project not found \(HTTP 404\)/);

  t = rows(ctl(['bead', 'create', '-p', id, '-t', 'First | with spaces', '--priority', 'P1', '--tag', 'ui', '--tag', 'web']));
  assert.deepEqual(t[0], ['ID', `${id}-1`]);
  assert.ok(t.some((l) => l[0] === 'TAGS' && l[1] === 'ui,web'));
  const second = json(ctl(['bead', 'create', '-p', id, '-t', 'Second', '--blocked-by', `${id}-1`, '-o', 'json', '-d', 'line one\nline two']));
  assert.deepEqual(second.blocked_by, [`${id}-1`]);
  r = ctl(['bead', 'create', '-p', id, '-t', 'Bad', '--blocked-by', `${id}-99`]);
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`blocked_by: bead ${id}-99 does not exist \\(HTTP 400\\)`));

  const list = rows(ctl(['bead', 'list', '-p', id]));
  assert.deepEqual(list[0], ['ID', 'PRI', 'STATUS', 'TYPE', 'ASSIGNED', 'TITLE']);
  assert.deepEqual(list[1], [`${id}-1`, 'P1', 'open', 'task', '-', 'First | with spaces']);
  assert.deepEqual(list[2], [`${id}-2`, 'P2', 'open', 'task', '-', 'Second']);
  assert.equal(list.length, 3);
  assert.deepEqual(json(ctl(['bead', 'list', '-p', id, '--priority', '1', '-o', 'json'])).map((b) => b.id), [`${id}-1`]);
  assert.equal(rows(ctl(['bead', 'list', '-p', id, '--status', 'closed'])).length, 1);
  r = ctl(['bead', 'list', '--status', 'finished']);
  assert.equal(r.code, 2);
  assert.match(r.err, /status: 'finished' is not one of/);
  // a description with a newline stays on its line in a table
  t = rows(ctl(['bead', 'show', `${id}-2`]));
  assert.deepEqual(t.find((l) => l[0] === 'DESCRIPTION'), ['DESCRIPTION', 'line one line two']);
  assert.deepEqual(t.find((l) => l[0] === 'BLOCKED BY'), ['BLOCKED BY', `${id}-1`]);
  assert.equal(json(ctl(['bead', 'show', `${id}-2`, '-o', 'json'])).description, 'line one\nline two');
  r = ctl(['bead', 'show', `${id}-77`]);
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`bead ${id}-77 not found`));

  t = rows(ctl(['bead', 'claim', `${id}-1`, '--agent', 'agent-x']));
  assert.ok(t.some((l) => l[0] === 'STATUS' && l[1] === 'in_progress'));
  r = ctl(['bead', 'claim', `${id}-1`, '--agent', 'agent-y']);
  assert.equal(r.code, 2);
  assert.match(r.err, /already claimed by agent-x \(HTTP 409\)/);
  const poked = json(ctl(['bead', 'poke', `${id}-1`, '--reason', 'try again', '-o', 'json']));
  assert.equal(poked.status, 'open');
  assert.equal(poked.assigned_to, null);
  assert.equal(poked.context.redispatch_requested_reason, 'try again');

  // errors and unblock on a bead the engine blocked
  r = ctl(['bead', 'unblock', `${id}-2`]);
  assert.equal(r.code, 2);
  assert.match(r.err, /is not blocked \(status open\)/);
  sql(`UPDATE beads SET status='blocked', context = context || '{"loop_detected":"true","error_history":[{"at":"2026-11-01T10:00:00Z","run_id":7,"reason":"provider_error","error":"HTTP 502 from the provider"}]}' WHERE id='${id}-2'`);
  t = rows(ctl(['bead', 'errors', `${id}-2`]));
  assert.deepEqual(t, [['AT', 'RUN', 'REASON', 'ERROR'], ['2026-11-01 10:00:00', '7', 'provider_error', 'HTTP 502 from the provider']]);
  assert.equal(json(ctl(['bead', 'errors', `${id}-2`, '-o', 'json']))[0].run_id, 7);
  const un = json(ctl(['bead', 'unblock', `${id}-2`, '-o', 'json']));
  assert.equal(un.status, 'open');
  assert.equal(un.context.loop_detected, undefined);
  assert.deepEqual(json(ctl(['bead', 'errors', `${id}-2`, '-o', 'json'])), []);
  r = ok(ctl(['bead', 'errors', `${id}-2`]));
  assert.equal(r.out.trim(), 'AT  RUN  REASON  ERROR');
  assert.match(r.err, /no recorded errors/);
});

test('agent, provider, decision and analytics commands', async () => {
  const p = await newProject();
  const agents = rows(ctl(['agent', 'list', '-p', p]));
  assert.deepEqual(agents[0], ['ID', 'NAME', 'PERSONA', 'PROJECT', 'STATUS', 'PROVIDER', 'BEAD']);
  assert.ok(agents.slice(1).some((l) => l[2] === 'engineering-manager' && l[3] === p));
  assert.ok(json(ctl(['agent', 'list', '-p', p, '-o', 'json'])).every((a) => a.project_id === p));

  const pid = `cli${Date.now().toString(36).slice(-5)}`;
  let t = rows(ctl(['provider', 'register', pid, '--endpoint', 'http://127.0.0.1:9/v1', '--model', 'm-1', '--api-key-stdin', '--tag', 'cheap'], { input: 'sk-secret-1\n' }));
  assert.deepEqual(t[0], ['ID', pid]);
  assert.ok(t.some((l) => l[0] === 'KEY' && l[1] === 'yes'));
  assert.ok(rows(ctl(['provider', 'list'])).some((l) => l[0] === pid && l[2] === 'm-1' && l[4] === 'yes'));
  const prov = json(ctl(['provider', 'list', '-o', 'json'])).find((x) => x.id === pid);
  assert.equal(prov.has_api_key, true);
  assert.ok(!JSON.stringify(prov).includes('sk-secret-1'));
  let r = ctl(['provider', 'register', pid, '--endpoint', 'http://127.0.0.1:9/v1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /already exists|409/);
  assert.equal((await api('DELETE', `/api/v1/providers/${pid}`)).status, 200);

  const b = await newBead(p, { title: 'Pick a database' });
  const d = (await api('POST', `/api/v1/beads/${b.id}/escalate`, { reason: 'PostgreSQL or SQLite?' })).body;
  t = rows(ctl(['decision', 'list', '-p', p]));
  assert.deepEqual(t[0], ['ID', 'PRI', 'STATUS', 'DECISION', 'FOR BEAD', 'QUESTION']);
  assert.deepEqual(t[1], [d.id, `P${d.priority}`, 'open', '-', b.id, 'PostgreSQL or SQLite?']);
  t = rows(ctl(['decision', 'decide', d.id, 'approve', '--rationale', 'PostgreSQL', '--decider', 'ceo-cli']));
  assert.ok(t.some((l) => l[0] === 'DECISION' && l[1] === 'approve'));
  assert.ok(t.some((l) => l[0] === 'DECIDER' && l[1] === 'ceo-cli'));
  r = ctl(['decision', 'decide', d.id, 'deny']);
  assert.equal(r.code, 2);
  assert.match(r.err, /already made/);
  assert.equal(json(ctl(['decision', 'list', '-p', p, '--status', 'closed', '-o', 'json']))[0].decision, 'approve');
  assert.equal((await api('GET', `/api/v1/beads/${b.id}`)).body.status, 'closed');

  t = ok(ctl(['analytics', 'stats', '--period', '7d', '-p', p]));
  assert.match(t.out, /^period: 7d$/m);
  assert.match(t.out, /^totals\.calls: 0$/m);
  assert.equal(json(ctl(['analytics', 'stats', '-o', 'json'])).period, '24h');
  r = ctl(['analytics', 'stats', '--period', 'forever']);
  assert.equal(r.code, 2);
  assert.match(r.err, /period/);
  // /analytics/costs may not exist on this server: then a clear message and exit 2
  r = ctl(['analytics', 'costs']);
  if (r.code === 2) assert.match(r.err, /this server has no \/api\/v1\/analytics\/costs/);
  else assert.equal(r.code, 0, r.err);
});

test('export and import: to a file and back, dry run, validate only, refusals', async () => {
  const p = await newProject();
  const a = await newBead(p, { title: 'A' });
  await newBead(p, { title: 'B', blocked_by: [a.id] });
  await api('POST', `/api/v1/beads/${a.id}/comments`, { content: 'note', author_id: 'me' });
  const file = path.join(tmp, `${p}.json`);
  let r = ok(ctl(['export', p, '-f', file]));
  assert.match(r.err, new RegExp(`exported ${p} to .*: 2 beads, 1 dependencies, 1 comments`));
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(doc.format, 'loom-export');
  assert.deepEqual(JSON.parse(ok(ctl(['export', p])).out).beads, doc.beads);

  const id = `i${Date.now().toString(36).slice(-5)}`;
  r = ok(ctl(['import', file, '--id', id, '--prefix', id, '--dry-run']));
  assert.equal(r.out.trim(), `dry run: would import project ${id} (from ${p}): 2 beads, 1 dependencies, 1 comments, 0 decisions`);
  assert.equal(sql(`SELECT count(*) FROM projects WHERE id='${id}'`), '0');
  r = ok(ctl(['import', file, '--validate-only']));
  assert.match(r.out, /^valid: would import project/);
  r = ok(ctl(['import', file, '--id', id, '--prefix', id]));
  assert.equal(r.out.trim(), `imported project ${id} (from ${p}): 2 beads, 1 dependencies, 1 comments, 0 decisions`);
  assert.deepEqual((await api('GET', `/api/v1/beads/${id}-2`)).body.blocked_by, [`${id}-1`]);
  r = ctl(['import', file, '--id', id, '--prefix', id]);
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`project ${id} already exists`));
  // through a pipe, renumbered, with JSON output
  const id2 = `${id}r`;
  const piped = spawnSync('sh', ['-c', `"${BIN}" export ${p} | "${BIN}" import - --id ${id2} --prefix ${id2} --renumber -o json`],
    { env: { ...process.env, LOOM_SERVER: BASE, LOOM_TOKEN: ADMIN_TOKEN }, encoding: 'utf8' });
  assert.equal(piped.status, 0, piped.stderr);
  assert.equal(JSON.parse(piped.stdout).id_map[a.id], `${id2}-1`);
  // a document the server refuses: 2 with its message; not JSON at all: 1
  fs.writeFileSync(path.join(tmp, 'bad.json'), JSON.stringify({ ...doc, version: 9 }));
  r = ctl(['import', path.join(tmp, 'bad.json'), '--id', 'zz1', '--prefix', 'zz1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /version: 9 is not supported; this server reads version 1 \(HTTP 400\)/);
  fs.writeFileSync(path.join(tmp, 'junk.json'), 'this is not json');
  r = ctl(['import', path.join(tmp, 'junk.json')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /is not a JSON object/);
  r = ctl(['export', 'no-such-project']);
  assert.equal(r.code, 2);
  assert.match(r.err, /project no-such-project not found/);
});

// Starts a stream in the background; resolves {code, out, err} when it exits.
function background(args) {
  const child = spawn(BIN, args, { env: { ...process.env, LOOM_SERVER: BASE, LOOM_TOKEN: ADMIN_TOKEN } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
  return { child, done, out: () => out };
}

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('event and log streams: live lines until Ctrl-C (exit 0), --count, --since, JSON lines; refusals exit 2', async () => {
  const p = await newProject();
  const s = background(['event', 'stream', '-p', p, '--type', 'bead.created']);
  await sleep(500);
  const b = await newBead(p, { title: 'streamed bead' });
  await waitFor(() => s.out().includes(b.id), 10000, 'the bead.created line');
  assert.match(s.out(), new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d bead\\.created +${p}/${b.id} streamed bead \\[open\\]$`, 'm'));
  s.child.kill('SIGINT');
  const end = await s.done;
  assert.equal(end.code, 0, end.err);

  const before = sql('SELECT coalesce(max(id), 0) FROM events');
  sql(`SELECT loom_event('log.warn', '${p}', NULL, 'tester', '{"message":"disk almost full"}')`);
  sql(`SELECT loom_event('log.info', '${p}', NULL, 'tester', '{"message":"all good"}')`);
  let r = ok(ctl(['log', 'stream', '-p', p, '--since', before, '--count', '2']));
  const lines = r.out.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^\S+ \S+ warn  tester: disk almost full$/);
  assert.match(lines[1], /^\S+ \S+ info  tester: all good$/);
  r = ok(ctl(['event', 'stream', '-p', p, '--since', before, '--count', '2', '-o', 'json']));
  const evs = r.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(evs.map((e) => e.type), ['log.warn', 'log.info']);
  assert.equal(evs[0].data.message, 'disk almost full');

  r = ctl(['event', 'stream', '--type', 'Not A Type']);
  assert.equal(r.code, 2);
  assert.match(r.err, /type: 'Not A Type' is not an event type/);
  r = ctl(['log', 'stream'], { token: 'lms_' + '1'.repeat(32) });
  assert.equal(r.code, 2);
  assert.match(r.err, /authentication required|expired/);
  r = ctl(['--server', 'http://127.0.0.1:9', 'event', 'stream']);
  assert.equal(r.code, 2);
  assert.match(r.err, /cannot reach/);
});
