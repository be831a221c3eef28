// make chaos — beads through the whole stack while things break, and proof that nothing is
// lost, nothing is done twice and everything recovers.  Run by tests/chaos/chaos.sh, which
// starts the stack (nginx, loom-api, loom-sse, dispatcher, executors, Ralph, PostgreSQL under
// supervisord, on loopback) and exports LOOM_URL, LOOM_VAR, LOOM_DATABASE_URL,
// LOOM_ADMIN_PASSWORD, CHAOS_PG_ADMIN (a superuser conninfo), CHAOS_LEDGER (the executors'
// LOOM_ACTION_LEDGER) and CHAOS_PGHOLD (tests/chaos/pghold.c).
//
// Each scenario gets a project of its own and CHAOS_BEADS beads, created through nginx at an
// even pace over CHAOS_FAULT_SECONDS while its fault runs; then the fault stops and the clock
// runs until the stack has recovered: every bead closed, no run queued or running, every
// supervised program up, /health/ready 200 (at most CHAOS_RECOVERY_SECONDS).  Then:
//   lost       beads the API acknowledged (or that landed while the answer was lost) and that
//              are missing or not closed; beads created twice by the feeder's retries
//   double     actions done twice in one attempt: a (run, attempt, iteration, seq) key seen
//              twice in the executors' action ledger
//   stuck      runs still queued or running, and agents still working, after the recovery
//   recovery   seconds from the fault's end until all of the above holds
//   dead Δ     growth of n_dead_tup of the hot tables while the fault ran (and once recovered)
//   sse missed closed beads whose close a live event stream (reconnecting with Last-Event-ID
//              through every fault) never delivered, and events delivered twice
// baseline runs the same workload with no fault: its recovery is what draining the work in
// flight takes anyway.
// A scenario passes when lost, double, stuck and sse missed are all 0 and it recovered in time.
// The last line is "N passed, M failed" (one per scenario), as tests/lib/check.sh expects.
import { spawn, execFile } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { api, newProject, BASE, authHeader } from '../e2e/lib.mjs';

const env = (k, d) => (process.env[k] === undefined || process.env[k] === '' ? d : process.env[k]);
const BEADS = Number(env('CHAOS_BEADS', 100));
const FAULT_S = Number(env('CHAOS_FAULT_SECONDS', 30));
const RECOVERY_S = Number(env('CHAOS_RECOVERY_SECONDS', 180));
const IDLE_CONNS = Number(env('CHAOS_IDLE_CONNECTIONS', 300));
const ALL = ['baseline', 'executor-kill', 'api-sse-kill', 'pg-restart', 'pg-terminate', 'idle-conns', 'xmin-holder',
  'nginx-reload', 'provider-faults', 'all'];
const SCENARIOS = env('CHAOS_SCENARIOS', ALL.join(',')).split(',').filter(Boolean);
for (const s of SCENARIOS) if (!ALL.includes(s)) { console.error(`chaos: unknown scenario ${s} (${ALL.join(' ')})`); process.exit(2); }
const CONF = `${process.env.LOOM_VAR}/conf/supervisord.conf`;
const HOT = ['beads', 'runs', 'agents', 'metric_counters', 'providers', 'budget_reservations'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();
const log = (...a) => console.log(`# ${new Date().toISOString().slice(11, 23)}`, ...a);

// ---- processes and the database, without blocking the event loop -------------------------
function run(cmd, args, { timeout = 30000 } = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ ok: !err, out: stdout.trim(), err: err ? `${err.message} ${stderr}` : '' }));
  });
}
const ctl = (...args) => run('supervisorctl', ['-c', CONF, ...args]);

// A query as the superuser over the socket; retried while PostgreSQL restarts (nothing the
// faults do may fail the measurement itself).
async function q(sql, { tries = 120 } = {}) {
  let r;
  for (let i = 0; i < tries; i++) {
    r = await run('psql', ['-X', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', process.env.CHAOS_PG_ADMIN, '-c', sql]);
    if (r.ok) return r.out;
    await sleep(250);
  }
  throw new Error(`query failed: ${sql}: ${r.err}`);
}
const rows = (out) => (out ? out.split('\n').map((l) => l.split('\t')) : []);

async function programs() {
  const r = await ctl('status');
  return rows(r.out).map(([line]) => {
    const m = /^(\S+)\s+(\S+)(?:\s+pid (\d+))?/.exec(line);
    return m ? { name: m[1], state: m[2], pid: Number(m[3] || 0) } : null;
  }).filter(Boolean);
}
async function killRandom(prefix) {
  const up = (await programs()).filter((p) => p.name.startsWith(prefix) && p.state === 'RUNNING' && p.pid);
  if (!up.length) return 0;
  const victim = up[Math.floor(Math.random() * up.length)];
  try { process.kill(victim.pid, 'SIGKILL'); return 1; } catch { return 0; }
}

// An API call that never throws: status 0 when the connection failed.
async function call(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (e) {
    return { status: 0, body: null, text: String(e) };
  }
}

// ---- the LLM stub --------------------------------------------------------------------------
let stub, stubUrl;
const REPLIES = [
  { actions: [{ type: 'write_file', path: 'chaos.txt', content: 'one\n' }, { type: 'read_file', path: 'chaos.txt' }], notes: 'chaos 1' },
  { actions: [{ type: 'write_file', path: 'chaos2.txt', content: 'two\n' }, { type: 'done', reason: 'chaos' }], notes: 'chaos 2' },
];
async function stubScript(faults) {
  const body = { beads: [{ match: '^chaos ', replies: REPLIES }], ...(faults ? { faults } : {}) };
  const r = await fetch(`${stubUrl}/_stub/script`, { method: 'POST', body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`stub script: ${r.status}`);
}

async function startStub() {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('the stub exited')));
  });
  await stubScript(null);
}

let provider;
async function setupProvider() {
  await q(`UPDATE providers SET status = 'inactive'`);
  provider = `chaosstub${now().toString(36)}`;
  const r = await call('POST', '/api/v1/providers', { id: provider, endpoint: stubUrl, model: 'stub-model' });
  if (r.status !== 201) throw new Error(`provider: ${r.status} ${r.text}`);
  for (let i = 0; i < 200; i++) {
    if ((await call('GET', `/api/v1/providers/${provider}`)).body?.status === 'healthy') return;
    await sleep(100);
  }
  throw new Error('the stub provider never became healthy');
}

async function setupProject() {
  const p = await newProject({ dispatch: true });
  for (const a of (await call('GET', `/api/v1/agents?project_id=${p}`)).body || []) {
    if (a.provider_id !== provider) await call('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  }
  for (let i = 0; i < 6; i++) {
    const r = await call('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: p, provider_id: provider });
    if (r.status !== 201) throw new Error(`agent: ${r.status} ${r.text}`);
  }
  return p;
}

// ---- faults: each is start() -> stop(), counting what it did -------------------------------
function every(ms, fn) {
  let live = true, count = 0;
  const loop = (async () => {
    while (live) {
      const t0 = now();
      try { count += (await fn()) || 0; } catch (e) { log('fault step failed:', e.message); }
      await sleep(Math.max(0, ms - (now() - t0)));
    }
  })();
  return async () => { live = false; await loop; return count; };
}

function holder(args, what) {
  return async () => {
    const child = spawn(process.env.CHAOS_PGHOLD, [...args, process.env.CHAOS_PG_ADMIN], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    for (let i = 0; i < 600 && !/holding/.test(out); i++) await sleep(100);
    if (!/holding/.test(out)) log(`${what}: not all connections came up: ${out}`);
    return async () => { child.kill('SIGTERM'); await new Promise((r) => child.exitCode !== null ? r() : child.on('exit', r)); return 1; };
  };
}

const FAULTS = {
  'executor-kill': async () => every(2000, () => killRandom('loom-executor:')),
  'api-sse-kill': async () => {
    let turn = 0;
    return every(2000, () => killRandom(turn++ % 2 ? 'loom-sse:' : 'loom-api:'));
  },
  'pg-restart': async () => every(10000, async () => ((await ctl('restart', 'postgres')).ok ? 1 : 0)),
  'pg-terminate': async () => every(5000, async () => Number(await q(
    `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'loom' AND pid <> pg_backend_pid()`))),
  'idle-conns': holder(['-n', String(IDLE_CONNS)], 'idle connections'),
  'xmin-holder': holder(['-n', '0', '-x'], 'xmin holder'),
  'nginx-reload': async () => every(1000, async () => ((await ctl('signal', 'HUP', 'nginx')).ok ? 1 : 0)),
  'provider-faults': async () => {
    // 30 % of calls fail (500), 5 % hang until the executor's timeout
    await stubScript({ rate: 0.35, kinds: ['500', '500', '500', '500', '500', '500', 'hang'], seed: 42 });
    return async () => { await stubScript(null); return 1; };
  },
};

// ---- a live event stream that reconnects with Last-Event-ID --------------------------------
function watch(project) {
  const w = { closed: new Set(), seen: new Set(), dups: 0, reconnects: 0, last: null, live: true, req: null };
  // resolved by the stream's first "connected": from then on it sees every event
  w.ready = new Promise((resolve) => { w.connected = resolve; });
  const open = () => {
    if (!w.live) return;
    const headers = { ...authHeader(), ...(w.last ? { 'Last-Event-ID': w.last } : {}) };
    let buf = '';
    const retry = () => { w.req = null; if (w.live) { w.reconnects++; setTimeout(open, 250); } };
    const req = http.get(`${BASE}/api/v1/events/stream?project_id=${project}&type=bead.status_change`, { headers, agent: false }, (res) => {
      if (res.statusCode !== 200) { res.resume(); res.on('end', retry); res.on('error', retry); return; }
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let id = null, data = null, type = null;
          for (const line of block.split('\n')) {
            if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('data:')) data = line.slice(5).trim();
            else if (line.startsWith('event:')) type = line.slice(6).trim();
          }
          // "connected" repeats the id the stream resumes after: a bookmark, not an event
          if (type === 'connected') w.connected();
          if (!id || !data || type === 'connected') continue;
          if (w.seen.has(id)) w.dups++;
          w.seen.add(id);
          w.last = id;
          try {
            const ev = JSON.parse(data);
            if (ev.data?.to === 'closed') w.closed.add(ev.bead_id);
          } catch { /* not an event */ }
        }
      });
      res.on('end', retry);
      res.on('error', retry);
    });
    req.on('error', retry);
    w.req = req;
  };
  open();
  w.stop = () => { w.live = false; w.req?.destroy(); };
  return w;
}

// ---- the feeder: beads through nginx at an even pace, retried only when surely not made ----
async function feed(project, scenario, n, seconds) {
  const f = { acked: new Set(), landed: 0, failures: 0, retries: 0, s5xx: 0 };
  const one = async (i) => {
    const title = `chaos ${scenario} ${i}`;
    for (let attempt = 0; attempt < 600; attempt++) {
      const r = await call('POST', '/api/v1/beads', { project_id: project, title, priority: 2 });
      if (r.status === 201) { f.acked.add(r.body.id); return; }
      if (r.status >= 500) f.s5xx++;
      if (r.status >= 400 && r.status < 500 && r.status !== 429) throw new Error(`bead ${title}: ${r.status} ${r.text}`);
      f.failures++;
      // the answer was lost, not necessarily the bead: look before trying again
      const id = await q(`SELECT id FROM beads WHERE project_id = '${project}' AND title = '${title}'`);
      if (id) { f.acked.add(id.split('\n')[0]); f.landed++; return; }
      f.retries++;
      await sleep(200);
    }
    throw new Error(`bead ${title}: never created`);
  };
  const gap = (seconds * 1000) / n;
  const t0 = now();
  const all = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * gap - now();
    if (wait > 0) await sleep(wait);
    all.push(one(i));
  }
  await Promise.all(all);
  return f;
}

async function deadTuples() {
  await sleep(1200); // backends flush their table statistics at most once a second
  const out = await q(`SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname IN (${HOT.map((t) => `'${t}'`).join(',')})`);
  return Number(out);
}

// What the executors wrote to the ledger for this project's beads.
function ledger(project) {
  const file = process.env.CHAOS_LEDGER;
  const keys = new Map();
  let lines = 0, stale = 0;
  const lastAttempt = new Map();
  if (!existsSync(file)) return { lines, doubles: 0, stale, keys };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 10 || !f[2].startsWith(`${project}-`)) continue;
    lines++;
    const key = `${f[3]}|${f[4]}|${f[5]}|${f[6]}`;
    keys.set(key, (keys.get(key) || 0) + 1);
    lastAttempt.set(f[3], Math.max(lastAttempt.get(f[3]) || 0, Number(f[4])));
  }
  let doubles = 0;
  for (const [key, c] of keys) {
    if (c > 1) doubles++;
    const [runId, attempt] = key.split('|');
    if (Number(attempt) < lastAttempt.get(runId)) stale += c;
  }
  return { lines, doubles, stale, keys };
}

async function recoveredYet(project, expected) {
  const [[closed, total, active, working]] = rows(await q(`SELECT
      (SELECT count(*) FROM beads WHERE project_id = '${project}' AND status = 'closed'),
      (SELECT count(*) FROM beads WHERE project_id = '${project}'),
      (SELECT count(*) FROM runs WHERE project_id = '${project}' AND state IN ('queued', 'running')),
      (SELECT count(*) FROM agents WHERE project_id = '${project}' AND status = 'working')`));
  if (Number(closed) !== expected || Number(total) !== expected || Number(active) || Number(working)) return false;
  const progs = await programs();
  if (!progs.length || progs.some((p) => p.state !== 'RUNNING')) return false;
  return (await call('GET', '/health/ready')).status === 200;
}

async function scenario(name) {
  const p = await setupProject();
  const kinds = name === 'all' ? ALL.filter((k) => k !== 'all' && k !== 'baseline') : name === 'baseline' ? [] : [name];
  const dead0 = await deadTuples();
  const sse = watch(p);
  // a bead fed before the stream is open could close unseen: wait for it (a stream that never
  // opens shows as missed closes)
  if (!(await Promise.race([sse.ready.then(() => true), sleep(10000).then(() => false)]))) log(`${name}: the event stream did not open within 10 s`);
  log(`${name}: project ${p}, ${BEADS} beads over ${FAULT_S} s`);
  const stops = [];
  for (const k of kinds) stops.push([k, await FAULTS[k]()]);
  const fed = await feed(p, name, BEADS, FAULT_S);
  const deadUnder = await deadTuples(); // with the faults still on (an xmin holder still holding)
  const injected = {};
  for (const [k, stop] of stops) injected[k] = await stop();
  const tStop = now();
  log(`${name}: faults stopped (${Object.entries(injected).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  let recovery = null;
  while (now() - tStop < RECOVERY_S * 1000) {
    if (await recoveredYet(p, fed.acked.size)) { recovery = (now() - tStop) / 1000; break; }
    await sleep(250);
  }
  // the last events in flight: the stream may be between two connections (a 250 ms retry, then
  // nginx and loom-sse on a loaded machine), so give it up to 15 s; a close never delivered
  // still counts as missed
  for (let i = 0; i < 150 && sse.closed.size < fed.acked.size; i++) await sleep(100);
  if (sse.closed.size < fed.acked.size) log(`${name}: the stream has ${sse.closed.size} of ${fed.acked.size} closes after ${sse.reconnects} reconnects`);
  sse.stop();
  const [[closed, total, active, working, dupTitles, requeued, blocked]] = rows(await q(`SELECT
      (SELECT count(*) FROM beads WHERE project_id = '${p}' AND status = 'closed'),
      (SELECT count(*) FROM beads WHERE project_id = '${p}'),
      (SELECT count(*) FROM runs WHERE project_id = '${p}' AND state IN ('queued', 'running')),
      (SELECT count(*) FROM agents WHERE project_id = '${p}' AND status = 'working'),
      (SELECT count(*) FROM (SELECT title FROM beads WHERE project_id = '${p}' GROUP BY title HAVING count(*) > 1) d),
      (SELECT count(*) FROM events WHERE project_id = '${p}' AND type = 'run.requeued'),
      (SELECT string_agg(DISTINCT status || coalesce(': ' || (context ->> 'ralph_blocked_reason'), ''), '; ')
         FROM beads WHERE project_id = '${p}' AND status <> 'closed')`));
  const ids = rows(await q(`SELECT id FROM beads WHERE project_id = '${p}'`)).map((r) => r[0]);
  const missing = [...fed.acked].filter((id) => !ids.includes(id)).length;
  const lost = missing + (fed.acked.size - Math.min(fed.acked.size, Number(closed))) + Number(dupTitles);
  const led = ledger(p);
  const dbActions = Number(await q(`SELECT count(*) FROM actions WHERE project_id = '${p}'`));
  const sseMissed = ids.filter((id) => !sse.closed.has(id)).length;
  const dead1 = await deadTuples();
  const r = {
    name, beads: Number(total), closed: Number(closed), lost, double: led.doubles,
    stuck: Number(active) + Number(working), recovery, deadDelta: deadUnder - dead0, deadAfter: dead1 - dead0,
    requeued: Number(requeued), sseMissed, sseDups: sse.dups, reconnects: sse.reconnects,
    apiFailures: fed.failures, api5xx: fed.s5xx, landedUnacked: fed.landed,
    ledger: led.lines, dbActions, stale: led.stale, injected, notClosed: blocked,
  };
  r.ok = r.lost === 0 && r.double === 0 && r.stuck === 0 && recovery !== null && r.sseMissed === 0 &&
    r.sseDups === 0 && r.beads === BEADS && r.ledger >= r.dbActions && r.dbActions > 0;
  log(`${name}: ${r.ok ? 'ok' : 'FAILED'} ${JSON.stringify(r)}`);
  return r;
}

function table(results) {
  const head = ['scenario', 'beads', 'lost', 'double', 'stuck', 'recovery s', 'dead tup Δ (after)', 're-queued', 'sse missed', 'API fails', 'faults'];
  const body = results.map((r) => [r.name, r.beads, r.lost, r.double, r.stuck,
    r.recovery === null ? `>${RECOVERY_S}` : r.recovery.toFixed(1), `${r.deadDelta} (${r.deadAfter})`, r.requeued, r.sseMissed,
    r.apiFailures, Object.entries(r.injected).map(([k, v]) => `${k}:${v}`).join(' ')]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const fmt = (cells) => `| ${cells.map((c, i) => String(c).padEnd(w[i])).join(' | ')} |`;
  console.log(fmt(head));
  console.log(`|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`);
  for (const b of body) console.log(fmt(b));
}

async function main() {
  const t0 = now();
  await startStub();
  try {
    await setupProvider();
    const results = [];
    for (const s of SCENARIOS) {
      try {
        results.push(await scenario(s));
      } catch (e) {
        log(`${s}: error: ${e.stack || e}`);
        results.push({ name: s, ok: false, beads: 0, lost: '?', double: '?', stuck: '?', recovery: null, deadDelta: '?', deadAfter: '?', requeued: '?', sseMissed: '?', apiFailures: '?', injected: {} });
      }
    }
    console.log(`\nchaos: ${BEADS * results.length} beads, ${BEADS} per scenario, faults for ${FAULT_S} s, ${env('STACK_EXECUTORS', 4)} executors, lease ${env('LOOM_LEASE_SECONDS', '?')} s; ${((now() - t0) / 1000).toFixed(0)} s in all`);
    table(results);
    for (const r of results) console.log(`${r.ok ? 'ok' : 'not ok'} - chaos ${r.name}`);
    const passed = results.filter((r) => r.ok).length;
    console.log(`${passed} passed, ${results.length - passed} failed`);
    process.exitCode = passed === results.length ? 0 : 1;
  } finally {
    stub.kill('SIGTERM');
  }
}

await main();
