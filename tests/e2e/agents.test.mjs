// Personas (loaded from deploy/personas by loom-migrate) and agents, through nginx.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, assertError, newProject, sql } from './lib.mjs';

const DEFAULTS = ['ceo', 'code-reviewer', 'devops-engineer', 'engineering-manager', 'qa-engineer'];

test('the default personas are loaded from their SKILL.md files', async () => {
  const r = await api('GET', '/api/v1/personas');
  assert.equal(r.status, 200);
  const names = r.body.map((p) => p.name);
  for (const n of [...DEFAULTS, 'cfo', 'cto', 'product-manager', 'remediation-specialist']) {
    assert.ok(names.includes(n), `persona ${n} missing`);
  }
  assert.equal(r.body.length >= 16, true);
  const qa = r.body.find((p) => p.name === 'qa-engineer');
  assert.equal(qa.instructions, null, 'the list leaves the instructions out');
  assert.ok(qa.metadata.role.length > 0);
  assert.ok(['full', 'semi', 'supervised'].includes(qa.metadata.autonomy_level));
  const one = await api('GET', '/api/v1/personas/qa-engineer');
  assert.ok(one.body.instructions.length > 200, 'the SKILL.md body is the instructions');
  assert.equal(one.body.source, 'file');
});

test('PUT edits a persona (kept as a person edited it) or creates one', async () => {
  let r = await api('PUT', '/api/v1/personas/housekeeping-bot', { description: 'Tidies up.', metadata: { specialties: ['lint', 'deps'] } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.description, 'Tidies up.');
  assert.deepEqual(r.body.metadata.specialties, ['lint', 'deps']);
  assert.equal(r.body.source, 'api');
  const name = `tester-${Date.now().toString(36)}`;
  assertError(await api('PUT', `/api/v1/personas/${name}`, { description: 'only this' }), 404, 'give description and instructions');
  r = await api('PUT', `/api/v1/personas/${name}`, { description: 'Writes tests.', instructions: '# Tester\nWrite tests first.', metadata: { role: 'Tester', autonomy_level: 'full' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.metadata.role, 'Tester');
  assertError(await api('PUT', `/api/v1/personas/${name}`, { metadata: { autonomy_level: 'total' } }), 400, 'metadata.autonomy_level');
  assertError(await api('PUT', `/api/v1/personas/${name}`, { name: 'other' }), 400, 'read-only');
  assertError(await api('PUT', '/api/v1/personas/Bad_Name', { description: 'x' }), 400, 'persona name');
  assertError(await api('GET', '/api/v1/personas/no-such-persona'), 404, 'not found');
});

test('a new project gets its default agents; agents CRUD', async () => {
  const p = await newProject();
  let r = await api('GET', `/api/v1/agents?project_id=${p}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.map((a) => a.persona_name).sort(), DEFAULTS);
  assert.ok(r.body.every((a) => a.status === 'paused' && a.provider_id === null), 'no provider yet: paused');
  const spawned = Number(sql(`SELECT count(*) FROM events WHERE project_id='${p}' AND type='agent.spawned'`));
  assert.equal(spawned, DEFAULTS.length);

  r = await api('POST', '/api/v1/agents', { persona_name: 'web-designer', project_id: p, name: 'Wendy' });
  assert.equal(r.status, 201, r.text);
  const a = r.body;
  assert.equal(a.name, 'Wendy');
  assert.ok(a.role.length > 0, 'role comes from the persona');
  r = await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'idle' });
  assert.equal(r.body.status, 'idle');
  assertError(await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'working' }), 400, 'claiming a bead');
  assertError(await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'asleep' }), 400, 'status');
  assertError(await api('PATCH', `/api/v1/agents/${a.id}`, { persona_name: 'nobody' }), 400, 'does not exist');
  assertError(await api('POST', '/api/v1/agents', { persona_name: 'nobody', project_id: p }), 400, 'does not exist');
  assertError(await api('POST', '/api/v1/agents', { persona_name: 'ceo', project_id: 'no-such' }), 400, 'does not exist');
  assertError(await api('POST', '/api/v1/agents', { project_id: p }), 400, 'persona_name: is required');
  r = await api('GET', `/api/v1/agents?project_id=${p}&persona_name=web-designer&status=idle`);
  assert.deepEqual(r.body.map((x) => x.id), [a.id]);
  assertError(await api('GET', '/api/v1/agents?status=sleeping'), 400, 'status');
  r = await api('DELETE', `/api/v1/agents/${a.id}`);
  assert.equal(r.status, 200);
  assertError(await api('GET', `/api/v1/agents/${a.id}`), 404, 'not found');
  // agents go with their project
  await api('DELETE', `/api/v1/projects/${p}`);
  assert.equal(sql(`SELECT count(*) FROM agents WHERE project_id='${p}'`), '0');
});
