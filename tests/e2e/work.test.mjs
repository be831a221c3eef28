// Agents at work, end to end: real executors run the action loop against the scripted stub,
// in git worktrees of a real repository, through the real dispatcher and Ralph.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, chmodSync, existsSync } from 'node:fs';
import { api, assertError, footprint, newProject, newBead, sql, sleep, stackShell } from './lib.mjs';

let stub;
let stubUrl;
let provider;

const git = (dir, ...args) => execFileSync('git', ['-c', 'safe.directory=*', '-C', dir, ...args], { encoding: 'utf8' }).trim();
const stubPost = async (path, body) => {
  const r = await fetch(`${stubUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
};
const actions = (...list) => ({ actions: list, notes: 'scripted' });

async function waitBead(id, pred, what, ms = 30000) {
  let b;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    b = (await api('GET', `/api/v1/beads/${id}`)).body;
    if (pred(b)) return b;
    await sleep(150);
  }
  assert.fail(`bead ${id} never ${what}: ${JSON.stringify(b)}`);
}

// A bare repository the executors (www-data when the tests run as root) can push to.
function originRepo() {
  const base = mkdtempSync(`${process.env.LOOM_VAR}/origin-`);
  chmodSync(base, 0o755);
  const work = `${base}/work`;
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  execFileSync('sh', ['-c', `cd ${work} && printf 'test:\\n\\t@test -f a.txt && echo tests passed\\n' > Makefile && printf '# agents\\nRun make test.\\n' > AGENTS.md && git add -A && git -c user.name=t -c user.email=t@t commit -qm init`]);
  execFileSync('git', ['clone', '-q', '--bare', work, `${base}/origin.git`]);
  if (process.getuid() === 0) execFileSync('chown', ['-R', 'www-data:www-data', base]);
  return `${base}/origin.git`;
}

async function project(extra = {}) {
  const p = await newProject({ dispatch: true, ...extra });
  for (const a of (await api('GET', `/api/v1/agents?project_id=${p}`)).body) {
    if (a.provider_id !== provider) await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  }
  const r = await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: p, provider_id: provider });
  assert.equal(r.status, 201, r.text);
  return p;
}

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
  sql(`UPDATE providers SET status = 'inactive'`);
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE state IN ('queued', 'running')`);
  provider = `workstub${Date.now().toString(36)}`;
  assert.equal((await api('POST', '/api/v1/providers', { id: provider, endpoint: stubUrl, model: 'stub-model' })).status, 201);
  for (let i = 0; i < 100 && (await api('GET', `/api/v1/providers/${provider}`)).body.status !== 'healthy'; i++) await sleep(100);
});

after(() => stub?.kill('SIGTERM'));

test('three beads, one blocked by another, done in order with files, commits and records', async () => {
  const origin = originRepo();
  const p = await project({ git_repo: origin });
  await stubPost('/_stub/script', {
    beads: [
      { match: '^First file$', replies: [
        actions({ type: 'read_tree', path: '.' }),
        actions({ type: 'write_file', path: 'a.txt', content: 'alpha\n' }, { type: 'run_tests' }),
        actions({ type: 'git_commit', commit_message: 'Add a.txt' }, { type: 'done', reason: 'a.txt is there' }),
      ] },
      { match: '^Second file$', replies: [
        actions({ type: 'run_command', command: 'cat a.txt' }, { type: 'write_file', path: 'b.txt', content: 'beta\n' }),
        actions({ type: 'git_commit', commit_message: 'Add b.txt' }, { type: 'done', reason: 'b.txt is there' }),
      ] },
      { match: '^Third file$', replies: [
        // no commit of its own: the executor commits what is left when the bead is done
        actions({ type: 'write_file', path: 'c/c.txt', content: 'gamma\n' }, { type: 'done', reason: 'c.txt' }),
      ] },
    ],
  });
  const a = await newBead(p, { title: 'First file', priority: 1 });
  const b = await newBead(p, { title: 'Second file', priority: 0, blocked_by: [a.id] });
  const c = await newBead(p, { title: 'Third file', priority: 2 });
  const done = {};
  for (const x of [a, b, c]) done[x.id] = await waitBead(x.id, (y) => y.status === 'closed', 'closed', 60000);
  assert.ok(Date.parse(done[a.id].closed_at) <= Date.parse(done[b.id].closed_at), 'the blocked bead closes after its blocker');
  for (const x of [a, b, c]) {
    assert.equal(done[x.id].context.terminal_reason, 'completed');
    assert.match(git(origin, 'log', '--format=%s%n%b', `bead/${x.id}`), new RegExp(`Loom-Bead: ${x.id}`));
  }
  // merged into main in dependency order; the second bead saw the first one's file
  assert.equal(git(origin, 'show', 'main:a.txt'), 'alpha');
  assert.equal(git(origin, 'show', 'main:b.txt'), 'beta');
  assert.equal(git(origin, 'show', 'main:c/c.txt'), 'gamma');
  assert.equal(sql(`SELECT exit_code FROM command_logs WHERE bead_id='${b.id}' AND command LIKE '%cat a.txt%'`), '0');
  assert.equal(sql(`SELECT exit_code FROM command_logs WHERE bead_id='${a.id}' AND command LIKE '%make test%'`), '0');
  // every run: one attempt, its LLM calls accounted, its iterations published, its actions kept
  for (const x of [a, b, c]) {
    const runs = (await api('GET', `/api/v1/beads/${x.id}/runs`)).body;
    assert.equal(runs.length, 1);
    assert.equal(runs[0].state, 'succeeded');
    assert.ok(runs[0].llm_calls >= 1 && runs[0].prompt_tokens > 0, JSON.stringify(runs[0]));
    const calls = (await api('GET', `/api/v1/runs/${runs[0].id}/llm-calls`)).body;
    assert.equal(calls.length, runs[0].llm_calls);
    assert.ok(calls.every((k) => k.status === 'ok' && k.served_model && k.latency_ms >= 0 && k.streamed));
    const acts = (await api('GET', `/api/v1/runs/${runs[0].id}/actions`)).body;
    assert.ok(acts.some((k) => k.type === 'done' && k.status === 'executed'));
    assert.equal(sql(`SELECT count(*) FROM events WHERE bead_id='${x.id}' AND type='run.iteration'`), String(runs[0].iterations));
    const conv = (await api('GET', `/api/v1/beads/${x.id}/conversation`)).body;
    assert.equal(conv[0].role, 'system');
    assert.match(conv[1].content, new RegExp(`^Work on bead ${x.id}: `));
    assert.ok(conv.some((m) => m.role === 'assistant'));
  }
  const acts = (await api('GET', `/api/v1/runs/${(await api('GET', `/api/v1/beads/${c.id}/runs`)).body[0].id}/actions`)).body;
  assert.deepEqual(acts.map((k) => k.type), ['write_file', 'done', 'git_commit', 'git_push']);
  // worktrees of finished beads are cleaned up; the branches stay
  assert.equal(existsSync(`${process.env.LOOM_VAR}/projects/${p}/worktrees/${a.id}`), false);
});

test('paths that leave the worktree are refused and the refusal is fed back', async () => {
  const p = await project();
  await stubPost('/_stub/script', { beads: [{ match: '^Escape$', replies: [
    actions({ type: 'write_file', path: '../../escaped.txt', content: 'x' },
      { type: 'read_file', path: '/etc/passwd' },
      { type: 'write_file', path: '.git/hooks/pre-commit', content: 'x' },
      { type: 'run_command', command: 'curl http://example.com' },
      { type: 'run_command', command: 'cat $(echo /etc/passwd)' }),
    actions({ type: 'done', reason: 'tried' }),
  ] }] });
  const e = await newBead(p, { title: 'Escape' });
  await waitBead(e.id, (y) => y.status === 'closed', 'closed');
  const run = (await api('GET', `/api/v1/beads/${e.id}/runs`)).body[0];
  const acts = (await api('GET', `/api/v1/runs/${run.id}/actions`)).body.filter((k) => k.iteration === 1);
  assert.equal(acts.length, 5);
  for (const k of acts) assert.equal(k.status, 'error', JSON.stringify(k));
  assert.equal(existsSync(`${process.env.LOOM_VAR}/projects/${p}/escaped.txt`), false);
  assert.equal(existsSync(`${process.env.LOOM_VAR}/projects/escaped.txt`), false);
  const conv = (await api('GET', `/api/v1/beads/${e.id}/conversation`)).body;
  const feedback = conv.filter((m) => m.role === 'user').pop().content;
  assert.match(feedback, /Iteration 1\/\d+/);
  assert.match(feedback, /1\. write_file .*: error/);
  assert.match(feedback, /curl/);
});

test('a model that repeats itself is stopped: loop_detected blocks the bead', async () => {
  const p = await project();
  await stubPost('/_stub/script', { beads: [{ match: '^Repeat$', replies: [actions({ type: 'git_status' })] }] });
  const r = await newBead(p, { title: 'Repeat' });
  const blocked = await waitBead(r.id, (y) => y.status === 'blocked', 'blocked');
  assert.equal(blocked.context.terminal_reason, 'loop_detected');
  assert.equal(blocked.context.loop_detected, true);
  assert.match(blocked.context.ralph_blocked_reason, /same actions were asked for 3 times/);
  const run = (await api('GET', `/api/v1/beads/${r.id}/runs`)).body[0];
  assert.equal(run.iterations, 3);
  assert.equal(run.terminal_reason, 'loop_detected');
  const lessons = (await api('GET', `/api/v1/projects/${p}/lessons`)).body;
  assert.equal(lessons[0].category, 'loop_pattern');
});

test('bad provider replies are classified, the bead is not lost, and it completes later', async () => {
  const p = await project();
  const kinds = { html: /protocol/, empty: /protocol/, giant: /too_large/, never_ending: /network/, hang: /network/ };
  const faults = (k) => Array.from({ length: 3 }, () => ({ fault: k, size: 9 << 20 }));
  await stubPost('/_stub/script', {
    beads: Object.keys(kinds).map((k) => ({ match: `^Fault ${k}$`, replies: [...faults(k), actions({ type: 'done', reason: 'ok' })] })),
  });
  const beads = [];
  for (const k of Object.keys(kinds)) beads.push([k, await newBead(p, { title: `Fault ${k}` })]);
  for (const [k, b] of beads) {
    const back = await waitBead(b.id, (y) => y.context.terminal_reason === 'provider_error', 'failed', 90000);
    assert.equal(back.status, 'open', `${k}: the bead waits for another try`);
    assert.equal(back.assigned_to, null);
    assert.match(back.context.last_run_error, kinds[k], `${k}: ${back.context.last_run_error}`);
    const calls = (await api('GET', `/api/v1/runs/${(await api('GET', `/api/v1/beads/${b.id}/runs`)).body[0].id}/llm-calls`)).body;
    assert.equal(calls[0].status, 'error');
    assert.match(calls[0].error_class, kinds[k]);
  }
  for (const [, b] of beads) await waitBead(b.id, (y) => y.status === 'closed', 'closed after the back-off', 60000);
});

test('a provider failing 30 % of calls: every bead still completes', async () => {
  const p = await project();
  await stubPost('/_stub/script', {
    faults: { rate: 0.3, kinds: ['500', '503', '429'], seed: 7 },
    beads: [{ match: '^Flaky', replies: [actions({ type: 'read_tree' }), actions({ type: 'done', reason: 'ok' })] }],
  });
  const beads = [];
  for (let i = 0; i < 6; i++) beads.push(await newBead(p, { title: `Flaky ${i}` }));
  for (const b of beads) await waitBead(b.id, (y) => y.status === 'closed', 'closed', 90000);
  const stats = await (await fetch(`${stubUrl}/_stub/stats`)).json();
  assert.ok(stats.faults_served > 0, 'faults were injected');
  assert.ok(Number(sql(`SELECT sum(retries) FROM llm_calls c JOIN runs r ON r.id = c.run_id WHERE r.project_id='${p}'`)) > 0);
  await stubPost('/_stub/reset', {});
});

test('kill -9 of an executor mid-run: the run is re-queued at once, not after its lease, and completes once', async () => {
  const p = await project();
  await stubPost('/_stub/script', { beads: [{ match: '^Survive$', replies: [
    actions({ type: 'write_file', path: 's.txt', content: 'one\n' }),
    { delay_ms: 2000, actions: [{ type: 'done', reason: 'survived' }] },
  ] }] });
  const s = await newBead(p, { title: 'Survive' });
  let owner;
  for (let i = 0; i < 100 && !owner; i++) {
    owner = sql(`SELECT lease_owner FROM runs WHERE bead_id='${s.id}' AND state='running' AND iterations >= 2`);
    if (!owner) await sleep(100);
  }
  assert.ok(owner, 'the run reached its slow second iteration');
  // the lease owner is name@host:pid, this very process
  const m = /^executor-(\d+)@[^:]+:(\d+)$/.exec(owner);
  assert.ok(m, `lease owner ${owner}`);
  const pid = stackShell(`stack_ctl pid loom-executor:loom-executor_${m[1]}`).trim();
  assert.equal(pid, m[2]);
  process.kill(Number(pid), 'SIGKILL');
  // a lease that would outlive the test: only an executor that sees the process is gone can
  // put the run back (the restarted one, on its first tick)
  sql(`UPDATE runs SET lease_expires_at = now() + interval '1 hour' WHERE bead_id='${s.id}' AND state='running'`);
  const closed = await waitBead(s.id, (y) => y.status === 'closed', 'closed after the re-queue', 60000);
  assert.ok(Number(sql(`SELECT count(*) FROM logs WHERE message LIKE '%executor ${owner} is gone%'`)) >= 1);
  assert.equal(closed.context.terminal_reason, 'completed');
  const runs = (await api('GET', `/api/v1/beads/${s.id}/runs`)).body;
  assert.equal(runs.length, 1, 'the same run, re-queued');
  assert.equal(runs[0].attempt, 2);
  assert.equal(sql(`SELECT count(*) FROM events WHERE bead_id='${s.id}' AND type='run.requeued'`), '1');
  assert.equal(sql(`SELECT count(*) FROM events WHERE bead_id='${s.id}' AND type='bead.completed'`), '1');
  // the second attempt resumed the conversation: the file written before the kill is there
  const conv = (await api('GET', `/api/v1/beads/${s.id}/conversation`)).body;
  assert.ok(conv.some((m) => /A new run \(attempt 2\) continues this bead/.test(m.content)));
});

test('an executor stopped mid-run hands it back: the next one goes on, no action twice', async () => {
  const p = await project();
  await stubPost('/_stub/script', { beads: [{ match: '^Hand over$', replies: [
    actions({ type: 'write_file', path: 'h1.txt', content: 'one\n' }),
    actions({ type: 'write_file', path: 'h2.txt', content: 'two\n' }),
    { delay_ms: 2500, actions: [{ type: 'write_file', path: 'h3.txt', content: 'three\n' }] },
    actions({ type: 'done', reason: 'handed over' }),
  ] }] });
  const h = await newBead(p, { title: 'Hand over' });
  let owner;
  for (let i = 0; i < 150 && !owner; i++) {
    owner = sql(`SELECT lease_owner FROM runs WHERE bead_id='${h.id}' AND state='running' AND iterations >= 3`);
    if (!owner) await sleep(100);
  }
  assert.ok(owner, 'the run reached its slow third iteration');
  const num = /^executor-(\d+)@/.exec(owner)[1];
  // SIGTERM: the executor ends its call, hands the run back and exits
  stackShell(`stack_ctl stop loom-executor:loom-executor_${num} >/dev/null; stack_ctl start loom-executor:loom-executor_${num} >/dev/null`);
  const closed = await waitBead(h.id, (y) => y.status === 'closed', 'closed after the handover', 60000);
  assert.equal(closed.context.terminal_reason, 'completed');
  const runs = (await api('GET', `/api/v1/beads/${h.id}/runs`)).body;
  assert.equal(runs.length, 1);
  assert.equal(runs[0].attempt, 1, 'a handover is not a new attempt');
  assert.equal(sql(`SELECT count(*) FROM events WHERE bead_id='${h.id}' AND type='run.released'`), '1');
  assert.ok(Number(sql(`SELECT count(DISTINCT actor) FROM events WHERE bead_id='${h.id}' AND type IN ('run.started', 'run.finished')`)) === 2,
    'two executor processes worked the run');
  // iterations went on from where the first executor stopped: every action has its own
  // (iteration, seq), and each file was written once
  const acts = (await api('GET', `/api/v1/runs/${runs[0].id}/actions`)).body;
  const keys = acts.map((a) => `${a.iteration}.${a.seq}`);
  assert.equal(new Set(keys).size, keys.length, `an (iteration, seq) twice: ${keys}`);
  const writes = acts.filter((a) => a.type === 'write_file').map((a) => a.path);
  assert.deepEqual(writes.sort(), ['h1.txt', 'h2.txt', 'h3.txt']);
  assert.equal(Math.max(...acts.map((a) => a.iteration)), runs[0].iterations);
  assert.ok(runs[0].iterations >= 4, JSON.stringify(runs[0]));
});

test('4 executors x 500 trivial beads: each executed exactly once', async () => {
  const p = await project();
  for (let i = 0; i < 3; i++) {
    await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: p, provider_id: provider });
  }
  sql(`UPDATE projects SET context = context || '{"dispatch_paused":"true"}' WHERE id='${p}'`);
  await stubPost('/_stub/script', { default: [actions({ type: 'done', reason: 'trivial' })] });
  sql(`SELECT loom_bead_create(jsonb_build_object('project_id', '${p}', 'title', 'trivial ' || g), 'test') FROM generate_series(1, 500) g`);
  await api('PATCH', `/api/v1/projects/${p}`, { context: { dispatch_paused: null } });
  for (let t0 = Date.now(); Date.now() - t0 < 240000;) {
    if (sql(`SELECT count(*) FROM beads WHERE project_id='${p}' AND status='closed'`) === '500') break;
    await sleep(500);
  }
  assert.equal(sql(`SELECT count(*) FROM beads WHERE project_id='${p}' AND status='closed'`), '500');
  assert.equal(sql(`SELECT count(*) FROM runs WHERE project_id='${p}'`), '500');
  assert.equal(sql(`SELECT count(*) FROM runs WHERE project_id='${p}' AND state='succeeded' AND attempt=1`), '500');
  assert.equal(sql(`SELECT count(*) FROM events WHERE project_id='${p}' AND type='bead.completed'`), '500');
  assert.ok(Number(sql(`SELECT count(DISTINCT actor) FROM events WHERE type='run.started' AND project_id='${p}'`)) >= 2, 'several executors shared the work');
});

test('runs, conversation and command routes: bad input is a clear 4xx and changes nothing', async () => {
  const p = await project();
  await stubPost('/_stub/script', { beads: [{ match: '^Routes$', replies: [actions({ type: 'run_command', command: 'ls' }, { type: 'done' })] }] });
  const b = await newBead(p, { title: 'Routes' });
  await waitBead(b.id, (y) => y.status === 'closed', 'closed');
  const run = (await api('GET', `/api/v1/beads/${b.id}/runs`)).body[0];
  const before = footprint(p);
  const cases = [
    ['GET', '/api/v1/runs/abc', 400, 'not a valid run id'],
    ['GET', '/api/v1/runs/0', 400, 'not a valid run id'],
    ['GET', '/api/v1/runs/99999999999', 404, 'run 99999999999 not found'],
    ['GET', '/api/v1/runs?state=bogus', 400, 'state'],
    ['GET', '/api/v1/runs?limit=0', 400, 'limit'],
    ['GET', '/api/v1/runs?colour=red', 400, 'colour'],
    ['GET', '/api/v1/runs?project_id=Bad%20Id', 400, 'project_id'],
    ['POST', `/api/v1/runs/${run.id}/cancel`, 409, 'already ended'],
    ['POST', '/api/v1/runs/99999999999/cancel', 404, 'not found'],
    ['DELETE', `/api/v1/runs/${run.id}`, 405, ''],
    ['GET', '/api/v1/runs/99999999999/actions', 404, 'not found'],
    ['GET', `/api/v1/runs/${run.id}/actions?limit=5000`, 400, 'limit'],
    ['GET', '/api/v1/beads/nope/conversation', 400, 'not a valid bead id'],
    ['GET', `/api/v1/beads/${p}-99999/conversation`, 404, 'not found'],
    ['GET', `/api/v1/beads/${b.id}/conversation?run_id=x`, 400, 'run_id'],
    ['GET', '/api/v1/commands?run_id=-1', 400, 'run_id'],
    ['GET', '/api/v1/commands/abc', 400, 'command id'],
    ['GET', '/api/v1/commands/99999999999', 404, 'not found'],
    ['GET', '/api/v1/projects/no-such-project/lessons', 404, 'not found'],
  ];
  for (const [method, path, status, fragment] of cases) {
    const r = await api(method, path);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    if (fragment) assertError(r, status, fragment);
  }
  assert.equal(footprint(p), before);
  // and the good paths
  assert.equal((await api('GET', `/api/v1/runs/${run.id}`)).body.bead_id, b.id);
  assert.ok((await api('GET', `/api/v1/runs?project_id=${p}&state=succeeded`)).body.some((r) => r.id === run.id));
  const cmds = (await api('GET', `/api/v1/commands?bead_id=${b.id}`)).body;
  assert.equal(cmds.length, 1);
  assert.equal(cmds[0].exit_code, 0);
  assert.equal((await api('GET', `/api/v1/commands/${cmds[0].id}`)).body.command, cmds[0].command);
  const page = await api('GET', `/api/v1/beads/${b.id}/conversation?limit=1`);
  assert.equal(page.body.length, 1);
  assert.equal(page.headers.get('x-next-offset'), '1');
});

test('a person can cancel a run; the executor stops without writing more', async () => {
  const p = await project();
  await stubPost('/_stub/script', { beads: [{ match: '^Cancel me$', replies: [
    { delay_ms: 2500, actions: [{ type: 'write_file', path: 'late.txt', content: 'x' }] },
    actions({ type: 'done' }),
  ] }] });
  const b = await newBead(p, { title: 'Cancel me' });
  let run;
  for (let i = 0; i < 100 && !run; i++) {
    run = (await api('GET', `/api/v1/beads/${b.id}/runs`)).body.find((r) => r.state === 'running');
    if (!run) await sleep(50);
  }
  assert.ok(run, 'the run started');
  const r = await api('POST', `/api/v1/runs/${run.id}/cancel`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.state, 'canceled');
  await sleep(3500); // the model answers; the executor finds its lease gone and stops
  assert.equal(sql(`SELECT count(*) FROM actions WHERE run_id=${run.id}`), '0');
  assert.equal((await api('GET', `/api/v1/runs/${run.id}`)).body.state, 'canceled');
});

test('a context-length refusal shrinks the history and the call is made again; odd replies are read', async () => {
  const p = await project();
  await stubPost('/_stub/script', { beads: [{ match: '^Long talk$', replies: [
    { think: 'Let me look first.', fence: true, prose: 'Sure, here it is:', actions: [{ type: 'read_tree' }] },
    { fault: '400_context' },
    'Some prose {"actions": [{"type": "done", "reason": "short enough",},],} trailing words',
  ] }] });
  const b = await newBead(p, { title: 'Long talk' });
  const closed = await waitBead(b.id, (y) => y.status === 'closed', 'closed');
  assert.equal(closed.context.terminal_reason, 'completed');
  const run = (await api('GET', `/api/v1/beads/${b.id}/runs`)).body[0];
  const calls = (await api('GET', `/api/v1/runs/${run.id}/llm-calls`)).body;
  // (the stub picks its reply by the number of assistant messages it is sent, so the shrunk
  // history replays an earlier reply once before the scripted last one)
  assert.equal(calls[0].error_class, null);
  assert.equal(calls[1].error_class, 'context_length');
  assert.ok(calls.slice(2).every((c) => c.status === 'ok'), JSON.stringify(calls));
  // the retried request carried less of the conversation, with a note saying so
  const reqs = (await (await fetch(`${stubUrl}/_stub/requests`)).json())
    .filter((q) => q.path === '/v1/chat/completions' && q.body.messages.some((m) => m.content.includes(`bead ${b.id}:`)));
  const shrunk = reqs[2].body.messages;
  assert.ok(reqs[1].body.messages.some((m) => m.role === 'assistant'));
  assert.ok(!shrunk.some((m) => m.role === 'assistant'), 'the middle of the history was left out');
  assert.ok(shrunk.some((m) => /older messages of this conversation left out/.test(m.content)), JSON.stringify(shrunk.map((m) => m.content.slice(0, 60))));
});
