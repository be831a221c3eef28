// Motivations against the real stack: loom-ralph (every 0.5 s in the test stack) evaluates
// them; each type fires once per condition, never stacks while its bead is open, respects its
// cooldown without filling the history, and bad input is refused with a 400 naming the problem.
// Test projects have dispatch paused, so the beads motivations file stay open until we close them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, assertError, authHeader, newBead, newProject, newUser, sql, sleep } from './lib.mjs';

const M = '/api/v1/motivations';
const cleanup = [];

after(async () => {
  // nothing of ours keeps firing into later test files
  for (const id of cleanup) await api('POST', `${M}/${id}/disable`);
});

async function create(body, headers = {}) {
  const r = await api('POST', M, { cooldown_period: 0, ...body }, headers);
  assert.equal(r.status, 201, r.text);
  cleanup.push(r.body.id);
  return r.body;
}

async function history(id, query = '') {
  const r = await api('GET', `${M}/${id}/history${query}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

// Polls the history of motivation id until pred(rows) holds.
async function waitHistory(id, pred, what, ms = 15000) {
  let rows;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    rows = await history(id);
    if (pred(rows)) return rows;
    await sleep(150);
  }
  assert.fail(`motivation ${id}: never ${what}: ${JSON.stringify(rows)}`);
}

const results = (rows, r) => rows.filter((x) => x.result === r);
const closeBead = async (id) => assert.equal((await api('PATCH', `/api/v1/beads/${id}`, { status: 'closed' })).status, 200);
// Several of Ralph's ticks (0.5 s each): long enough for a wrong firing to show up.
const someTicks = () => sleep(2000);

test('every new project gets the built-in motivations, disabled unless its settings enable them', async () => {
  const p = await newProject();
  let r = await api('GET', `${M}?project_id=${p}`);
  assert.equal(r.status, 200, r.text);
  const names = r.body.map((m) => m.name).sort();
  assert.deepEqual(names, ['CEO weekly review', 'CEO: LLM cost over budget', 'DevOps: run failure rate',
    'Engineering manager: project idle', 'QA: review completed work']);
  assert.ok(r.body.every((m) => m.is_built_in && m.status === 'disabled' && m.project_id === p && m.disabled_at));
  const byType = Object.fromEntries(r.body.map((m) => [m.name, m]));
  assert.equal(byType['QA: review completed work'].agent_role, 'qa-engineer');
  assert.deepEqual(byType['QA: review completed work'].condition, { event: 'bead_completed' });
  assert.equal(byType['DevOps: run failure rate'].condition.metric, 'failure_rate');
  assert.equal(byType['Engineering manager: project idle'].condition.scope, 'project');

  const on = await newProject({ context: { dispatch_paused: 'true', motivations_enabled: 'true' } });
  r = await api('GET', `${M}?project_id=${on}&type=calendar`);
  assert.equal(r.body.length, 1);
  const weekly = r.body[0];
  cleanup.push(...(await api('GET', `${M}?project_id=${on}`)).body.map((m) => m.id));
  assert.equal(weekly.status, 'active');
  // the engine gives the cron schedule its first time: a Monday, 09:00 UTC
  let next;
  for (let i = 0; i < 60 && !next; i++) {
    next = (await api('GET', `${M}/${weekly.id}`)).body.next_trigger_at;
    if (!next) await sleep(150);
  }
  assert.ok(next, 'next_trigger_at was filled in');
  const d = new Date(next);
  assert.equal(d.getUTCDay(), 1);
  assert.equal(`${d.getUTCHours()}:${d.getUTCMinutes()}`, '9:0');
  assert.ok(d > new Date() && d - new Date() <= 7 * 86400e3);
  // turning the setting off disables them again (and only them)
  const mine = await create({ name: 'not built in', type: 'external', project_id: on });
  assert.equal((await api('PATCH', `/api/v1/projects/${on}`, { context: { motivations_enabled: 'false' } })).status, 200);
  r = await api('GET', `${M}?project_id=${on}`);
  for (const m of r.body) assert.equal(m.status, m.id === mine.id ? 'active' : 'disabled', m.name);
});

test('calendar: fires on its interval, never stacks while its bead is open, fires again once it is closed', async () => {
  const p = await newProject();
  const m = await create({
    name: 'Every second', type: 'calendar', condition: { interval_seconds: 1 }, project_id: p,
    agent_role: 'qa-engineer', bead_template: { title: 'Tick of {motivation} in {project_id}', tags: ['cal'], priority: 1 },
  });
  assert.equal(m.status, 'active');
  assert.ok(m.next_trigger_at);
  let rows = await waitHistory(m.id, (h) => results(h, 'success').length === 1, 'fired');
  const first = results(rows, 'success')[0];
  assert.equal(first.trigger_data.source, 'calendar');
  const bead = (await api('GET', `/api/v1/beads/${first.bead_created}`)).body;
  assert.equal(bead.title, `Tick of Every second in ${p}`);
  assert.equal(bead.priority, 1);
  assert.equal(bead.context.requires_persona, 'qa-engineer');
  assert.equal(bead.context.motivation_id, String(m.id));
  assert.deepEqual(bead.tags, ['cal', 'motivation']);
  let cur = (await api('GET', `${M}/${m.id}`)).body;
  assert.equal(cur.status, 'fired');
  assert.equal(cur.active_bead, bead.id);
  assert.equal(cur.trigger_count, 1);
  assert.equal(first.finished_at, null, 'the firing runs while its bead is open');

  // its bead is open: several due times pass, one "skipped" is recorded, nothing else
  await someTicks();
  rows = await history(m.id);
  assert.equal(results(rows, 'success').length, 1, JSON.stringify(rows));
  assert.equal(results(rows, 'skipped').length, 1, JSON.stringify(rows));
  assert.match(results(rows, 'skipped')[0].error, new RegExp(`${bead.id}\\) is still open`));
  assert.equal(sql(`SELECT count(*) FROM beads WHERE project_id = '${p}'`), '1');

  await closeBead(bead.id);
  rows = await waitHistory(m.id, (h) => results(h, 'success').length === 2, 'fired again');
  const second = results(rows, 'success')[0];
  assert.notEqual(second.bead_created, bead.id);
  assert.ok(rows.find((x) => x.id === first.id).finished_at, 'the first firing finished with its bead');
  cur = (await api('GET', `${M}/${m.id}`)).body;
  assert.equal(cur.trigger_count, 2);
  assert.equal(cur.active_bead, second.bead_created);
  assert.equal((await api('POST', `${M}/${m.id}/disable`)).body.status, 'disabled');
  await someTicks();
  assert.equal((await history(m.id)).length, rows.length, 'a disabled motivation does not fire');
  // events of the firings reached the feed
  const fired = await api('GET', `/api/v1/events?project_id=${p}&type=motivation.fired`);
  assert.equal(fired.body.length, 2);
  assert.equal(fired.body[0].data.motivation_id, m.id);
});

test('event: each new bead fires once, its own beads never count, nothing fires twice', async () => {
  const p = await newProject();
  const m = await create({
    name: 'Triage new work', type: 'event', condition: { event: 'bead_created' }, project_id: p,
    agent_role: 'engineering-manager', bead_template: { title: 'Triage {bead_id}' },
  });
  const b1 = await newBead(p, { title: 'first' });
  let rows = await waitHistory(m.id, (h) => results(h, 'success').length === 1, 'fired for the first bead');
  const made = results(rows, 'success')[0];
  assert.equal(made.trigger_data.bead_id, b1.id);
  assert.equal(made.trigger_data.event_type, 'bead.created');
  assert.equal((await api('GET', `/api/v1/beads/${made.bead_created}`)).body.title, `Triage ${b1.id}`);
  // while the triage bead is open: two more beads, one "skipped" remembered
  await newBead(p, { title: 'second' });
  await newBead(p, { title: 'third' });
  rows = await waitHistory(m.id, (h) => results(h, 'skipped').length === 1, 'skipped');
  await closeBead(made.bead_created);
  const b4 = await newBead(p, { title: 'fourth' });
  rows = await waitHistory(m.id, (h) => results(h, 'success').length === 2, 'fired for the fourth bead');
  assert.equal(results(rows, 'success')[0].trigger_data.bead_id, b4.id);
  await someTicks();
  rows = await history(m.id);
  // the triage beads it filed were new beads too, but never fired it
  assert.deepEqual(rows.map((x) => x.result).sort(), ['skipped', 'success', 'success']);
  const ids = results(rows, 'success').map((x) => x.trigger_data.event_id);
  assert.equal(new Set(ids).size, 2);
  assert.equal(sql(`SELECT count(*) FROM beads WHERE project_id = '${p}' AND context ->> 'motivation_id' = '${m.id}'`), '2');
});

test('threshold: LLM cost over the limit fires once, and again only after it cleared', async () => {
  const p = await newProject();
  const m = await create({
    name: 'Spend alarm', type: 'threshold', condition: { metric: 'cost', threshold: 2, window_seconds: 600 },
    project_id: p, agent_role: 'ceo', bead_template: { title: 'Spent ${value}' },
  });
  sql(`INSERT INTO llm_calls (project_id, cost_usd, status) VALUES ('${p}', 1.5, 'ok')`);
  await someTicks();
  assert.equal((await history(m.id)).length, 0, 'under the limit');
  sql(`INSERT INTO llm_calls (project_id, cost_usd, status) VALUES ('${p}', 1.0, 'ok')`);
  let rows = await waitHistory(m.id, (h) => h.length === 1, 'fired');
  assert.equal(rows[0].result, 'success');
  assert.equal(rows[0].trigger_data.metric, 'cost');
  assert.equal(Number(rows[0].trigger_data.value), 2.5);
  assert.equal((await api('GET', `/api/v1/beads/${rows[0].bead_created}`)).body.title, 'Spent $2.500000');
  await closeBead(rows[0].bead_created);
  await someTicks();
  assert.equal((await history(m.id)).length, 1, 'still over the limit: held, not fired again');
  // the spending leaves the window, then a new burst crosses the limit again
  sql(`UPDATE llm_calls SET created_at = now() - interval '1 hour' WHERE project_id = '${p}'`);
  for (let i = 0; i < 100 && sql(`SELECT condition_held FROM motivations WHERE id = ${m.id}`) === 't'; i++) await sleep(150);
  assert.equal(sql(`SELECT condition_held FROM motivations WHERE id = ${m.id}`), 'f', 'the engine saw it clear');
  sql(`INSERT INTO llm_calls (project_id, cost_usd, status) VALUES ('${p}', 3, 'ok')`);
  rows = await waitHistory(m.id, (h) => results(h, 'success').length === 2, 'fired again');
  assert.equal(Number(rows[0].trigger_data.value), 3);
});

test('threshold: the failure rate of runs', async () => {
  const p = await newProject();
  const m = await create({
    name: 'Failing runs', type: 'threshold', project_id: p, agent_role: 'devops-engineer',
    condition: { metric: 'failure_rate', threshold: 0.5, window_seconds: 3600, min_runs: 3 },
  });
  const b = await newBead(p);
  const run = (state) => sql(`INSERT INTO runs (bead_id, project_id, persona_name, priority, state, terminal_reason, finished_at)
    VALUES ('${b.id}', '${p}', 'qa-engineer', 2, '${state}', '${state === 'failed' ? 'error' : 'completed'}', now())`);
  run('failed');
  run('failed');
  await someTicks();
  assert.equal((await history(m.id)).length, 0, 'fewer than min_runs');
  run('succeeded');
  const rows = await waitHistory(m.id, (h) => h.length === 1, 'fired');
  assert.equal(rows[0].trigger_data.failed_runs, 2);
  assert.equal(rows[0].trigger_data.finished_runs, 3);
  assert.equal(Number(rows[0].trigger_data.value), 0.6667);
  assert.equal((await api('GET', `/api/v1/beads/${rows[0].bead_created}`)).body.context.requires_persona, 'devops-engineer');
});

test('idle: a project with no activity for N minutes fires; so does an idle agent', async () => {
  const p = await newProject();
  const m = await create({
    name: 'Quiet project', type: 'idle', condition: { scope: 'project', idle_minutes: 2 }, project_id: p,
    agent_role: 'engineering-manager',
  });
  await someTicks();
  assert.equal((await history(m.id)).length, 0, 'the project was just created');
  sql(`UPDATE events SET created_at = now() - interval '3 minutes' WHERE project_id = '${p}'`);
  const rows = await waitHistory(m.id, (h) => h.length === 1, 'fired');
  assert.equal(rows[0].result, 'success');
  assert.equal(rows[0].trigger_data.scope, 'project');
  assert.equal(rows[0].trigger_data.idle_minutes, 2);

  const agent = (await api('GET', `/api/v1/agents?project_id=${p}&persona_name=qa-engineer`)).body[0];
  const a = await create({
    name: 'Quiet agent', type: 'idle', condition: { scope: 'agent', idle_minutes: 5 }, project_id: p,
    agent_id: agent.id,
  });
  await someTicks();
  assert.equal((await history(a.id)).length, 0);
  sql(`UPDATE agents SET last_active = now() - interval '10 minutes', updated_at = now() - interval '10 minutes' WHERE id = '${agent.id}'`);
  const arows = await waitHistory(a.id, (h) => h.length === 1, 'fired');
  assert.equal(arows[0].trigger_data.agent_id, agent.id);
  // agent_id routes the bead to that agent's persona
  assert.equal((await api('GET', `/api/v1/beads/${arows[0].bead_created}`)).body.context.requires_persona, 'qa-engineer');
});

test('cooldown: the engine records a refusal once per window; a person\'s trigger is always answered', async () => {
  const p = await newProject();
  const m = await create({
    name: 'Slow clock', type: 'calendar', condition: { interval_seconds: 1 }, project_id: p,
    cooldown_period: 3600, agent_role: 'ceo',
  });
  let rows = await waitHistory(m.id, (h) => h.length === 1, 'fired');
  await closeBead(rows[0].bead_created);
  rows = await waitHistory(m.id, (h) => results(h, 'cooldown').length === 1, 'cooled down');
  assert.match(rows[0].error, /cooling down until \d{4}-\d\d-\d\dT/);
  await someTicks();
  rows = await history(m.id);
  // (a "skipped" may come first if a due time passed before the bead was closed)
  assert.equal(results(rows, 'cooldown').length, 1, `one cooldown row, not one per tick: ${JSON.stringify(rows)}`);
  assert.equal(results(rows, 'success').length, 1);
  assert.ok(rows.length <= 3, JSON.stringify(rows));
  assert.equal((await api('GET', `${M}/${m.id}`)).body.status, 'cooldown');
  const r = await api('POST', `${M}/${m.id}/trigger`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.result, 'cooldown');
  assert.equal(r.body.trigger_data.source, 'manual');
  assert.equal(results(await history(m.id), 'cooldown').length, 2);
});

test('external: fires only through /trigger; it can wake a paused agent', async () => {
  const p = await newProject();
  const prov = `mprov${Date.now().toString(36)}`;
  assert.equal((await api('POST', '/api/v1/providers', { id: prov, endpoint: 'http://127.0.0.1:1/v1' })).status, 201);
  try {
    let a = await api('POST', '/api/v1/agents', { persona_name: 'qa-engineer', project_id: p, provider_id: prov, name: 'QA on call' });
    assert.equal(a.status, 201, a.text);
    const agent = a.body;
    assert.equal((await api('PATCH', `/api/v1/agents/${agent.id}`, { status: 'paused' })).body.status, 'paused');
    const m = await create({
      name: 'Release published', type: 'external', project_id: p, agent_id: agent.id, wake_agent: true,
      create_bead_on_trigger: false,
    });
    assert.deepEqual(m.condition, {});
    await someTicks();
    assert.equal((await history(m.id)).length, 0, 'external motivations never fire by themselves');
    const r = await api('POST', `${M}/${m.id}/trigger`, { data: { release: 'v1.2' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.result, 'success');
    assert.equal(r.body.agent_woken, agent.id);
    assert.equal(r.body.bead_created, null);
    assert.equal(r.body.trigger_data.release, 'v1.2');
    assert.ok(r.body.finished_at, 'nothing left running');
    a = (await api('GET', `/api/v1/agents/${agent.id}`)).body;
    assert.equal(a.status, 'idle');
    // a second trigger right away: the idle agent goes to the front of the queue
    const again = await api('POST', `${M}/${m.id}/trigger`);
    assert.equal(again.body.result, 'success', 'an idle agent is moved to the front instead');
    assert.equal((await api('POST', `${M}/${m.id}/disable`)).status, 200);
    assertError(await api('POST', `${M}/${m.id}/trigger`), 409, 'is disabled; enable it first');
    assert.equal((await api('POST', `${M}/${m.id}/enable`)).body.status, 'active');
    const all = await api('GET', `${M}/history?project_id=${p}`);
    assert.equal(all.body.length, 2);
    assert.equal(all.body[0].motivation_name, 'Release published');
  } finally {
    await api('DELETE', `/api/v1/providers/${prov}`);
  }
});

test('a person\'s trigger of a motivation whose bead is open is skipped, never stacked', async () => {
  const p = await newProject();
  const m = await create({ name: 'On demand', type: 'external', project_id: p, agent_role: 'engineering-manager' });
  const one = await api('POST', `${M}/${m.id}/trigger`);
  assert.equal(one.body.result, 'success');
  const two = await api('POST', `${M}/${m.id}/trigger`);
  assert.equal(two.status, 200);
  assert.equal(two.body.result, 'skipped');
  assert.equal(two.body.bead_created, null);
  assert.match(two.body.error, new RegExp(one.body.bead_created));
  assert.equal(sql(`SELECT count(*) FROM beads WHERE project_id = '${p}'`), '1');
  await closeBead(one.body.bead_created);
  const three = await api('POST', `${M}/${m.id}/trigger`);
  assert.equal(three.body.result, 'success');
  assert.deepEqual((await history(m.id, '?result=success')).map((x) => x.id), [three.body.id, one.body.id]);
});

test('bad input is a 400 that names the problem, and changes nothing', async () => {
  const p = await newProject();
  const base = { name: 'x', type: 'external', project_id: p };
  const cases = [
    [{}, 'name: is required'],
    [{ ...base, type: 'weekly' }, "type: 'weekly' is not one of"],
    [{ ...base, type: 'calendar' }, 'condition: is required for a calendar motivation'],
    [{ ...base, type: 'calendar', condition: { interval_seconds: 5, cron: '* * * * *' } }, 'interval_seconds or cron'],
    [{ ...base, type: 'calendar', condition: { interval_seconds: 0 } }, 'condition.interval_seconds: must be an integer'],
    [{ ...base, type: 'calendar', condition: { cron: '61 * * * *' } }, 'condition.cron: minute 61 is out of range 0-59'],
    [{ ...base, type: 'calendar', condition: { cron: '* * * *' } }, 'condition.cron: want 5 fields'],
    [{ ...base, type: 'calendar', condition: { cron: '0 0 31 2 *' } }, 'condition.cron: never matches'],
    [{ ...base, type: 'event', condition: { event: 'bead_exploded' } }, "condition.event: 'bead_exploded' is not one of"],
    [{ ...base, type: 'event', condition: {} }, 'condition.event: is required'],
    [{ ...base, type: 'threshold', condition: { threshold: 1 } }, 'condition.metric: is required'],
    [{ ...base, type: 'threshold', condition: { metric: 'cost' } }, 'condition.threshold: is required'],
    [{ ...base, type: 'threshold', condition: { metric: 'cost', threshold: -1 } }, 'condition.threshold: must be above 0'],
    [{ ...base, type: 'threshold', condition: { metric: 'failure_rate', threshold: 1.5 } }, 'at most 1'],
    [{ ...base, type: 'threshold', condition: { metric: 'cost', threshold: '5' } }, 'condition.threshold: must be a number'],
    [{ ...base, type: 'threshold', condition: { metric: 'cost', threshold: 5, window_seconds: 1 } }, 'condition.window_seconds'],
    [{ ...base, type: 'idle', condition: { scope: 'galaxy', idle_minutes: 5 } }, "condition.scope: 'galaxy' is not one of"],
    [{ ...base, type: 'idle', condition: { scope: 'project', idle_minutes: 0 } }, 'condition.idle_minutes'],
    [{ ...base, type: 'idle', condition: { scope: 'agent', idle_minutes: 5 } }, 'agent idleness needs an agent_id'],
    [{ ...base, project_id: null, type: 'idle', condition: { scope: 'project', idle_minutes: 5 } }, 'project idleness needs a project_id'],
    [{ ...base, condition: { foo: 1 } }, "condition.unknown field 'foo'"],
    [{ ...base, bead_template: { title: '' } }, 'bead_template.title'],
    [{ ...base, bead_template: { priority: 7 } }, 'bead_template.priority'],
    [{ ...base, bead_template: { colour: 'red' } }, "bead_template.unknown field 'colour'"],
    [{ ...base, bead_template: { requires_persona: 'Big Boss' } }, 'bead_template.requires_persona'],
    [{ ...base, bead_template: { requires_persona: 'nobody-here' } }, 'persona nobody-here does not exist'],
    [{ ...base, agent_role: 'Not A Persona' }, 'agent_role:'],
    [{ ...base, agent_role: 'nobody-here' }, 'agent_role: persona nobody-here does not exist'],
    [{ ...base, agent_id: 'agent-999999' }, 'agent_id: agent agent-999999 does not exist'],
    [{ ...base, project_id: 'nosuchproject' }, 'project_id: project nosuchproject does not exist'],
    [{ ...base, project_id: 'Bad Id' }, 'project_id'],
    [{ ...base, cooldown_period: -1 }, 'cooldown_period'],
    [{ ...base, priority: 101 }, 'priority'],
    [{ ...base, wake_agent: true, create_bead_on_trigger: false }, 'wake_agent: needs agent_role or agent_id'],
    [{ ...base, create_bead_on_trigger: false }, 'must file a bead'],
    [{ ...base, status: 'fired' }, "status: 'fired' is not one of active, disabled"],
    [{ ...base, trigger_count: 3 }, 'trigger_count: is read-only'],
    [{ ...base, name: 'y'.repeat(201) }, 'name: must be 1 to 200'],
  ];
  const footprint = () => sql(`SELECT count(*) || '/' || (SELECT count(*) FROM events WHERE project_id = '${p}') FROM motivations`);
  const before = footprint();
  for (const [body, fragment] of cases) assertError(await api('POST', M, body), 400, fragment);
  assertError(await api('POST', M, 'not json'), 400);
  assert.equal(footprint(), before);

  const m = await create({ ...base, name: 'Target' });
  assertError(await api('POST', M, { ...base, name: 'TARGET' }), 409, 'a motivation named TARGET already exists');
  const patches = [
    [{}, 'no fields to update'],
    [{ type: 'calendar' }, 'condition: is required with type'],
    [{ condition: { cron: '* * * * *' } }, "condition.unknown field 'cron'"],
    [{ type: 'calendar', condition: { cron: '*/99 * * * *' } }, 'condition.cron: minute: the step'],
    [{ project_id: 'other' }, 'project_id: a motivation cannot move'],
    [{ status: 'cooldown' }, 'status'],
    [{ is_built_in: true }, 'is_built_in: is read-only'],
  ];
  const snap = () => sql(`SELECT md5(m::text) FROM motivations m WHERE id = ${m.id}`);
  const was = snap();
  for (const [body, fragment] of patches) assertError(await api('PATCH', `${M}/${m.id}`, body), 400, fragment);
  assert.equal(snap(), was);
  // a good change re-arms it: a calendar now, with its first time
  const ok = await api('PUT', `${M}/${m.id}`, { type: 'calendar', condition: { cron: '30 4 * * *' }, description: 'nightly' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(new Date(ok.body.next_trigger_at).getUTCHours(), 4);
  assert.equal(new Date(ok.body.next_trigger_at).getUTCMinutes(), 30);

  assertError(await api('GET', `${M}/abc`), 400, "'abc' is not a valid motivation id");
  assertError(await api('GET', `${M}/999999`), 404, 'motivation 999999 not found');
  assertError(await api('GET', `${M}/999999/history`), 404, 'motivation 999999 not found');
  assertError(await api('POST', `${M}/999999/trigger`), 404, 'not found');
  assertError(await api('POST', `${M}/${m.id}/trigger`, { data: 'x' }), 400, 'data: must be an object');
  assertError(await api('POST', `${M}/${m.id}/trigger`, { project_id: 'someother' }), 400, `belongs to project ${p}`);
  assertError(await api('GET', `${M}?stauts=active`), 400, 'stauts');
  assertError(await api('GET', `${M}?type=weekly`), 400, 'type');
  assertError(await api('GET', `${M}/history?result=maybe`), 400, 'result');
  assertError(await api('GET', `${M}/history?motivation_id=x`), 400, 'motivation_id');
  assertError(await api('DELETE', `${M}/999999`), 404, 'not found');
  assert.equal((await api('DELETE', `${M}/${m.id}`)).status, 200);
  assertError(await api('GET', `${M}/${m.id}`), 404);
});

test('roles: a viewer reads but cannot change; a user works in their own projects only; global ones are for admins', async () => {
  const viewer = await newUser('viewer');
  const user = await newUser('user');
  const p = await newProject();
  const adminOnly = await create({ name: 'Admin project one', type: 'external', project_id: p });
  const count = sql('SELECT count(*) FROM motivations');

  assertError(await api('POST', M, { name: 'v', type: 'external', project_id: p }, authHeader(viewer.token)), 403, 'motivations:write');
  assertError(await api('POST', `${M}/${adminOnly.id}/trigger`, undefined, authHeader(viewer.token)), 403, 'motivations:write');
  assert.equal(sql('SELECT count(*) FROM motivations'), count);
  assert.equal((await api('GET', M, undefined, authHeader(viewer.token))).status, 200);

  // the user's own project: its built-ins and a motivation of theirs, which they may trigger
  const up = await newProject({}, authHeader(user.token));
  const mine = await create({ name: 'Mine', type: 'external', project_id: up, agent_role: 'ceo' }, authHeader(user.token));
  const t = await api('POST', `${M}/${mine.id}/trigger`, undefined, authHeader(user.token));
  assert.equal(t.body.result, 'success');
  const list = (await api('GET', M, undefined, authHeader(user.token))).body;
  assert.ok(list.some((m) => m.id === mine.id));
  assert.ok(list.every((m) => m.project_id === up || m.project_id === null), 'only their projects and global ones');
  // another project's motivation does not exist for them
  assertError(await api('GET', `${M}/${adminOnly.id}`, undefined, authHeader(user.token)), 404);
  assertError(await api('POST', `${M}/${adminOnly.id}/trigger`, undefined, authHeader(user.token)), 404);
  assertError(await api('GET', `${M}/${adminOnly.id}/history`, undefined, authHeader(user.token)), 404);
  assertError(await api('POST', M, { name: 'Sneaky', type: 'external', project_id: p }, authHeader(user.token)), 400, `project ${p} does not exist`);
  // global motivations: only an admin makes or changes them; deleting needs motivations:delete
  assertError(await api('POST', M, { name: 'Everywhere', type: 'external' }, authHeader(user.token)), 403, 'only an admin');
  const global = await create({ name: `Global ${Date.now()}`, type: 'external', agent_role: 'ceo' });
  assert.equal(global.project_id, null);
  assertError(await api('PATCH', `${M}/${global.id}`, { description: 'mine now' }, authHeader(user.token)), 403, 'only an admin');
  assertError(await api('DELETE', `${M}/${mine.id}`, undefined, authHeader(user.token)), 403, 'motivations:delete');
  // a global motivation fired by hand files its bead in the project named, else nowhere
  const g1 = await api('POST', `${M}/${global.id}/trigger`);
  assert.equal(g1.body.result, 'no_target');
  assert.match(g1.body.error, /no project to file the bead in/);
  const g2 = await api('POST', `${M}/${global.id}/trigger`, { project_id: p });
  assert.equal(g2.body.result, 'success', g2.text);
  assert.equal(g2.body.project_id, p);
  assert.match(g2.body.bead_created, new RegExp(`^${p}-\\d+$`));
  assert.equal((await api('DELETE', `${M}/${global.id}`)).status, 200);
});
