// The work loop end to end: dispatcher → run → executor → LLM (the stub) → terminal state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { api, newProject, newBead, sql, sleep } from './lib.mjs';

let stub;
let stubUrl;
let provider;
let project;

async function script(replies) {
  const r = await fetch(`${stubUrl}/_stub/script`, { method: 'POST', body: JSON.stringify({ replies }) });
  assert.equal(r.status, 200);
}

async function waitBead(id, pred, what, ms = 15000) {
  let b;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    b = (await api('GET', `/api/v1/beads/${id}`)).body;
    if (pred(b)) return b;
    await sleep(100);
  }
  assert.fail(`bead ${id} never ${what}: ${JSON.stringify(b)}`);
}

const run = (bead) => sql(`SELECT state || '/' || coalesce(terminal_reason, '') || '/' || iterations FROM runs WHERE bead_id='${bead}' ORDER BY id DESC LIMIT 1`);

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
  // other test files leave providers and open beads behind: park them so only ours works
  sql(`UPDATE providers SET status = 'inactive'`);
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE state IN ('queued', 'running')`);
  provider = `runstub${Date.now().toString(36)}`;
  assert.equal((await api('POST', '/api/v1/providers', { id: provider, endpoint: stubUrl, model: 'stub-model' })).status, 201);
  for (let i = 0; i < 100 && (await api('GET', `/api/v1/providers/${provider}`)).body.status !== 'healthy'; i++) await sleep(100);
  project = await newProject({ dispatch: true });
  for (const a of (await api('GET', `/api/v1/agents?project_id=${project}`)).body) {
    await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  }
  for (const persona of ['engineering-manager', 'qa-engineer']) {
    const r = await api('POST', '/api/v1/agents', { persona_name: persona, project_id: project, provider_id: provider });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.status, 'idle');
  }
});

after(() => stub?.kill('SIGTERM'));

test('an agent works a bead to closed through the LLM', async () => {
  await script([JSON.stringify({ actions: [{ type: 'done', reason: 'nothing left to do' }], notes: 'checked' })]);
  const b = await newBead(project, { title: 'Say hello', description: 'A tiny task.', priority: 0 });
  const closed = await waitBead(b.id, (x) => x.status === 'closed', 'closed');
  assert.ok(closed.closed_at);
  assert.equal(closed.context.terminal_reason, 'completed');
  assert.equal(closed.context.dispatch_count, 1);
  assert.equal(run(b.id), 'succeeded/completed/1');
  const agent = (await api('GET', `/api/v1/agents/${closed.assigned_to}`)).body;
  assert.equal(agent.persona_name, 'engineering-manager');
  assert.equal(agent.status, 'idle');
  assert.equal(agent.current_bead, null);
  const types = sql(`SELECT string_agg(type, ',' ORDER BY id) FROM events WHERE bead_id='${b.id}' AND type LIKE 'run.%'`);
  assert.equal(types, 'run.queued,run.started,run.iteration,run.finished');
  const calls = (await (await fetch(`${stubUrl}/_stub/requests`)).json()).filter((q) => q.path === '/v1/chat/completions');
  const last = calls[calls.length - 1].body;
  assert.equal(last.model, 'stub-model');
  assert.equal(last.stream, true);
  assert.match(last.messages[0].content, /Engineering Manager/);
  assert.match(last.messages[1].content, new RegExp(`Work on bead ${b.id}: Say hello`));
});

test('persona hints choose the agent; a failed action is fed back', async () => {
  await script([
    JSON.stringify({ actions: [{ type: 'read_file', path: 'README.md' }] }),
    '```json\n' + JSON.stringify({ actions: [{ type: 'close_bead', reason: 'done' }] }) + '\n```',
  ]);
  const b = await newBead(project, { title: '[qa-engineer] Check the release', priority: 0 });
  const closed = await waitBead(b.id, (x) => x.status === 'closed', 'closed');
  assert.equal((await api('GET', `/api/v1/agents/${closed.assigned_to}`)).body.persona_name, 'qa-engineer');
  assert.equal(run(b.id), 'succeeded/completed/2');
  const calls = (await (await fetch(`${stubUrl}/_stub/requests`)).json()).filter((q) => q.path === '/v1/chat/completions');
  const msgs = calls[calls.length - 1].body.messages;
  assert.match(msgs[msgs.length - 1].content, /1\. read_file README\.md: error\n/);
});

test('escalation blocks the bead; unreadable replies fail the run and back off', async () => {
  await script([JSON.stringify({ actions: [{ type: 'escalate_ceo', reason: 'needs a person' }] })]);
  const e = await newBead(project, { title: 'Pick a license', priority: 0 });
  await waitBead(e.id, (x) => x.status === 'blocked', 'blocked');
  assert.equal(run(e.id), 'succeeded/escalated/1');

  await script(['hmm', 'let me think', 'not json', 'still prose', 'no', '{"actions": 3}', '{}', 'nope']);
  const p = await newBead(project, { title: 'Confusing task', priority: 0 });
  const back = await waitBead(p.id, (x) => x.context.terminal_reason === 'parse_failures', 'failed');
  assert.equal(back.status, 'open');
  assert.equal(back.assigned_to, null);
  assert.ok(back.context.last_failed_at);
  assert.equal(run(p.id), 'failed/parse_failures/8');
  await sleep(1500); // the dispatcher ticks meanwhile but backs off (5 s in the tests)
  assert.equal(sql(`SELECT count(*) FROM runs WHERE bead_id='${p.id}'`), '1');
});

test('the hop limit and an expired last lease block a bead with the reason', async () => {
  const h = await newBead(project, { title: 'Looping work', priority: 0, context: { dispatch_count: '20' } });
  const blocked = await waitBead(h.id, (x) => x.status === 'blocked', 'blocked');
  assert.match(blocked.context.ralph_blocked_reason, /hop limit/);

  const other = await newProject(); // no healthy agent: the dispatcher leaves it alone
  const l = await newBead(other, { title: 'Lost executor' });
  const agent = (await api('GET', `/api/v1/agents?project_id=${other}`)).body[0];
  sql(`INSERT INTO runs (bead_id, project_id, agent_id, persona_name, priority, state, attempt, lease_owner, lease_expires_at, started_at)
       VALUES ('${l.id}', '${other}', '${agent.id}', '${agent.persona_name}', 2, 'running', 3, 'gone-executor', now() - interval '1 minute', now())`);
  const lost = await waitBead(l.id, (x) => x.status === 'blocked', 'blocked by Ralph', 20000);
  assert.match(lost.context.ralph_blocked_reason, /lost its executor 3 times/);
  assert.equal(run(l.id), 'failed/lease_expired/0');
});
