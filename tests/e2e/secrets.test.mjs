// Secrets at rest: a provider's API key is stored sealed ("v1:" + base64(nonce || secretbox)
// under <var>/secret.key), never in plaintext, never shown by the API, an event or a log, and
// the workers still send it to the provider.  A key left in plaintext by an older schema is
// sealed by loom-migrate; a sealed value that does not open fails the provider with a reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { api, assertError, newBead, newProject, sql, sleep } from './lib.mjs';

const tag = Date.now().toString(36);
const KEY = `sk-secret-${tag}-0123456789`;
const ids = [];
let stub;
let stubUrl;

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { env: { ...process.env, STUB_API_KEY: KEY }, stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
});

after(async () => {
  for (const id of ids) await api('DELETE', `/api/v1/providers/${id}`);
  stub?.kill('SIGTERM');
});

async function register(body) {
  const r = await api('POST', '/api/v1/providers', { endpoint: stubUrl, model: 'stub-model', ...body });
  assert.equal(r.status, 201, r.text);
  ids.push(body.id);
  return r;
}

async function waitStatus(id, want) {
  let r;
  for (let i = 0; i < 100; i++) {
    r = await api('GET', `/api/v1/providers/${id}`);
    if (r.body.status === want) return r.body;
    await sleep(100);
  }
  assert.fail(`provider ${id} stayed ${r.body.status}, want ${want}: ${r.body.last_heartbeat_error}`);
}

// [plaintext column, sealed column] of a provider, '-' for NULL
const stored = (id) => sql(`SELECT coalesce(api_key, '-') || ' ' || coalesce(api_key_sealed, '-') FROM providers WHERE id = '${id}'`).split(' ');
// The error psql prints for a statement that must fail ('' when it succeeds).
const sqlError = (query) => spawnSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', process.env.LOOM_DATABASE_URL, '-c', query], { encoding: 'utf8' }).stderr;
const stubCalls = async (path) => (await (await fetch(`${stubUrl}/_stub/requests`)).json()).filter((q) => q.path === path);

function assertSealed(sealed) {
  assert.match(sealed, /^v1:[A-Za-z0-9+/]+={0,2}$/);
  assert.ok(!sealed.includes(KEY), 'the sealed value holds the key');
  const raw = Buffer.from(sealed.slice(3), 'base64');
  assert.equal(raw.length, 24 + 16 + KEY.length, 'nonce + MAC + the key');
  assert.ok(!raw.includes(Buffer.from(KEY)), 'the key is only encoded, not sealed');
}

test('a key is stored sealed, shown nowhere, and still sent to the provider by ralph and the executor', async () => {
  const id = `sec${tag}`;
  let r = await register({ id, api_key: KEY });
  assert.equal(r.body.has_api_key, true);
  assert.ok(!r.text.includes(KEY) && !r.text.includes('v1:'), r.text);
  const [plain, sealed] = stored(id);
  assert.equal(plain, '-', 'the plaintext column stays empty');
  assertSealed(sealed);
  const key = statSync(`${process.env.LOOM_VAR}/secret.key`);
  assert.equal(key.mode & 0o777, 0o600, 'secret.key is 0600');

  // loom-ralph opens it for the probe: the stub answers 401 to anything but "Bearer KEY"
  await waitStatus(id, 'healthy');
  assert.ok((await stubCalls('/v1/models')).some((q) => q.authorization === `Bearer ${KEY}`));
  r = await api('GET', `/api/v1/providers/${id}/models`); // loom-api opens it too
  assert.equal(r.status, 200, r.text);

  // the executor opens it for the model: a bead worked to closed through this provider only
  sql(`UPDATE providers SET status = 'inactive' WHERE id <> '${id}'`);
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE state IN ('queued', 'running')`);
  const p = await newProject({ dispatch: true });
  for (const a of (await api('GET', `/api/v1/agents?project_id=${p}`)).body) await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  r = await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: p, provider_id: id });
  assert.equal(r.status, 201, r.text);
  const b = await newBead(p, { title: 'Keyed work', priority: 0 });
  let bead;
  for (const t0 = Date.now(); Date.now() - t0 < 15000; await sleep(100)) {
    bead = (await api('GET', `/api/v1/beads/${b.id}`)).body;
    if (bead.status === 'closed') break;
  }
  assert.equal(bead.status, 'closed', JSON.stringify(bead));
  const chats = await stubCalls('/v1/chat/completions');
  assert.ok(chats.length > 0 && chats.every((q) => q.authorization === `Bearer ${KEY}`), 'the executor sends the key');

  // nowhere to be read: API answers, events, logs
  for (const path of ['/api/v1/providers', `/api/v1/providers/${id}`, '/api/v1/events?limit=1000', `/api/v1/beads/${b.id}`]) {
    const text = (await api('GET', path)).text;
    assert.ok(!text.includes(KEY) && !text.includes(sealed), `${path} shows the key`);
  }
  assert.equal(sql(`SELECT count(*) FROM events WHERE payload::text LIKE '%${KEY}%' OR payload::text LIKE '%${sealed.slice(3, 40)}%'`), '0');
  for (const f of readdirSync(`${process.env.LOOM_VAR}/log`)) {
    assert.ok(!readFileSync(`${process.env.LOOM_VAR}/log/${f}`, 'utf8').includes(KEY), `log ${f} shows the key`);
  }

  // the same key again seals differently (a fresh nonce); null removes it
  r = await api('PUT', `/api/v1/providers/${id}`, { api_key: KEY });
  assert.equal(r.status, 200, r.text);
  const [, again] = stored(id);
  assertSealed(again);
  assert.notEqual(again, sealed);
  await waitStatus(id, 'healthy');
  r = await api('PATCH', `/api/v1/providers/${id}`, { api_key: null });
  assert.equal(r.body.has_api_key, false);
  assert.deepEqual(stored(id), ['-', '-']);
});

test('a plaintext key left by an older schema is sealed by loom-migrate and still works', async () => {
  const id = `legacy${tag}`;
  await register({ id });
  // as a row written before 009_secrets looked
  sql(`UPDATE providers SET api_key = '${KEY}' WHERE id = '${id}'`);
  assert.equal((await api('GET', `/api/v1/providers/${id}`)).body.has_api_key, true);
  const bin = process.env.LOOM_BIN_DIR || 'build/bin';
  const out = spawnSync(`${bin}/loom-migrate`, ['--dir', 'sql'], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stderr, /sealed 1 provider API keys stored in plaintext/);
  assert.ok(!out.stderr.includes(KEY));
  const [plain, sealed] = stored(id);
  assert.equal(plain, '-');
  assertSealed(sealed);
  // the programs open what loom-migrate sealed: a re-probe with the key passes the stub's check
  const before = (await stubCalls('/v1/models')).length;
  assert.equal((await api('PATCH', `/api/v1/providers/${id}`, { status: 'pending' })).status, 200);
  await waitStatus(id, 'healthy');
  const probes = (await stubCalls('/v1/models')).slice(before);
  assert.ok(probes.length > 0 && probes.every((q) => q.authorization === `Bearer ${KEY}`));
  // a second run finds nothing left to seal
  const again = spawnSync(`${bin}/loom-migrate`, ['--dir', 'sql'], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /sealed/);
});

test('a sealed key that does not open fails the provider with the reason; plaintext is refused', async () => {
  const id = `tamper${tag}`;
  await register({ id, api_key: KEY });
  await waitStatus(id, 'healthy');
  const [, sealed] = stored(id);
  const mid = Math.floor(sealed.length / 2);
  const bad = sealed.slice(0, mid) + (sealed[mid] === 'A' ? 'B' : 'A') + sealed.slice(mid + 1);
  sql(`UPDATE providers SET api_key_sealed = '${bad}', status = 'pending' WHERE id = '${id}'`);
  await api('PATCH', `/api/v1/providers/${id}`, { status: 'pending' });
  const p = await waitStatus(id, 'failed');
  assert.match(p.last_heartbeat_error, /does not open with this secret key/);
  assertError(await api('GET', `/api/v1/providers/${id}/models`), 409, 'set the API key again');
  assert.equal((await api('GET', '/health/ready')).status, 200, 'nothing crashed');

  // the database takes no plaintext key, whoever asks
  assert.match(sqlError(`SELECT loom_provider_create('{"id": "plain${tag}", "endpoint": "${stubUrl}", "api_key": "k"}', 't')`), /must be sealed/);
  assert.match(sqlError(`SELECT loom_provider_update('${id}', '{"api_key": "k"}', 't')`), /must be sealed/);
  assert.match(sqlError(`UPDATE providers SET api_key_sealed = 'sk-plain' WHERE id = '${id}'`), /check constraint/);
  assert.equal(sql(`SELECT count(*) FROM providers WHERE api_key IS NOT NULL OR id = 'plain${tag}'`), '0');
});
