// Decisions a person makes (escalate, list, decide) and the read models: analytics of LLM
// calls, event statistics, the log view of events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, assertError, footprint, newProject, newBead, sql } from './lib.mjs';

test('escalate, decide: approve closes the bead, deny reopens it to triage, more info sends it back', async () => {
  const p = await newProject();
  const b = await newBead(p, { title: 'Pick a database' });
  let r = await api('POST', `/api/v1/beads/${b.id}/escalate`, { reason: 'PostgreSQL or SQLite?' });
  assert.equal(r.status, 201, r.text);
  const d = r.body;
  assert.equal(d.question, 'PostgreSQL or SQLite?');
  assert.equal(d.escalated_from, b.id);
  assert.equal(d.status, 'open');
  let bead = (await api('GET', `/api/v1/beads/${b.id}`)).body;
  assert.equal(bead.status, 'blocked');
  assert.deepEqual(bead.blocked_by, [d.id]);
  assert.ok((await api('GET', `/api/v1/decisions?project_id=${p}`)).body.some((x) => x.id === d.id));
  assert.equal((await api('GET', `/api/v1/decisions/${d.id}`)).body.question, 'PostgreSQL or SQLite?');
  assertError(await api('POST', `/api/v1/beads/${b.id}/escalate`, { reason: 'again' }), 409, 'already waits');

  r = await api('POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'approve', rationale: 'PostgreSQL', decider_id: 'ceo-jane' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.decision, 'approve');
  assert.equal(r.body.decider_id, 'ceo-jane');
  assert.equal(r.body.status, 'closed');
  bead = (await api('GET', `/api/v1/beads/${b.id}`)).body;
  assert.equal(bead.status, 'closed');
  assert.equal(bead.context.ceo_decision, 'approve');
  assert.equal(bead.context.close_reason, 'approved by ceo-jane: PostgreSQL');
  assertError(await api('POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'deny' }), 409, 'already made');
  assert.equal((await api('GET', `/api/v1/decisions?project_id=${p}&status=closed`)).body[0].id, d.id);
  assert.equal(sql(`SELECT count(*) FROM events WHERE type='decision.decided' AND bead_id='${d.id}'`), '1');

  const c = await newBead(p, { title: 'Rewrite in Rust', assigned_to: 'someone' });
  const d2 = (await api('POST', `/api/v1/beads/${c.id}/escalate`, { reason: 'worth it?' })).body;
  assert.equal((await api('POST', `/api/v1/decisions/${d2.id}/decide`, { decision: 'deny', rationale: 'not now' })).status, 200);
  bead = (await api('GET', `/api/v1/beads/${c.id}`)).body;
  assert.equal(bead.status, 'open');
  assert.equal(bead.assigned_to, null);
  assert.equal(bead.context.ceo_decision, 'deny');
  assert.match((await api('GET', `/api/v1/beads/${c.id}/comments`)).body.at(-1).content, /Denied \(decision .*\): not now/);

  const e = await newBead(p, { title: 'Unclear task' });
  const d3 = (await api('POST', `/api/v1/beads/${e.id}/escalate`, { reason: 'what is meant?' })).body;
  assert.equal((await api('POST', `/api/v1/decisions/${d3.id}/decide`, { decision: 'needs_more_info', rationale: 'read the spec first' })).status, 200);
  bead = (await api('GET', `/api/v1/beads/${e.id}`)).body;
  assert.equal(bead.status, 'open');
  assert.equal(bead.context.redispatch_requested, 'true');
  assert.equal(bead.context.ceo_rationale, 'read the spec first');
  assert.match((await api('GET', `/api/v1/beads/${e.id}/comments`)).body.at(-1).content, /More information needed/);
});

test('decision routes: bad input is a clear 4xx and changes nothing', async () => {
  const p = await newProject();
  const b = await newBead(p, { title: 'x' });
  const d = (await api('POST', `/api/v1/beads/${b.id}/escalate`, { reason: 'q' })).body;
  const done = await newBead(p, { title: 'done', status: 'closed' });
  const before = footprint(p);
  const cases = [
    ['POST', `/api/v1/beads/${b.id}/escalate`, {}, 400, 'reason: is required'],
    ['POST', `/api/v1/beads/${b.id}/escalate`, { reason: '' }, 400, 'reason'],
    ['POST', `/api/v1/beads/${b.id}/escalate`, { reason: 'x', extra: 1 }, 400, 'extra'],
    ['POST', `/api/v1/beads/${done.id}/escalate`, { reason: 'x' }, 409, 'is closed'],
    ['POST', `/api/v1/beads/${d.id}/escalate`, { reason: 'x' }, 409, 'itself a decision'],
    ['POST', `/api/v1/beads/${p}-99999/escalate`, { reason: 'x' }, 404, 'not found'],
    ['POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'maybe' }, 400, 'decision'],
    ['POST', `/api/v1/decisions/${d.id}/decide`, {}, 400, 'decision: is required'],
    ['POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'approve', rationale: 5 }, 400, 'rationale'],
    ['POST', `/api/v1/decisions/${b.id}/decide`, { decision: 'approve' }, 404, 'not found'],
    ['GET', `/api/v1/decisions/${b.id}`, undefined, 404, 'not found'],
    ['GET', '/api/v1/decisions/nope', undefined, 400, 'bead id'],
    ['GET', '/api/v1/decisions?status=maybe', undefined, 400, 'status'],
    ['GET', '/api/v1/analytics/stats?period=2y', undefined, 400, 'period'],
    ['GET', '/api/v1/analytics/stats?project_id=Bad!', undefined, 400, 'project_id'],
    ['GET', '/api/v1/events/stats?x=1', undefined, 400, 'x'],
    ['GET', '/api/v1/logs/recent?level=loud', undefined, 400, 'level'],
    ['GET', '/api/v1/logs/recent?limit=5000', undefined, 400, 'limit'],
    ['GET', '/api/v1/logs/recent?since_id=-1', undefined, 400, 'since_id'],
    ['GET', '/api/v1/logs/recent?bead_id=zz', undefined, 400, 'bead_id'],
  ];
  for (const [method, path, body, status, fragment] of cases) {
    assertError(await api(method, path, body), status, fragment);
  }
  assert.equal(footprint(p), before);
});

test('analytics, event statistics and logs read what happened', async () => {
  const p = await newProject();
  const b = await newBead(p, { title: 'measured' });
  const agent = (await api('GET', `/api/v1/agents?project_id=${p}`)).body[0].id;
  const rid = sql(`WITH r AS (INSERT INTO runs (bead_id, project_id, agent_id, persona_name, priority) VALUES ('${b.id}', '${p}', '${agent}', 'ceo', 2) RETURNING id) SELECT id FROM r`);
  sql(`SELECT loom_llm_call_record('{"run_id":${rid},"served_model":"gpt-4o","prompt_tokens":1000,"completion_tokens":100,"latency_ms":200,"status":"ok"}'::jsonb)`);
  sql(`SELECT loom_llm_call_record('{"run_id":${rid},"served_model":"gpt-4o","prompt_tokens":500,"latency_ms":400,"status":"error","error_class":"server"}'::jsonb)`);
  const s = (await api('GET', `/api/v1/analytics/stats?project_id=${p}&period=1h`)).body;
  assert.equal(s.period, '1h');
  assert.equal(s.totals.calls, 2);
  assert.equal(s.totals.errors, 1);
  assert.equal(s.totals.prompt_tokens, 1500);
  assert.equal(Number(s.totals.cost_usd), 0.00475);
  assert.equal(Number(s.totals.avg_latency_ms), 300);
  assert.deepEqual(s.by_project.map((x) => [x.key, x.calls]), [[p, 2]]);
  assert.deepEqual(s.by_agent.map((x) => x.key), [agent]);
  assert.deepEqual(s.by_model.map((x) => x.key), ['gpt-4o']);
  assert.equal(s.by_hour.reduce((n, x) => n + x.calls, 0), 2);
  const empty = (await api('GET', '/api/v1/analytics/stats?project_id=no-such-project')).body;
  assert.equal(empty.totals.calls, 0);
  assert.deepEqual(empty.by_model, []);

  const es = (await api('GET', `/api/v1/events/stats?project_id=${p}`)).body;
  assert.equal(es.period, '24h');
  assert.ok(es.by_type.some((x) => x.type === 'bead.created' && x.count === 1));
  assert.equal(es.total, es.by_type.reduce((n, x) => n + x.count, 0));

  const logs = (await api('GET', `/api/v1/logs/recent?project_id=${p}&level=debug`)).body;
  const created = logs.find((l) => l.type === 'bead.created');
  assert.equal(created.level, 'info');
  assert.match(created.message, new RegExp(`${b.id} created: measured`));
  const first = logs[logs.length - 1].id;
  await api('PATCH', `/api/v1/beads/${b.id}`, { status: 'blocked' });
  const since = (await api('GET', `/api/v1/logs/recent?project_id=${p}&since_id=${first}&level=warn`)).body;
  assert.ok(since.length >= 1 && since.every((l) => l.id > first && ['warn', 'error'].includes(l.level)));
  assert.match(since.find((l) => l.type === 'bead.status_change').message, /open → blocked/);
});
