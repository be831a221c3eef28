// Providers: register against the OpenAI-compatible stub, the prober marks them healthy or
// failed, the model list comes from the provider, and the API key never comes back out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { api, assertError, newProject, sql, sleep } from './lib.mjs';

const KEY = `sk-test-${Date.now().toString(36)}-secret`;
let stub;
let stubUrl;

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { env: { ...process.env, STUB_API_KEY: KEY }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(m[1]); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
  stubUrl = `http://127.0.0.1:${port}`;
});

after(() => stub?.kill('SIGTERM'));

async function waitStatus(id, want) {
  let r;
  for (let i = 0; i < 100; i++) {
    r = await api('GET', `/api/v1/providers/${id}`);
    if (r.body.status === want) return r.body;
    await sleep(100);
  }
  assert.fail(`provider ${id} stayed ${r.body.status}, want ${want}: ${r.body.last_heartbeat_error}`);
}

test('register, probe to healthy, list models; the key never comes back', async () => {
  const id = `stub${Date.now().toString(36)}`;
  const p = await newProject();
  let r = await api('POST', '/api/v1/providers', { id, name: 'Stub', endpoint: stubUrl, api_key: KEY, model: 'stub-model' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.endpoint, `${stubUrl}/v1`, 'a bare host gets /v1');
  assert.equal(r.body.has_api_key, true);
  assert.ok(!r.text.includes(KEY));
  const healthy = await waitStatus(id, 'healthy');
  assert.equal(typeof healthy.last_heartbeat_latency_ms, 'number');
  assert.ok(healthy.last_heartbeat_at);

  r = await api('GET', `/api/v1/providers/${id}/models`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.models.map((m) => m.id), ['stub-model']);
  const seen = (await (await fetch(`${stubUrl}/_stub/requests`)).json()).filter((q) => q.path === '/v1/models');
  assert.ok(seen.length >= 2 && seen.every((q) => q.authorization === `Bearer ${KEY}`), 'the key is sent to the provider');

  // agents paused for want of a provider now have one
  r = await api('GET', `/api/v1/agents?project_id=${p}`);
  assert.ok(r.body.every((a) => a.status === 'idle' && a.provider_id), JSON.stringify(r.body.map((a) => [a.status, a.provider_id])));

  // and a project made now starts with working agents
  const p2 = await newProject();
  r = await api('GET', `/api/v1/agents?project_id=${p2}`);
  assert.ok(r.body.every((a) => a.status === 'idle' && a.provider_id), 'new agents get the healthy provider');
  assertError(await api('POST', '/api/v1/agents', { persona_name: 'ceo', project_id: p2, provider_id: 'nope' }), 400, 'provider_id');

  for (const path of ['/api/v1/providers', `/api/v1/providers/${id}`, `/api/v1/events?limit=1000`]) {
    assert.ok(!(await api('GET', path)).text.includes(KEY), `${path} shows the key`);
  }
  assert.equal(sql(`SELECT count(*) FROM events WHERE payload::text LIKE '%${KEY}%'`), '0');
  const logs = readdirSync(`${process.env.LOOM_VAR}/log`).map((f) => readFileSync(`${process.env.LOOM_VAR}/log/${f}`, 'utf8'));
  assert.ok(!logs.some((l) => l.includes(KEY)), 'a log shows the key');
});

test('a wrong key or a dead endpoint is failed with the reason; changes re-probe', async () => {
  const id = `bad${Date.now().toString(36)}`;
  let r = await api('POST', '/api/v1/providers', { id, endpoint: 'http://127.0.0.1:1/v1' });
  assert.equal(r.status, 201, r.text);
  let p = await waitStatus(id, 'failed');
  assert.match(p.last_heartbeat_error, /connect|refused/i);
  assertError(await api('GET', `/api/v1/providers/${id}/models`), 502, id);

  r = await api('PUT', `/api/v1/providers/${id}`, { endpoint: `${stubUrl}/v1`, api_key: 'wrong' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'pending', 'a new endpoint is probed again');
  p = await waitStatus(id, 'failed');
  assert.match(p.last_heartbeat_error, /401/);
  r = await api('PUT', `/api/v1/providers/${id}`, { api_key: KEY });
  await waitStatus(id, 'healthy');
  r = await api('PATCH', `/api/v1/providers/${id}`, { status: 'inactive' });
  assert.equal(r.body.status, 'inactive');
  r = await api('DELETE', `/api/v1/providers/${id}`);
  assert.equal(r.status, 200);
  assertError(await api('GET', `/api/v1/providers/${id}`), 404, 'not found');
});

test('bad provider input', async () => {
  const id = `dup${Date.now().toString(36)}`;
  assert.equal((await api('POST', '/api/v1/providers', { id, endpoint: stubUrl })).status, 201);
  const cases = [
    [{ endpoint: stubUrl }, 400, 'id: is required'],
    [{ id: 'x1' }, 400, 'endpoint: is required'],
    [{ id: 'x2', endpoint: 'ftp://host/v1' }, 400, 'http(s) URL'],
    [{ id: 'x3', endpoint: 'http:///v1' }, 400, 'http(s) URL'],
    [{ id: 'Bad Id', endpoint: stubUrl }, 400, 'id'],
    [{ id: 'x4', endpoint: stubUrl, api_key: 42 }, 400, 'api_key: must be a string'],
    [{ id: 'x5', endpoint: stubUrl, type: 'anthropic' }, 400, 'type'],
    [{ id: 'x6', endpoint: stubUrl, status: 'healthy' }, 400, 'read-only'],
    [{ id, endpoint: stubUrl }, 409, 'already exists'],
  ];
  for (const [body, status, fragment] of cases) assertError(await api('POST', '/api/v1/providers', body), status, fragment);
  assertError(await api('PUT', `/api/v1/providers/${id}`, { status: 'healthy' }), 400, 'status');
  assertError(await api('PUT', '/api/v1/providers/nope', { name: 'x' }), 404, 'not found');
  assert.equal(sql(`SELECT count(*) FROM providers WHERE id LIKE 'x_'`), '0');
});
