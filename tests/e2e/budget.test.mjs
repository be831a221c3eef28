// Budgets in USD end to end: real executors reserve every LLM call against the project's and
// the bead's budgets, the stub's usage makes every call cost a known amount, and what is used
// up stops work on a decision a person answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { api, assertError, authHeader, footprint, newProject, newBead, newUser, sql, sleep } from './lib.mjs';

let stub;
let stubUrl;
let provider;
const model = `budgetmodel${Date.now().toString(36)}`;

// $0.10 a million prompt tokens, $2.50 a million completion tokens; the stub reports 100 and
// 4096 (the executor's max_tokens), so every call costs $0.01025 and its reservation (prompt
// characters / 4 at the input price + 4096 at the output price) is a little more.
const CALL = 0.01025;
const RESERVATION_MAX = 0.0115;
const usage = { prompt_tokens: 100, completion_tokens: 4096 };
const actions = (...list) => ({ actions: list, notes: 'scripted' });

const stubPost = async (path, body) => {
  const r = await fetch(`${stubUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
};

async function until(what, fn, ms = 120000) {
  let last;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    last = await fn();
    if (last) return last;
    await sleep(250);
  }
  assert.fail(`never: ${what}`);
}

// A project on the stub with `agents` idle agents (the default ones, with no provider, paused).
async function project(agents = 1, extra = {}) {
  const p = await newProject({ dispatch: true, ...extra });
  for (const a of (await api('GET', `/api/v1/agents?project_id=${p}`)).body) {
    await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  }
  for (let i = 0; i < agents; i++) {
    const r = await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: p, provider_id: provider, name: `EM ${i}` });
    assert.equal(r.status, 201, r.text);
  }
  return p;
}

const events = (p, type) => Number(sql(`SELECT count(*) FROM events WHERE project_id='${p}' AND type='${type}'`));

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
  sql(`UPDATE providers SET status = 'inactive'`);
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE state IN ('queued', 'running')`);
  sql(`INSERT INTO model_prices (model_prefix, prompt_per_mtok, completion_per_mtok) VALUES ('${model}', 0.10, 2.50)`);
  provider = `budgetstub${Date.now().toString(36)}`;
  assert.equal((await api('POST', '/api/v1/providers', { id: provider, endpoint: stubUrl, model })).status, 201);
  await until('the provider is healthy', async () => (await api('GET', `/api/v1/providers/${provider}`)).body.status === 'healthy', 10000);
});

after(() => {
  stub?.kill('SIGTERM');
  sql(`DELETE FROM model_prices WHERE model_prefix = '${model}'`);
});

test('20 concurrent beads on a $0.10 budget: spending stays within it, the rest wait on one decision, alerts fire once', async () => {
  const p = await project(6);
  let r = await api('PUT', `/api/v1/projects/${p}/budget`, { limit_usd: 0.1 });
  assert.equal(r.status, 200, r.text);
  assert.equal(Number(r.body.limit_usd), 0.1);
  assert.equal(Number(r.body.spent_usd), 0);
  await stubPost('/_stub/script', { usage, beads: [{ match: '^Budget ', replies: [actions({ type: 'read_tree', path: '.' }), actions({ type: 'done', reason: 'ok' })] }] });
  const beads = [];
  for (let i = 0; i < 20; i++) beads.push((await newBead(p, { title: `Budget ${i}` })).id);
  // every bead ends closed, or blocked for the budget; never two runs at once of one bead
  const settled = await until('every bead is closed or blocked', async () => {
    const list = (await api('GET', `/api/v1/beads?project_id=${p}&type=task&limit=100`)).body;
    return list.filter((b) => b.status === 'closed' || b.status === 'blocked').length === 20 && list;
  });
  const live = Number(sql(`SELECT count(*) FROM runs WHERE project_id='${p}' AND state IN ('queued', 'running')`));
  assert.equal(live, 0, 'no run holds an executor');
  assert.equal(sql(`SELECT count(*) FROM agents WHERE project_id='${p}' AND status = 'working'`), '0');
  const blocked = settled.filter((b) => b.status === 'blocked');
  const closed = settled.filter((b) => b.status === 'closed');
  assert.ok(blocked.length >= 10, `most beads cannot fit: ${blocked.length} blocked`);
  assert.ok(closed.length >= 1, 'some beads finished');
  // the spend: within the budget but for one call's reservation, and exactly the calls' cost
  const budget = await until('the reservations are settled', async () => {
    const b = (await api('GET', `/api/v1/projects/${p}/budget`)).body;
    return b.reservations === 0 && b;
  }, 15000);
  const spent = Number(budget.spent_usd);
  const calls = Number(sql(`SELECT count(*) FROM llm_calls WHERE project_id='${p}'`));
  assert.ok(spent <= 0.1 + RESERVATION_MAX, `spent ${spent} of 0.10`);
  assert.ok(spent >= 0.08, `the budget was used: ${spent}`);
  assert.equal(spent.toFixed(6), Number(sql(`SELECT sum(cost_usd) FROM llm_calls WHERE project_id='${p}'`)).toFixed(6));
  assert.equal(spent.toFixed(6), (calls * CALL).toFixed(6), `${calls} calls of $${CALL}`);
  assert.equal(Number(budget.reserved_usd), 0);
  assert.equal(Number(budget.remaining_usd).toFixed(6), Math.max(0, 0.1 - spent).toFixed(6));
  assert.deepEqual([...budget.blocked_beads].sort(), blocked.map((b) => b.id).sort());
  // each blocked bead: reason budget, on one open decision that asks to raise it
  const decisions = (await api('GET', `/api/v1/decisions?project_id=${p}`)).body;
  assert.equal(decisions.length, 1, JSON.stringify(decisions));
  const d = decisions[0];
  assert.equal(d.gate, 'budget');
  assert.match(d.title, /Raise the budget of project/);
  assert.match(d.question, /the budget of project .* \(\$0\.1\) is used up/);
  assert.deepEqual(budget.decisions, [d.id]);
  for (const b of blocked) {
    assert.equal(b.context.terminal_reason, 'budget');
    assert.match(b.context.ralph_blocked_reason, /^budget: /);
    assert.equal(b.context.escalated_to_ceo_decision_id, d.id);
    assert.ok(b.blocked_by.includes(d.id));
  }
  // 80 % and 100 %: one event each, however many calls and refusals there were
  assert.equal(events(p, 'budget.warning'), 1);
  assert.equal(events(p, 'budget.exceeded'), 1);
  const warn = JSON.parse(sql(`SELECT payload FROM events WHERE project_id='${p}' AND type='budget.warning'`));
  assert.equal(warn.scope, 'total');
  assert.ok(Number(warn.percent) >= 80);
  assert.deepEqual(budget.alerts.map((a) => a.level).sort(), ['exceeded', 'warning']);
  // Ralph never lifts a budget block
  sql(`UPDATE beads SET context = context || '{"ralph_blocked_at": "2020-01-01T00:00:00Z"}' WHERE id = '${blocked[0].id}'`);
  await sleep(1500);
  assert.equal((await api('GET', `/api/v1/beads/${blocked[0].id}`)).body.status, 'blocked');

  // a person raises the budget and approves: every waiting bead is worked to the end
  r = await api('PUT', `/api/v1/projects/${p}/budget`, { limit_usd: 1 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.alerts.length, 0, 'the new limit re-arms the alerts');
  r = await api('POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'approve', rationale: 'raised to $1' });
  assert.equal(r.status, 200, r.text);
  await until('every bead is closed', async () => {
    const list = (await api('GET', `/api/v1/beads?project_id=${p}&type=task&limit=100`)).body;
    return list.every((b) => b.status === 'closed');
  });
  const after = (await api('GET', `/api/v1/projects/${p}/budget`)).body;
  assert.ok(Number(after.spent_usd) <= 1);
  assert.equal(Number(after.spent_usd).toFixed(6), Number(sql(`SELECT sum(cost_usd) FROM llm_calls WHERE project_id='${p}'`)).toFixed(6));
  assert.equal(events(p, 'budget.warning'), 1);
  assert.equal(events(p, 'budget.exceeded'), 1);
  assert.match((await api('GET', `/api/v1/beads/${blocked[0].id}/comments`)).body.at(-1).content, /Budget approved \(decision .*\) by admin: raised to \$1/);
});

test('a bead budget stops its own bead only, on a decision of its own', async () => {
  const p = await project(1);
  await stubPost('/_stub/script', { usage, beads: [{ match: '^Capped', replies: [actions({ type: 'read_tree', path: '.' }), actions({ type: 'git_status' }), actions({ type: 'done', reason: 'ok' })] }] });
  const capped = await newBead(p, { title: 'Capped', context: { budget_usd: '0.015' } });
  const free = await newBead(p, { title: 'Capped too, but not by budget' });
  await until('the capped bead is blocked', async () => (await api('GET', `/api/v1/beads/${capped.id}`)).body.status === 'blocked', 60000);
  await until('the other bead is closed', async () => (await api('GET', `/api/v1/beads/${free.id}`)).body.status === 'closed', 60000);
  let b = (await api('GET', `/api/v1/beads/${capped.id}/budget`)).body;
  assert.equal(Number(b.limit_usd), 0.015);
  assert.equal(Number(b.spent_usd), CALL);
  assert.match(b.blocked_reason, /^budget: the budget of bead .* is used up/);
  const d = (await api('GET', `/api/v1/decisions/${b.decision_id}`)).body;
  assert.equal(d.gate, 'budget');
  assert.equal(d.escalated_from, capped.id);
  assert.match(d.title, /Raise the budget of bead/);
  assert.equal(sql(`SELECT count(*) FROM events WHERE bead_id='${capped.id}' AND type='budget.exceeded'`), '1');
  // raised and approved: it finishes
  let r = await api('PUT', `/api/v1/beads/${capped.id}/budget`, { limit_usd: 1 });
  assert.equal(r.status, 200, r.text);
  assert.equal(Number(r.body.limit_usd), 1);
  assert.equal((await api('GET', `/api/v1/beads/${capped.id}`)).body.context.budget_usd, '1');
  r = await api('POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'approve', rationale: 'fine' });
  assert.equal(r.status, 200, r.text);
  b = await until('the capped bead is closed', async () => {
    const x = (await api('GET', `/api/v1/beads/${capped.id}`)).body;
    return x.status === 'closed' && x;
  }, 60000);
  assert.equal(Number(sql(`SELECT count(*) FROM llm_calls WHERE bead_id='${capped.id}'`)), 3);
});

test('reservations of a run that died are released by Ralph', async () => {
  const p = await newProject();
  const b = await newBead(p, { title: 'nobody works this' });
  // a run on its last attempt whose executor is gone: its lease runs out, Ralph fails it
  const rid = sql(`INSERT INTO runs (bead_id, project_id, persona_name, priority, state, attempt, lease_owner, lease_expires_at, started_at)
                   VALUES ('${b.id}', '${p}', 'ceo', 2, 'running', 99, 'gone-executor', now() + interval '2 seconds', now()) RETURNING id`).split('\n')[0];
  sql(`INSERT INTO budget_reservations (project_id, bead_id, run_id, owner, amount_usd) VALUES ('${p}', '${b.id}', ${rid}, 'gone-executor', 0.5)`);
  let budget = (await api('GET', `/api/v1/projects/${p}/budget`)).body;
  assert.equal(Number(budget.reserved_usd), 0.5);
  assert.equal(budget.reservations, 1);
  await until('the reservation is released', async () => Number((await api('GET', `/api/v1/projects/${p}/budget`)).body.reserved_usd) === 0, 20000);
  // Ralph releases a reservation once its lease is past, which can be a tick before it fails
  // the run (the expiry runs first, while the lease was still good)
  await until('the run has failed', async () => sql(`SELECT state FROM runs WHERE id = ${rid}`) === 'failed', 20000);
  budget = (await api('GET', `/api/v1/projects/${p}/budget`)).body;
  assert.equal(budget.reservations, 0);
  assert.equal(Number(budget.spent_usd), 0, 'a released reservation is not spending');
  assert.equal(sql(`SELECT state || ' ' || terminal_reason FROM runs WHERE id = ${rid}`), 'failed lease_expired');
});

test('budget routes: bad input is a clear 4xx and changes nothing; members only', async () => {
  const p = await newProject({ context: { dispatch_paused: 'true', budget_usd: '2.50' } });
  const b = await newBead(p, { title: 'x', context: { budget_usd: 3 } });
  let r = await api('GET', `/api/v1/projects/${p}/budget`);
  assert.equal(r.status, 200, r.text);
  assert.equal(Number(r.body.limit_usd), 2.5);
  assert.equal(r.body.monthly_limit_usd, null);
  assert.equal(r.body.require_approval_merge, false);
  assert.match(r.body.month, /^\d{4}-\d{2}$/);
  assert.equal(Number((await api('GET', `/api/v1/beads/${b.id}/budget`)).body.limit_usd), 3);
  const before = footprint(p);
  const ctx = sql(`SELECT context FROM projects WHERE id = '${p}'`);
  const cases = [
    ['PUT', `/api/v1/projects/${p}/budget`, { limit_usd: -1 }, 400, 'limit_usd: must be an amount in USD'],
    ['PUT', `/api/v1/projects/${p}/budget`, { limit_usd: '5' }, 400, 'limit_usd: must be an amount'],
    ['PUT', `/api/v1/projects/${p}/budget`, { limit_usd: 1e12 }, 400, 'limit_usd'],
    ['PUT', `/api/v1/projects/${p}/budget`, { monthly_limit_usd: [] }, 400, 'monthly_limit_usd'],
    ['PUT', `/api/v1/projects/${p}/budget`, { require_approval_merge: 'yes' }, 400, 'require_approval_merge: must be true or false'],
    ['PUT', `/api/v1/projects/${p}/budget`, { limit: 5 }, 400, "unknown field 'limit'"],
    ['PUT', `/api/v1/projects/${p}/budget`, {}, 400, 'no fields to update'],
    ['PUT', `/api/v1/projects/${p}/budget`, '{"limit_usd": ', 400, ''],
    ['PUT', `/api/v1/projects/${p}/budget`, '[1]', 400, 'JSON object'],
    ['PUT', '/api/v1/projects/nosuchproject/budget', { limit_usd: 1 }, 404, 'project nosuchproject not found'],
    ['GET', '/api/v1/projects/nosuchproject/budget', undefined, 404, 'not found'],
    ['GET', '/api/v1/projects/Bad!/budget', undefined, 400, 'not a valid project id'],
    ['GET', `/api/v1/projects/${p}/budget?x=1`, undefined, 400, 'x'],
    ['PATCH', `/api/v1/projects/${p}`, { context: { budget_usd: 'lots' } }, 400, 'context.budget_usd: must be an amount in USD'],
    ['PATCH', `/api/v1/projects/${p}`, { context: { budget_monthly_usd: -2 } }, 400, 'context.budget_monthly_usd'],
    ['PATCH', `/api/v1/projects/${p}`, { context: { approval_cost_usd: '1e3' } }, 400, 'context.approval_cost_usd'],
    ['PATCH', `/api/v1/projects/${p}`, { context: { require_approval_merge: 'maybe' } }, 400, 'context.require_approval_merge'],
    ['PATCH', `/api/v1/beads/${b.id}`, { context: { budget_usd: '-3' } }, 400, 'context.budget_usd'],
    ['PATCH', `/api/v1/beads/${b.id}`, { context: { spend_allowance_usd: {} } }, 400, 'context.spend_allowance_usd'],
    ['POST', '/api/v1/beads', { project_id: p, title: 'y', context: { budget_usd: 'x' } }, 400, 'context.budget_usd'],
    ['PATCH', '/api/v1/beads', { filter: { ids: [b.id] }, updates: { context: { budget_usd: true } } }, 400, 'updates.context.budget_usd'],
    ['PUT', `/api/v1/beads/${b.id}/budget`, { limit_usd: true }, 400, 'limit_usd'],
    ['PUT', `/api/v1/beads/${b.id}/budget`, { budget_usd: 1 }, 400, "unknown field 'budget_usd'"],
    ['PUT', `/api/v1/beads/${p}-99999/budget`, { limit_usd: 1 }, 404, 'not found'],
    ['GET', `/api/v1/beads/${p}-99999/budget`, undefined, 404, 'not found'],
    ['GET', '/api/v1/beads/nope/budget', undefined, 400, 'bead id'],
  ];
  for (const [method, path, body, status, fragment] of cases) {
    const res = await api(method, path, body);
    assertError(res, status, fragment);
  }
  assert.equal(footprint(p), before, 'nothing changed');
  assert.equal(sql(`SELECT context FROM projects WHERE id = '${p}'`), ctx);
  // null removes a limit; strings as contexts hold them are fine through PATCH
  r = await api('PUT', `/api/v1/projects/${p}/budget`, { limit_usd: null, monthly_limit_usd: 7.5, require_approval_merge: true, approval_cost_usd: 0.5 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.limit_usd, null);
  assert.equal(Number(r.body.monthly_limit_usd), 7.5);
  assert.equal(r.body.require_approval_merge, true);
  assert.equal(Number(r.body.approval_cost_usd), 0.5);
  const pc = (await api('GET', `/api/v1/projects/${p}`)).body.context;
  assert.equal(pc.budget_usd, undefined);
  assert.equal(pc.budget_monthly_usd, '7.5');
  assert.equal(pc.require_approval_merge, 'true');
  assert.equal((await api('PATCH', `/api/v1/projects/${p}`, { context: { budget_usd: '4.25' } })).status, 200);
  assert.equal(Number((await api('GET', `/api/v1/projects/${p}/budget`)).body.limit_usd), 4.25);
  // members only: a stranger finds nothing, a viewer member reads but cannot change
  const stranger = await newUser('user');
  assertError(await api('GET', `/api/v1/projects/${p}/budget`, undefined, authHeader(stranger.token)), 404, 'not found');
  assertError(await api('PUT', `/api/v1/projects/${p}/budget`, { limit_usd: 100 }, authHeader(stranger.token)), 404, 'not found');
  const viewer = await newUser('viewer');
  assert.equal((await api('POST', `/api/v1/projects/${p}/members`, { username: viewer.username })).status, 201);
  assert.equal((await api('GET', `/api/v1/projects/${p}/budget`, undefined, authHeader(viewer.token))).status, 200);
  assertError(await api('PUT', `/api/v1/projects/${p}/budget`, { limit_usd: 100 }, authHeader(viewer.token)), 403, '');
  assert.equal(Number((await api('GET', `/api/v1/projects/${p}/budget`)).body.limit_usd), 4.25);
  // a user sets the budgets of a project of their own, and of its beads
  const owner = await newUser('user');
  const mine = await newProject({}, authHeader(owner.token));
  r = await api('PUT', `/api/v1/projects/${mine}/budget`, { limit_usd: 3, monthly_limit_usd: 1 }, authHeader(owner.token));
  assert.equal(r.status, 200, r.text);
  assert.equal(Number(r.body.monthly_limit_usd), 1);
  const mb = await newBead(mine, { title: 'mine' }, authHeader(owner.token));
  r = await api('PUT', `/api/v1/beads/${mb.id}/budget`, { limit_usd: 0.25, spend_allowance_usd: null }, authHeader(owner.token));
  assert.equal(r.status, 200, r.text);
  assert.equal(Number(r.body.limit_usd), 0.25);
  assertError(await api('GET', `/api/v1/beads/${mb.id}/budget`, undefined, authHeader(stranger.token)), 404, 'not found');
});
