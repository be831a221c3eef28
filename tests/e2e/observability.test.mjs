// Observability end to end: an agent on the scripted stub does measurable work, and the
// analytics (stats, costs by every grouping, the LLM calls, CSV/JSON export, change velocity),
// the structured logs (persisted by the workers, merged with the events, exported, streamed,
// pruned by age) and GET /metrics (parsed strictly; counters of both API processes add up;
// Loom's agent, bead and database families) report it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { BASE, api, assertError, authHeader, footprint, newProject, newBead, newUser, sql, sleep } from './lib.mjs';

const MODEL = 'gpt-4o-mini'; // in the price table: 0.15 / 0.60 USD per million tokens
const CALL_COST = (1000 * 0.15 + 100 * 0.6) / 1e6;
let stub;
let stubUrl;
let provider;
let project; // the project the agent works in
let bead; // the bead it worked

const actions = (...list) => ({ actions: list, notes: 'scripted' });

async function stubScript(body) {
  const r = await fetch(`${stubUrl}/_stub/script`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
}

async function waitFor(pred, ms, what) {
  let last;
  for (const until = Date.now() + ms; Date.now() < until;) {
    last = await pred();
    if (last) return last;
    await sleep(150);
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

const waitBead = (id, status) => waitFor(async () => {
  const b = (await api('GET', `/api/v1/beads/${id}`)).body;
  return b.status === status ? b : null;
}, 40000, `bead ${id} ${status}`);

// A strict RFC 4180 reader: CRLF rows, quoted fields with doubled quotes; an unquoted empty
// field is null (SQL NULL), a quoted one the empty string.
function parseCsv(text) {
  assert.ok(text.endsWith('\r\n'), 'CSV ends with CRLF');
  const rows = [];
  let row = [];
  let i = 0;
  while (i < text.length) {
    let value;
    if (text[i] === '"') {
      value = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        assert.ok(q >= 0, `unterminated quoted field at ${i}`);
        value += text.slice(j, q);
        if (text[q + 1] === '"') { value += '"'; j = q + 2; continue; }
        i = q + 1;
        break;
      }
    } else {
      let j = i;
      for (; j < text.length && text[j] !== ',' && text[j] !== '\r'; j++) {
        assert.ok(text[j] !== '"' && text[j] !== '\n', `bare quote or LF in an unquoted field at ${j}`);
      }
      value = j === i ? null : text.slice(i, j);
      i = j;
    }
    row.push(value);
    if (text[i] === ',') { i++; continue; }
    assert.equal(text.slice(i, i + 2), '\r\n', `row ends in CRLF at ${i}`);
    i += 2;
    rows.push(row);
    row = [];
  }
  const width = rows[0].length;
  for (const r of rows) assert.equal(r.length, width, 'every row has as many fields as the header');
  return rows;
}

// ---- the Prometheus text format, parsed strictly ------------------------------------------

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;

function parseLabels(s, where) {
  const labels = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    assert.ok(m, `bad label at ${where}: ${s.slice(i)}`);
    i += m[0].length;
    let v = '';
    for (;;) {
      assert.ok(i < s.length, `unterminated label value at ${where}`);
      const c = s[i++];
      if (c === '"') break;
      if (c === '\\') {
        const e = s[i++];
        assert.ok(['\\', '"', 'n'].includes(e), `bad escape \\${e} at ${where}`);
        v += e === 'n' ? '\n' : e;
      } else {
        assert.notEqual(c, '\n');
        v += c;
      }
    }
    assert.ok(!(m[1] in labels), `label ${m[1]} twice at ${where}`);
    labels[m[1]] = v;
    if (i < s.length) {
      assert.equal(s[i], ',', `labels are separated by commas at ${where}`);
      i++;
      assert.ok(i < s.length, `no trailing comma at ${where}`);
    }
  }
  return labels;
}

// {families: Map(name -> {help, type, samples: [{name, labels, value}]})}; asserts the format.
function parseProm(text) {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const families = new Map();
  const seen = new Set();
  let cur = null;
  for (const [n, line] of text.slice(0, -1).split('\n').entries()) {
    const where = `line ${n + 1}: ${line}`;
    let m;
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      assert.ok(!families.has(m[1]), `HELP of ${m[1]} twice (${where})`);
      assert.match(m[2], /^(?:[^\\]|\\[\\n])*$/, `help escapes (${where})`);
      cur = { name: m[1], help: m[2], type: null, samples: [] };
      families.set(m[1], cur);
      continue;
    }
    if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      assert.ok(cur && cur.name === m[1] && cur.type === null && cur.samples.length === 0,
        `TYPE right after its HELP, once, before samples (${where})`);
      cur.type = m[2];
      continue;
    }
    assert.ok(!line.startsWith('#'), `unknown comment (${where})`);
    m = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line);
    assert.ok(m, `malformed sample (${where})`);
    assert.ok(cur && cur.type, `sample before its family's HELP and TYPE (${where})`);
    const suffix = m[1].slice(cur.name.length);
    assert.ok(m[1].startsWith(cur.name) && (cur.type === 'histogram' ? ['_bucket', '_sum', '_count'].includes(suffix) : suffix === ''),
      `sample ${m[1]} outside its family ${cur.name} (${where})`);
    assert.match(m[3], VALUE, `value (${where})`);
    const labels = parseLabels(m[2] ?? '', where);
    const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(key), `series twice (${where})`);
    seen.add(key);
    const value = Number(m[3].replace('Inf', 'Infinity'));
    if (cur.type === 'counter') assert.ok(value >= 0, `counters are not negative (${where})`);
    cur.samples.push({ name: m[1], labels, value });
  }
  for (const f of families.values()) {
    assert.ok(f.type, `${f.name} has a TYPE`);
    if (f.type === 'histogram') checkHistogram(f);
  }
  return families;
}

// Buckets ascend by le, never decrease, end with +Inf = _count; _sum and _count exist.
function checkHistogram(f) {
  const series = new Map();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (!series.has(key)) series.set(key, { buckets: [], sum: null, count: null });
    const h = series.get(key);
    if (s.name.endsWith('_bucket')) {
      assert.ok(le !== undefined, `${f.name}_bucket without le`);
      h.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), value: s.value });
    } else {
      assert.equal(le, undefined, `${s.name} has no le`);
      h[s.name.endsWith('_sum') ? 'sum' : 'count'] = s.value;
    }
  }
  for (const [key, h] of series) {
    const what = `${f.name} ${key}`;
    assert.ok(h.buckets.length >= 2, `${what}: buckets`);
    for (let i = 1; i < h.buckets.length; i++) {
      assert.ok(h.buckets[i].le > h.buckets[i - 1].le, `${what}: le ascends`);
      assert.ok(h.buckets[i].value >= h.buckets[i - 1].value, `${what}: cumulative counts never decrease`);
    }
    assert.equal(h.buckets.at(-1).le, Infinity, `${what}: the last bucket is +Inf`);
    assert.equal(h.buckets.at(-1).value, h.count, `${what}: +Inf equals _count`);
    assert.ok(h.sum !== null && h.sum >= 0, `${what}: _sum`);
  }
}

const sample = (fams, name, labels = {}) => {
  const family = fams.get(name.replace(/_(bucket|sum|count)$/, '')) || fams.get(name);
  const s = family?.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : undefined;
};

let metricsKey; // an API key narrowed to system:read, as Prometheus would hold
async function scrape(headers) {
  const res = await fetch(`${BASE}/metrics`, { headers: headers ?? { Authorization: `Bearer ${metricsKey}` } });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text };
}

// ---- an SSE client over node:http ---------------------------------------------------------

function sseOpen(urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get(BASE + urlPath, { headers: authHeader(), agent: false }, (res) => {
      const s = { status: res.statusCode, buf: '', events: [], close: () => req.destroy() };
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        s.buf += chunk;
        let i;
        while ((i = s.buf.indexOf('\n\n')) >= 0) {
          const ev = {};
          for (const l of s.buf.slice(0, i).split('\n')) {
            const m = /^([a-z]+): ?(.*)$/.exec(l);
            if (m) ev[m[1]] = m[2];
          }
          s.buf = s.buf.slice(i + 2);
          if (ev.event) s.events.push(ev);
        }
      });
      res.on('error', () => {});
      resolve(s);
    });
    req.on('error', reject);
  });
}

// ---- the run everything below measures ----------------------------------------------------

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
  // other test files leave providers and live runs behind: park them so only ours works
  sql(`UPDATE providers SET status = 'inactive'`);
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE state IN ('queued', 'running')`);
  provider = `obsstub${Date.now().toString(36)}`;
  assert.equal((await api('POST', '/api/v1/providers', { id: provider, endpoint: stubUrl, model: MODEL })).status, 201);
  await waitFor(async () => (await api('GET', `/api/v1/providers/${provider}`)).body.status === 'healthy', 15000, 'a healthy provider');
  project = await newProject({ dispatch: true });
  for (const a of (await api('GET', `/api/v1/agents?project_id=${project}`)).body) {
    await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  }
  const ag = await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: project, provider_id: provider });
  assert.equal(ag.status, 201, ag.text);
  const key = await api('POST', '/api/v1/auth/api-keys', { name: 'prometheus', permissions: ['system:read'] });
  assert.equal(key.status, 201, key.text);
  metricsKey = key.body.key;

  await stubScript({
    usage: { prompt_tokens: 1000, completion_tokens: 100 },
    beads: [{ match: '^Measured work$', replies: [
      actions({ type: 'write_file', path: 'Makefile', content: 'all:\n\t@echo built\ntest:\n\t@echo tested\n' },
        { type: 'write_file', path: 'notes/a.txt', content: 'alpha\n' }),
      actions({ type: 'build_project' }, { type: 'build_project', build_command: 'make nosuchtarget' }, { type: 'run_tests' }),
      actions({ type: 'git_commit', commit_message: 'Add a Makefile and notes' }, { type: 'done', reason: 'measured' }),
    ] }],
  });
  bead = (await newBead(project, { title: 'Measured work', priority: 0 })).id;
  await waitBead(bead, 'closed');
});

after(() => stub?.kill('SIGTERM'));

test('stats, costs by every grouping and the LLM calls report the run', async () => {
  const calls = Number(sql(`SELECT count(*) FROM llm_calls WHERE bead_id = '${bead}'`));
  assert.equal(calls, 3);
  const agent = sql(`SELECT agent_id FROM runs WHERE bead_id = '${bead}'`);

  const s = (await api('GET', `/api/v1/analytics/stats?project_id=${project}&period=1h`)).body;
  assert.equal(s.total_requests, 3);
  assert.equal(s.total_tokens, 3300);
  assert.ok(Math.abs(Number(s.total_cost_usd) - 3 * CALL_COST) < 1e-9, `cost ${s.total_cost_usd}`);
  assert.equal(Number(s.error_rate), 0);
  assert.ok(s.avg_latency_ms >= 0 && s.p95_latency_ms >= 0);
  assert.deepEqual(s.by_provider.map((x) => [x.key, x.requests]), [[provider, 3]]);
  assert.equal(s.runs.succeeded, 1);
  assert.deepEqual(s.runs.by_reason, [{ reason: 'completed', runs: 1 }]);

  const today = new Date().toISOString().slice(0, 10);
  const want = { project, agent, persona: 'engineering-manager', model: MODEL, provider, bead, day: today };
  for (const [group, key] of Object.entries(want)) {
    const c = await api('GET', `/api/v1/analytics/costs?project_id=${project}&period=24h&group_by=${group}`);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.group_by, group);
    assert.equal(c.body.rows.length, 1, `${group}: ${c.text}`);
    const [row] = c.body.rows;
    assert.equal(row.key, key, group);
    assert.equal(row.requests, 3);
    assert.equal(row.prompt_tokens, 3000);
    assert.equal(row.completion_tokens, 300);
    assert.ok(Math.abs(Number(row.cost_usd) - 3 * CALL_COST) < 1e-9);
    assert.equal(Number(row.share), 1);
    assert.equal(Number(c.body.total_cost_usd), Number(row.cost_usd));
  }

  const page = await api('GET', `/api/v1/analytics/logs?project_id=${project}&limit=2`);
  assert.equal(page.status, 200);
  assert.equal(page.body.length, 2);
  assert.equal(page.headers.get('x-next-offset'), '2');
  assert.ok(page.body[0].id > page.body[1].id, 'newest first');
  const rest = (await api('GET', `/api/v1/analytics/logs?project_id=${project}&limit=2&offset=2`)).body;
  assert.equal(rest.length, 1);
  assert.equal((await api('GET', `/api/v1/analytics/logs?project_id=${project}&status=error`)).body.length, 0);
  assert.equal((await api('GET', `/api/v1/analytics/logs?bead_id=${bead}&model=${MODEL}&provider_id=${provider}`)).body.length, 3);
});

test('the LLM calls export as CSV (parsed strictly) and JSON', async () => {
  const csv = await api('GET', `/api/v1/analytics/export?project_id=${project}&format=csv`);
  assert.equal(csv.status, 200);
  assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
  assert.equal(csv.headers.get('content-disposition'), `attachment; filename="loom-llm-calls-24h-${project}.csv"`);
  const rows = parseCsv(csv.text);
  const head = rows[0];
  for (const col of ['id', 'timestamp', 'project_id', 'bead_id', 'provider_id', 'served_model', 'prompt_tokens', 'cost_usd', 'latency_ms', 'status', 'error']) {
    assert.ok(head.includes(col), `column ${col}`);
  }
  assert.equal(rows.length, 4);
  const at = (r, col) => r[head.indexOf(col)];
  for (const r of rows.slice(1)) {
    assert.equal(at(r, 'bead_id'), bead);
    assert.equal(at(r, 'served_model'), MODEL);
    assert.equal(at(r, 'prompt_tokens'), '1000');
    assert.equal(at(r, 'error'), null, 'NULL is an empty unquoted field');
    assert.match(at(r, 'timestamp'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  const json = await api('GET', `/api/v1/analytics/export?project_id=${project}`);
  assert.equal(json.status, 200);
  assert.match(json.headers.get('content-disposition'), /\.json"$/);
  assert.deepEqual(json.body.map((x) => String(x.id)), rows.slice(1).map((r) => at(r, 'id')));
  assert.equal(json.body[0].prompt_tokens, 1000, 'numbers stay numbers');
  assert.equal(json.body[0].error, null);
  const one = await api('GET', `/api/v1/analytics/export?project_id=${project}&format=csv&limit=1`);
  assert.equal(parseCsv(one.text).length, 2);
  assert.equal(one.headers.get('x-truncated'), 'true');
  assert.equal(one.headers.get('x-next-offset'), '1');
});

test('CSV quoting survives commas, quotes and newlines; costs group and sum by agent', async () => {
  const p = await newProject();
  const b = await newBead(p, { title: 'priced' });
  const agents = (await api('GET', `/api/v1/agents?project_id=${p}`)).body.map((a) => a.id).slice(0, 2);
  const run = (agent) => sql(`WITH r AS (INSERT INTO runs (bead_id, project_id, agent_id, persona_name, priority, state, finished_at, terminal_reason) VALUES ('${b.id}', '${p}', '${agent}', 'ceo', 2, 'failed', now(), 'error') RETURNING id) SELECT id FROM r`);
  const r1 = run(agents[0]);
  const r2 = run(agents[1]);
  const nasty = 'upstream said: "no", then, well\nmore, on a second line';
  sql(`SELECT loom_llm_call_record('{"run_id":${r1},"served_model":"gpt-4o","prompt_tokens":1000,"completion_tokens":100,"latency_ms":200,"status":"ok"}'::jsonb)`);
  sql(`SELECT loom_llm_call_record('{"run_id":${r1},"served_model":"gpt-4o","prompt_tokens":1000,"latency_ms":300,"status":"ok"}'::jsonb)`);
  sql(`SELECT loom_llm_call_record(jsonb_build_object('run_id', ${r2}, 'served_model', 'gpt-4o', 'prompt_tokens', 500, 'latency_ms', 900, 'status', 'error', 'error_class', 'server', 'error', $q$${nasty}$q$))`);
  const byAgent = (await api('GET', `/api/v1/analytics/costs?project_id=${p}&group_by=agent`)).body;
  assert.deepEqual(byAgent.rows.map((r) => [r.key, r.requests, Number(r.cost_usd)]),
    [[agents[0], 2, 0.006], [agents[1], 1, 0.00125]]);
  assert.equal(byAgent.rows[0].errors, 0);
  assert.equal(byAgent.rows[1].errors, 1);
  assert.ok(Math.abs(Number(byAgent.total_cost_usd) - 0.00725) < 1e-9);
  const stats = (await api('GET', `/api/v1/analytics/stats?project_id=${p}`)).body;
  assert.equal(Number(stats.error_rate), 0.3333);
  assert.equal(stats.totals.errors, 1);

  const rows = parseCsv((await api('GET', `/api/v1/analytics/export?project_id=${p}&format=csv`)).text);
  const err = rows[0].indexOf('error');
  assert.deepEqual(rows.slice(1).map((r) => r[err]), [null, null, nasty]);
  const json = (await api('GET', `/api/v1/analytics/export?project_id=${p}&format=json`)).body;
  assert.equal(json[2].error, nasty);
  assert.equal(json[2].error_class, 'server');
});

test('bad analytics and log queries are refused with the reason and change nothing', async () => {
  const before = footprint(project);
  const cases = [
    ['/api/v1/analytics/costs?group_by=user', 'group_by'],
    ['/api/v1/analytics/costs?period=1y', 'period'],
    ['/api/v1/analytics/costs?project_id=Bad!', 'project_id'],
    ['/api/v1/analytics/costs?groupby=model', 'groupby'],
    ['/api/v1/analytics/logs?status=meh', 'status'],
    ['/api/v1/analytics/logs?run_id=abc', 'run_id'],
    ['/api/v1/analytics/logs?limit=0', 'limit'],
    ['/api/v1/analytics/logs?bead_id=nope', 'bead_id'],
    ['/api/v1/analytics/export?format=xml', 'format'],
    ['/api/v1/analytics/export?limit=100001', 'limit'],
    ['/api/v1/analytics/change-velocity?period=forever', 'period'],
    ['/api/v1/logs/export?format=yaml', 'format'],
    ['/api/v1/logs/export?level=loud', 'level'],
    ['/api/v1/logs/export?source=%01', 'source'],
    ['/api/v1/logs/recent?agent_id=%01', 'agent_id'],
    ['/metrics?x=1', 'x'],
  ];
  for (const [path, fragment] of cases) assertError(await api('GET', path), 400, fragment);
  assert.equal(footprint(project), before);
});

test('change velocity counts the files, builds, tests and commits of the run', async () => {
  const v = await api('GET', `/api/v1/analytics/change-velocity?project_id=${project}&period=1h`);
  assert.equal(v.status, 200, v.text);
  assert.equal(v.body.period, '1h');
  assert.equal(v.body.projects.length, 1);
  const [p] = v.body.projects;
  assert.equal(p.project_id, project);
  assert.equal(p.files_changed, 2);
  assert.equal(p.edits, 2);
  assert.equal(p.builds_run, 2);
  assert.equal(p.builds_passed, 1);
  assert.equal(p.tests_run, 1);
  assert.equal(p.tests_passed, 1);
  assert.equal(p.commits, 1);
  assert.equal(p.pushes, 0);
  assert.equal(p.commands_failed, 1);
  assert.ok(p.commands_run >= 4, `${p.commands_run} commands`);
  assert.equal(Number(p.commits_per_day), 24);
  assert.deepEqual([p.funnel.edited, p.funnel.built, p.funnel.tested, p.funnel.committed, p.funnel.pushed], [1, 1, 1, 1, 0]);
  assert.equal(Number(p.funnel.edit_to_build), 1);
  assert.equal(Number(p.funnel.commit_to_push), 0);
  const all = (await api('GET', '/api/v1/analytics/change-velocity')).body;
  assert.ok(all.projects.some((x) => x.project_id === project && x.commits === 1));
});

test('the run left log lines in the database; the log merges them with the events', async () => {
  const logs = await waitFor(async () => {
    const l = (await api('GET', `/api/v1/logs/recent?project_id=${project}&bead_id=${bead}&level=debug&limit=1000`)).body;
    return l.some((x) => /finished: completed/.test(x.message)) ? l : null;
  }, 10000, 'the run\'s end in the log');
  const started = logs.find((x) => x.type === 'log.info' && new RegExp(`started on bead ${bead}`).test(x.message));
  assert.ok(started, JSON.stringify(logs.slice(0, 5)));
  assert.match(started.source, /^executor-\d+$/);
  assert.equal(started.project_id, project);
  assert.equal(started.agent_id, sql(`SELECT agent_id FROM runs WHERE bead_id = '${bead}'`));
  const finished = logs.find((x) => /finished: completed after 3 iterations/.test(x.message));
  assert.equal(finished.level, 'info');
  assert.ok(logs.some((x) => x.type === 'bead.created'), 'events are lines too');
  assert.ok(logs.every((x, i) => i === 0 || logs[i - 1].id > x.id), 'newest first, one id space');
  assert.equal(new Set(logs.map((x) => x.id)).size, logs.length, 'no line twice');
  // the rows behind them: a log.* event and a logs row with the same id
  assert.equal(sql(`SELECT count(*) FROM logs l JOIN events e ON e.id = l.id AND e.type = 'log.' || l.level WHERE l.id = ${started.id}`), '1');
  const warn = (await api('GET', `/api/v1/logs/recent?project_id=${project}&level=warn`)).body;
  assert.ok(warn.every((x) => ['warn', 'error'].includes(x.level)));
  const bySource = (await api('GET', `/api/v1/logs/recent?project_id=${project}&source=${started.source}&level=debug`)).body;
  assert.ok(bySource.length >= 2 && bySource.every((x) => x.source === started.source));
});

test('logs export as CSV and JSON; other users see none of a project\'s lines', async () => {
  const csv = await api('GET', `/api/v1/logs/export?project_id=${project}&format=csv&level=debug`);
  assert.equal(csv.status, 200);
  assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
  assert.equal(csv.headers.get('content-disposition'), `attachment; filename="loom-logs-24h-${project}.csv"`);
  const rows = parseCsv(csv.text);
  assert.deepEqual(rows[0], ['id', 'timestamp', 'level', 'source', 'type', 'project_id', 'bead_id', 'agent_id', 'message']);
  const ids = rows.slice(1).map((r) => Number(r[0]));
  assert.ok(ids.every((x, i) => i === 0 || ids[i - 1] < x), 'oldest first');
  assert.ok(rows.some((r) => r[4] === 'log.info' && /started on bead/.test(r[8])));
  assert.ok(rows.some((r) => r[4] === 'bead.created'));
  const json = (await api('GET', `/api/v1/logs/export?project_id=${project}&level=debug`)).body;
  assert.deepEqual(json.map((x) => x.id), ids);

  const other = await newUser('user');
  const h = authHeader(other.token);
  assert.deepEqual((await api('GET', `/api/v1/logs/recent?project_id=${project}`, undefined, h)).body, []);
  assert.deepEqual(parseCsv((await api('GET', `/api/v1/logs/export?project_id=${project}&format=csv`, undefined, h)).text).length, 1);
  assert.deepEqual((await api('GET', `/api/v1/analytics/costs?project_id=${project}`, undefined, h)).body.rows, []);
  assert.deepEqual((await api('GET', `/api/v1/analytics/export?project_id=${project}`, undefined, h)).body, []);
  const viewer = await newUser('viewer');
  assertError(await api('GET', '/metrics', undefined, authHeader(viewer.token)), 403, 'system:read');
});

test('the log stream delivers a line a worker persisted', async () => {
  const s = await sseOpen(`/api/v1/logs/stream?project_id=${project}`);
  try {
    assert.equal(s.status, 200);
    await waitFor(() => s.events.find((e) => e.event === 'connected'), 5000, 'connected');
    await stubScript({ usage: { prompt_tokens: 1000, completion_tokens: 100 }, beads: [{ match: '^Streamed$', replies: [actions({ type: 'done', reason: 'ok' })] }] });
    const b = (await newBead(project, { title: 'Streamed', priority: 0 })).id;
    const ev = await waitFor(() => s.events.find((e) => e.event === 'log.info' && e.data.includes(`started on bead ${b}`)), 30000, 'the run\'s log line on the stream');
    const data = JSON.parse(ev.data);
    assert.equal(data.type, 'log.info');
    assert.equal(data.project_id, project);
    assert.equal(data.bead_id, b);
    assert.match(data.source, /^executor-\d+$/);
    assert.equal(String(data.id), ev.id);
    assert.ok(s.events.filter((e) => e.event !== 'connected').every((e) => e.event.startsWith('log.')), 'only log.* events');
    await waitBead(b, 'closed');
  } finally {
    s.close();
  }
});

test('Ralph prunes log lines past LOOM_LOGS_RETENTION_DAYS (7), with their events', async () => {
  const tag = `retention-${Date.now()}`;
  sql(`SELECT loom_logs_write('[{"level":"warn","source":"obs-test","message":"${tag} old","project_id":"${project}"},{"level":"warn","source":"obs-test","message":"${tag} new","project_id":"${project}"}]')`);
  const oldId = sql(`SELECT id FROM logs WHERE message = '${tag} old'`);
  assert.ok(Number(oldId) > 0);
  assert.equal((await api('GET', `/api/v1/logs/recent?project_id=${project}&source=obs-test`)).body.filter((x) => x.message.startsWith(tag)).length, 2);
  sql(`UPDATE logs SET created_at = now() - interval '8 days' WHERE id = ${oldId}`);
  await waitFor(() => sql(`SELECT count(*) FROM logs WHERE id = ${oldId}`) === '0', 15000, 'the old line pruned');
  assert.equal(sql(`SELECT count(*) FROM events WHERE id = ${oldId}`), '0');
  const left = (await api('GET', `/api/v1/logs/recent?project_id=${project}&source=obs-test`)).body.filter((x) => x.message.startsWith(tag));
  assert.deepEqual(left.map((x) => x.message), [`${tag} new`]);
});

test('/metrics: strict Prometheus text, credentials, and the counters of every process', async () => {
  const anon = await scrape({});
  assert.equal(anon.status, 401);
  const r = await scrape();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
  const fams = parseProm(r.text);
  for (const [name, type] of [['loom_bead_status', 'gauge'], ['loom_runs', 'gauge'], ['loom_runs_finished_total', 'counter'],
    ['loom_run_queue_depth', 'gauge'], ['loom_lease_expiries_total', 'counter'], ['loom_dispatch_hops_total', 'counter'],
    ['loom_provider_requests_total', 'counter'], ['loom_provider_request_duration_seconds', 'histogram'],
    ['loom_provider_tokens_total', 'counter'], ['loom_provider_cost_usd_cents', 'counter'],
    ['loom_http_requests_total', 'counter'], ['loom_http_request_duration_seconds', 'histogram'],
    ['loom_events_published_total', 'counter'], ['loom_processes', 'gauge']]) {
    assert.equal(fams.get(name)?.type, type, name);
  }
  // what the database counted where it happened
  const calls = Number(sql(`SELECT count(*) FROM llm_calls WHERE provider_id = '${provider}'`));
  const labels = { provider, model: MODEL };
  assert.equal(sample(fams, 'loom_provider_requests_total', labels), calls);
  assert.equal(sample(fams, 'loom_provider_request_duration_seconds_count', labels), calls);
  assert.equal(sample(fams, 'loom_provider_tokens_total', { ...labels, type: 'prompt' }), 1000 * calls);
  assert.ok(Math.abs(sample(fams, 'loom_provider_cost_usd_cents', labels) - calls * CALL_COST * 100) < 1e-6);
  // counted when they ended, so deleted projects' runs stay counted: at least the rows left
  const completed = Number(sql(`SELECT count(*) FROM runs WHERE state = 'succeeded' AND terminal_reason = 'completed'`));
  assert.ok(completed >= 1);
  assert.ok(sample(fams, 'loom_runs_finished_total', { state: 'succeeded', reason: 'completed' }) >= completed);
  assert.equal(sample(fams, 'loom_runs', { state: 'succeeded' }), Number(sql(`SELECT count(*) FROM runs WHERE state = 'succeeded'`)));
  assert.equal(sample(fams, 'loom_bead_status', { status: 'closed' }), Number(sql(`SELECT count(*) FROM beads WHERE status = 'closed'`)));
  assert.ok(sample(fams, 'loom_dispatch_hops_total') >= Number(sql('SELECT count(*) FROM runs')));
  assert.ok(sample(fams, 'loom_processes', { program: 'loom-api' }) >= 2);

  // requests counted by two API processes add up in one scrape of either
  const route = '/api/v1/events/stats';
  const series = { method: 'GET', route, code: '400' };
  const base = sample(fams, 'loom_http_requests_total', series) ?? 0;
  let sent = 0;
  const perProcess = () => Number(sql(`SELECT count(DISTINCT process) FROM metric_counters WHERE name = 'loom_http_requests_total' AND labels = '${JSON.stringify(series)}'::jsonb AND value > 0`));
  for (let round = 0; round < 8 && (sent === 0 || perProcess() < 2); round++) {
    const batch = await Promise.all(Array.from({ length: 16 }, () => api('GET', `${route}?period=bogus`)));
    assert.ok(batch.every((x) => x.status === 400));
    sent += batch.length;
    // the process that answers a scrape reports itself first; the other one within
    // LOOM_METRICS_FLUSH_MS (5 s)
    await waitFor(async () => sample(parseProm((await scrape()).text), 'loom_http_requests_total', series) === base + sent,
      20000, `${base + sent} requests counted`);
  }
  assert.ok(perProcess() >= 2, 'both API processes served some of the requests');
  for (let i = 0; i < 4; i++) { // whichever process answers, the sum is the same
    const f = parseProm((await scrape()).text);
    assert.equal(sample(f, 'loom_http_requests_total', series), base + sent);
    const dur = sample(f, 'loom_http_request_duration_seconds_count', { method: 'GET', route });
    assert.ok(dur >= base + sent, `${dur} timed`);
  }
  assert.equal(Number(sql(`SELECT sum(value) FROM metric_counters WHERE name = 'loom_http_requests_total' AND labels = '${JSON.stringify(series)}'::jsonb`)), base + sent);
});

test("/metrics: Loom's agent, bead, provider and database families", async () => {
  let fams = parseProm((await scrape()).text);
  for (const [name, type] of [['loom_agents_total', 'gauge'], ['loom_beads_total', 'gauge'], ['loom_providers_total', 'gauge'],
    ['loom_database_connections', 'gauge'], ['loom_agent_tasks_total', 'counter'], ['loom_agent_task_duration_seconds', 'histogram'],
    ['loom_bead_transitions_total', 'counter'], ['loom_beads_processed_total', 'counter'], ['loom_bead_duration_seconds', 'histogram']]) {
    assert.equal(fams.get(name)?.type, type, name);
  }
  assert.equal(sample(fams, 'loom_agents_total'), Number(sql('SELECT count(*) FROM agents')));
  assert.equal(sample(fams, 'loom_beads_total'), Number(sql('SELECT count(*) FROM beads')));
  assert.equal(sample(fams, 'loom_providers_total'), Number(sql('SELECT count(*) FROM providers')));
  // this scrape's own connection is active; the workers hold theirs open
  assert.ok(sample(fams, 'loom_database_connections', { state: 'active' }) >= 1);
  assert.ok(sample(fams, 'loom_database_connections', { state: 'idle' }) >= 1);
  assert.ok(sample(fams, 'loom_database_connections', { state: 'idle in transaction' }) >= 0);

  // the measured run: one task of its persona, timed from start to end
  const persona = { persona: 'engineering-manager' };
  const [succeeded, timed, seconds] = sql(`SELECT count(*) FILTER (WHERE state = 'succeeded'), count(started_at), coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)
    FROM runs WHERE persona_name = 'engineering-manager' AND finished_at IS NOT NULL`).split('|').map(Number);
  assert.ok(succeeded >= 1 && timed >= 1);
  assert.ok(sample(fams, 'loom_agent_tasks_total', { ...persona, result: 'succeeded' }) >= succeeded);
  assert.ok(sample(fams, 'loom_agent_task_duration_seconds_count', persona) >= timed);
  assert.ok(sample(fams, 'loom_agent_task_duration_seconds_sum', persona) >= seconds - 1e-3);
  // the runs by persona add up to the runs by state
  const tasks = fams.get('loom_agent_tasks_total').samples.reduce((n, x) => n + x.value, 0);
  const finished = fams.get('loom_runs_finished_total').samples.reduce((n, x) => n + x.value, 0);
  assert.ok(tasks >= 1 && tasks <= finished, `${tasks} tasks, ${finished} runs finished`);

  // the measured bead went open → in_progress → closed under the executor
  const moves = sql(`SELECT payload ->> 'from', payload ->> 'to' FROM events WHERE bead_id = '${bead}' AND type = 'bead.status_change' ORDER BY id`)
    .split('\n').filter(Boolean).map((l) => l.split('|'));
  assert.equal(moves.at(-1)[1], 'closed', JSON.stringify(moves));
  for (const [from, to] of moves) assert.ok(sample(fams, 'loom_bead_transitions_total', { from, to }) >= 1, `${from} → ${to}`);
  const processed = sample(fams, 'loom_beads_processed_total');
  assert.ok(processed >= 1);
  assert.equal(sample(fams, 'loom_bead_duration_seconds_count'), processed);
  const toClosed = fams.get('loom_bead_transitions_total').samples.filter((x) => x.labels.to === 'closed').reduce((n, x) => n + x.value, 0);
  assert.equal(toClosed, processed);

  // a bead closed by hand: one transition, one bead processed, one duration of about 2 s
  const quiet = await newProject(); // no dispatch: nothing else moves it
  const b = (await newBead(quiet, { title: 'closed by hand' })).id;
  sql(`UPDATE beads SET created_at = now() - interval '2 seconds' WHERE id = '${b}'`);
  const was = (k, labels) => sample(fams, k, labels) ?? 0;
  const r = await api('PATCH', `/api/v1/beads/${b}`, { status: 'closed' });
  assert.equal(r.status, 200, r.text);
  const after = parseProm((await scrape()).text);
  const moved = { from: 'open', to: 'closed' };
  assert.equal(sample(after, 'loom_bead_transitions_total', moved), was('loom_bead_transitions_total', moved) + 1);
  assert.equal(sample(after, 'loom_beads_processed_total'), processed + 1);
  assert.equal(sample(after, 'loom_bead_duration_seconds_count'), processed + 1);
  const took = sample(after, 'loom_bead_duration_seconds_sum') - sample(fams, 'loom_bead_duration_seconds_sum');
  assert.ok(took >= 2 && took < 60, `${took} s`);
  assert.equal(sample(after, 'loom_bead_duration_seconds_bucket', { le: '1' }), sample(fams, 'loom_bead_duration_seconds_bucket', { le: '1' }));
  assert.equal(sample(after, 'loom_bead_duration_seconds_bucket', { le: '60' }), sample(fams, 'loom_bead_duration_seconds_bucket', { le: '60' }) + 1);
  assert.equal(sample(after, 'loom_beads_total'), sample(fams, 'loom_beads_total') + 1);
});

test('/metrics counts open event streams, lease expiries and hop-limit blocks', async () => {
  const before = parseProm((await scrape()).text);
  const s = await sseOpen(`/api/v1/events/stream?project_id=${project}`);
  try {
    assert.equal(s.status, 200);
    await waitFor(async () => {
      const f = parseProm((await scrape()).text);
      return sample(f, 'loom_sse_streams') >= 1 && sample(f, 'loom_sse_streams_started_total') >= 1;
    }, 15000, 'the open stream counted');
    assert.ok(Number(sql(`SELECT count(*) FROM metric_processes WHERE program = 'loom-sse' AND seen_at > now() - interval '30 seconds'`)) >= 1);
  } finally {
    s.close();
  }
  // a lost executor: Ralph re-queues the run, once per expiry
  const requeued = sample(before, 'loom_lease_expiries_total', { outcome: 'requeued' });
  const other = await newProject(); // no healthy agent: the dispatcher leaves it alone
  const b = await newBead(other, { title: 'lost' });
  const agent = (await api('GET', `/api/v1/agents?project_id=${other}`)).body[0];
  sql(`INSERT INTO runs (bead_id, project_id, agent_id, persona_name, priority, state, attempt, lease_owner, lease_expires_at, started_at)
       VALUES ('${b.id}', '${other}', '${agent.id}', '${agent.persona_name}', 2, 'running', 1, 'gone-executor', now() - interval '1 minute', now())`);
  await waitFor(async () => sample(parseProm((await scrape()).text), 'loom_lease_expiries_total', { outcome: 'requeued' }) === requeued + 1, 15000, 'the expiry counted');
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE bead_id = '${b.id}' AND state IN ('queued', 'running')`);

  // a bead dispatched too often: the dispatcher blocks it instead of queueing a run
  const limited = sample(before, 'loom_dispatch_hop_limit_total');
  const hops = (await newBead(project, { title: 'Looping work', priority: 0, context: { dispatch_count: '20' } })).id;
  await waitBead(hops, 'blocked');
  assert.equal(sample(parseProm((await scrape()).text), 'loom_dispatch_hop_limit_total'), limited + 1);
});
