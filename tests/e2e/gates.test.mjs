// Approval gates end to end: a project that approves merges keeps a bead's commits off its
// repository's default branch until a person says yes (and a "no" sends the work back), and a
// bead may spend only its allowance before a person approves more.  The runs stop without
// holding an executor; the decisions are answered through the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, chmodSync } from 'node:fs';
import { api, newProject, newBead, sql, sleep } from './lib.mjs';

let stub;
let stubUrl;
let provider;
let priced;
const model = `gatemodel${Date.now().toString(36)}`;
const actions = (...list) => ({ actions: list, notes: 'scripted' });

const git = (dir, ...args) => execFileSync('git', ['-c', 'safe.directory=*', '-C', dir, ...args], { encoding: 'utf8' }).trim();
const stubPost = async (path, body) => {
  const r = await fetch(`${stubUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
};

async function waitBead(id, pred, what, ms = 60000) {
  let b;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    b = (await api('GET', `/api/v1/beads/${id}`)).body;
    if (pred(b)) return b;
    await sleep(200);
  }
  assert.fail(`bead ${id} never ${what}: ${JSON.stringify(b)}`);
}

// A bare repository the executors (www-data when the tests run as root) can push to.
function originRepo() {
  const base = mkdtempSync(`${process.env.LOOM_VAR}/origin-`);
  chmodSync(base, 0o755);
  const work = `${base}/work`;
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  execFileSync('sh', ['-c', `cd ${work} && printf 'gates\\n' > README && git add -A && git -c user.name=t -c user.email=t@t commit -qm init`]);
  execFileSync('git', ['clone', '-q', '--bare', work, `${base}/origin.git`]);
  if (process.getuid() === 0) execFileSync('chown', ['-R', 'www-data:www-data', base]);
  return `${base}/origin.git`;
}

// A project with one agent on provider `on`; budget settings through the budget route.
async function project(settings, extra = {}, on = provider) {
  const p = await newProject({ dispatch: true, ...extra });
  for (const a of (await api('GET', `/api/v1/agents?project_id=${p}`)).body) {
    await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  }
  const r = await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: p, provider_id: on });
  assert.equal(r.status, 201, r.text);
  assert.equal((await api('PUT', `/api/v1/projects/${p}/budget`, settings)).status, 200);
  return p;
}

const runsOf = async (bead) => (await api('GET', `/api/v1/beads/${bead}/runs`)).body;
const callsOf = (bead) => Number(sql(`SELECT count(*) FROM llm_calls WHERE bead_id = '${bead}'`));
const decisionOf = async (bead) => (await api('GET', `/api/v1/decisions/${(await api('GET', `/api/v1/beads/${bead}`)).body.context.escalated_to_ceo_decision_id}`)).body;

// Waiting for a person holds nothing: no live run, the agent idle again.
function holdsNothing(p, bead) {
  assert.equal(sql(`SELECT count(*) FROM runs WHERE bead_id = '${bead}' AND state IN ('queued', 'running')`), '0');
  assert.equal(sql(`SELECT count(*) FROM agents WHERE project_id = '${p}' AND status = 'working'`), '0');
}

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
  sql(`UPDATE providers SET status = 'inactive'`);
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE state IN ('queued', 'running')`);
  // two providers on the stub: stub-model has no price (its calls reserve $0), the other one
  // costs $0.01025 a call ($0.10 / $2.50 a million tokens, 100 + 4096 tokens)
  sql(`INSERT INTO model_prices (model_prefix, prompt_per_mtok, completion_per_mtok) VALUES ('${model}', 0.10, 2.50)`);
  const t = Date.now().toString(36);
  provider = `gatestub${t}`;
  priced = `gatepriced${t}`;
  assert.equal((await api('POST', '/api/v1/providers', { id: provider, endpoint: stubUrl, model: 'stub-model' })).status, 201);
  assert.equal((await api('POST', '/api/v1/providers', { id: priced, endpoint: stubUrl, model })).status, 201);
  for (const id of [provider, priced]) {
    for (let i = 0; i < 100 && (await api('GET', `/api/v1/providers/${id}`)).body.status !== 'healthy'; i++) await sleep(100);
  }
});

after(() => {
  stub?.kill('SIGTERM');
  sql(`DELETE FROM model_prices WHERE model_prefix = '${model}'`);
});

test('a merge waits for approval: the default branch has no new commit until a person approves', async () => {
  const origin = originRepo();
  const p = await project({ require_approval_merge: true }, { git_repo: origin });
  await stubPost('/_stub/script', { beads: [{ match: '^Gated file$', replies: [
    actions({ type: 'write_file', path: 'g.txt', content: 'gated\n' }, { type: 'git_commit', commit_message: 'Add g.txt' }),
    // a push of its own is refused in this project; the work is done
    actions({ type: 'git_push' }, { type: 'done', reason: 'g.txt is there' }),
  ] }] });
  const main = git(origin, 'rev-parse', 'main');
  const b = await newBead(p, { title: 'Gated file' });
  const held = await waitBead(b.id, (x) => x.status === 'blocked' && x.context.awaiting_approval === 'merge', 'waits for approval');
  assert.equal(held.context.terminal_reason, 'awaiting_approval');
  holdsNothing(p, b.id);
  const runs = await runsOf(b.id);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].state, 'succeeded');
  assert.equal(runs[0].terminal_reason, 'awaiting_approval');
  // nothing reached the repository: not the default branch, not the bead's branch
  assert.equal(git(origin, 'rev-parse', 'main'), main);
  assert.equal(git(origin, 'branch', '--list', `bead/${b.id}`), '');
  const push = (await api('GET', `/api/v1/runs/${runs[0].id}/actions`)).body.find((a) => a.type === 'git_push');
  assert.equal(push.status, 'error');
  assert.match(push.message, /a person approves every push/);
  const d = await decisionOf(b.id);
  assert.equal(d.gate, 'merge');
  assert.equal(d.status, 'open');
  assert.equal(d.escalated_from, b.id);
  assert.match(d.title, new RegExp(`^Approve merge of bead/${b.id} into main\\?$`));
  assert.match(d.question, new RegExp(`^approve merge of bead/${b.id} into main\\? The agent says: g.txt is there`));
  assert.equal((await api('GET', `/api/v1/beads/${b.id}/budget`)).body.awaiting_approval, 'merge');
  assert.ok(held.blocked_by.includes(d.id));
  const calls = callsOf(b.id);
  assert.equal(calls, 2);
  // still held a while later: nobody merges behind the person's back
  await sleep(1500);
  assert.equal(git(origin, 'rev-parse', 'main'), main);
  assert.equal((await api('GET', `/api/v1/beads/${b.id}`)).body.status, 'blocked');

  const r = await api('POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'approve', rationale: 'looks right', decider_id: 'lead' });
  assert.equal(r.status, 200, r.text);
  const done = await waitBead(b.id, (x) => x.status === 'closed', 'closed after the approval');
  assert.equal(done.context.close_reason, 'merged after approval');
  assert.equal(done.context.merge_approved, undefined, 'the approval is used up');
  assert.equal(done.context.merge_approved_by, 'lead');
  assert.notEqual(git(origin, 'rev-parse', 'main'), main);
  assert.equal(git(origin, 'show', 'main:g.txt'), 'gated');
  assert.match(git(origin, 'log', '-1', '--format=%s', 'main'), new RegExp(`Merge bead/${b.id} into main`));
  // the merge took no LLM call: a run of its own, with none
  const after = await runsOf(b.id);
  assert.equal(after.length, 2);
  assert.equal(after.find((x) => x.id !== runs[0].id).llm_calls, 0);
  assert.equal(callsOf(b.id), calls);
  assert.match((await api('GET', `/api/v1/beads/${b.id}/comments`)).body.at(-1).content, /Merge approved \(decision .*\) by lead: looks right/);
});

test('a denied merge goes back to the agent with the rationale; nothing is merged', async () => {
  const origin = originRepo();
  const p = await project({ require_approval_merge: true }, { git_repo: origin });
  await stubPost('/_stub/script', { beads: [{ match: '^Denied file$', replies: [
    actions({ type: 'write_file', path: 'd.txt', content: 'first try\n' }, { type: 'git_commit', commit_message: 'Add d.txt' }),
    actions({ type: 'done', reason: 'd.txt is there' }),
  ] }] });
  const main = git(origin, 'rev-parse', 'main');
  const b = await newBead(p, { title: 'Denied file' });
  await waitBead(b.id, (x) => x.status === 'blocked' && x.context.awaiting_approval === 'merge', 'waits for approval');
  const d = await decisionOf(b.id);
  // hold the dispatcher so the reopened bead can be looked at
  assert.equal((await api('PATCH', `/api/v1/projects/${p}`, { context: { dispatch_paused: 'true' } })).status, 200);
  const r = await api('POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'deny', rationale: 'call it e.txt instead' });
  assert.equal(r.status, 200, r.text);
  const back = (await api('GET', `/api/v1/beads/${b.id}`)).body;
  assert.equal(back.status, 'open');
  assert.equal(back.assigned_to, null);
  assert.equal(back.context.awaiting_approval, undefined);
  assert.equal(back.context.merge_approved, undefined);
  assert.equal(back.context.ceo_decision, 'deny');
  assert.match((await api('GET', `/api/v1/beads/${b.id}/comments`)).body.at(-1).content, /Denied \(decision .*\) by admin: call it e.txt instead/);
  assert.equal(git(origin, 'rev-parse', 'main'), main);
  assert.throws(() => git(origin, 'show', 'main:d.txt'));
  // the agent works it again, told why; done again, it waits on a new decision
  assert.equal((await api('PATCH', `/api/v1/projects/${p}`, { context: { dispatch_paused: null } })).status, 200);
  await waitBead(b.id, (x) => x.status === 'blocked' && x.context.escalated_to_ceo_decision_id !== d.id, 'waits for approval again');
  const conv = (await api('GET', `/api/v1/beads/${b.id}/conversation`)).body;
  assert.ok(conv.some((m) => m.role === 'user' && /A person decided: deny \(call it e.txt instead\)/.test(m.content)), 'the rationale reaches the agent');
  assert.equal(git(origin, 'rev-parse', 'main'), main);
  assert.equal((await decisionOf(b.id)).gate, 'merge');
});

test('the spend gate: past its allowance a bead waits for approval, then goes on where it was', async () => {
  const p = await project({ approval_cost_usd: 0.025 }, {}, priced);
  const usage = { prompt_tokens: 100, completion_tokens: 4096 };
  await stubPost('/_stub/script', { usage, beads: [
    { match: '^Costly$', replies: [actions({ type: 'read_tree', path: '.' }), actions({ type: 'git_status' }),
      actions({ type: 'write_file', path: 's.txt', content: 'spent\n' }), actions({ type: 'done', reason: 's.txt' })] },
    { match: '^Too costly$', replies: [actions({ type: 'read_tree', path: '.' }), actions({ type: 'git_status' }),
      actions({ type: 'git_log' }), actions({ type: 'done', reason: 'x' })] },
  ] });
  const b = await newBead(p, { title: 'Costly' });
  // two calls of $0.01025 fit in $0.025; the third would not
  const held = await waitBead(b.id, (x) => x.status === 'blocked' && x.context.awaiting_approval === 'spend', 'waits for approval');
  assert.equal(held.context.terminal_reason, 'awaiting_approval');
  holdsNothing(p, b.id);
  assert.equal(callsOf(b.id), 2);
  let budget = (await api('GET', `/api/v1/beads/${b.id}/budget`)).body;
  assert.equal(Number(budget.spent_usd), 0.0205);
  assert.equal(Number(budget.spend_allowance_usd), 0.025);
  const d = await decisionOf(b.id);
  assert.equal(d.gate, 'spend');
  assert.match(d.title, /^Approve more spending on/);
  assert.match(d.question, /has spent \$0\.0205 of the \$0\.025 it may spend without approval/);
  const r = await api('POST', `/api/v1/decisions/${d.id}/decide`, { decision: 'approve', rationale: 'worth it' });
  assert.equal(r.status, 200, r.text);
  const done = await waitBead(b.id, (x) => x.status === 'closed', 'closed after the approval');
  assert.equal(done.context.spend_allowance_usd, '0.05');
  assert.equal(callsOf(b.id), 4);
  budget = (await api('GET', `/api/v1/beads/${b.id}/budget`)).body;
  assert.equal(Number(budget.spent_usd), 0.041);
  // the second run went on with the same conversation, where the first had stopped
  const conv = (await api('GET', `/api/v1/beads/${b.id}/conversation`)).body;
  assert.equal(conv.filter((m) => /^Work on bead /.test(m.content)).length, 1);
  assert.ok(conv.some((m) => /A new run \(attempt \d+\) continues this bead/.test(m.content)));
  assert.equal(conv.filter((m) => m.role === 'assistant').length, 4);

  // denied: the bead stays blocked, for a reason Ralph never lifts
  const c = await newBead(p, { title: 'Too costly' });
  await waitBead(c.id, (x) => x.status === 'blocked' && x.context.awaiting_approval === 'spend', 'waits for approval');
  const d2 = await decisionOf(c.id);
  assert.equal((await api('POST', `/api/v1/decisions/${d2.id}/decide`, { decision: 'deny', rationale: 'too much', decider_id: 'cfo' })).status, 200);
  const denied = (await api('GET', `/api/v1/beads/${c.id}`)).body;
  assert.equal(denied.status, 'blocked');
  assert.match(denied.context.ralph_blocked_reason, /^budget: more spending refused by cfo/);
  assert.match((await api('GET', `/api/v1/beads/${c.id}/comments`)).body.at(-1).content, /Denied \(decision .*\) by cfo: too much/);
  await sleep(1000);
  assert.equal((await api('GET', `/api/v1/beads/${c.id}`)).body.status, 'blocked');
  assert.equal(callsOf(c.id), 2);
});
