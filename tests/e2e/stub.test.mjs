// The scripted LLM stub itself (tests/fixtures/llm-stub.mjs): per-bead sequences, faults, the
// wire format.  It needs no Loom stack (run-e2e.sh starts one; this file ignores it).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';

const dir = mkdtempSync(join(tmpdir(), 'llm-stub-'));
const file = join(dir, 'script.json');
const act = (reason) => ({ actions: [{ type: 'done', reason }] });
const SCRIPT = {
  beads: [
    { match: '^seq-1$', replies: ['first', act('second'), 'third'] },
    { match: 'Flaky', replies: [{ fault: '500' }, { fault: '429', retry_after: 7 }, act('after faults'), 'next'] },
    { match: '^wrap-', replies: [{ actions: [], notes: 'n', think: 'hmm', prose: 'Here it is:', fence: true }] },
  ],
  default: ['default reply'],
};
let stub;
let base;

// A raw HTTP call that keeps whatever arrived, even when the server cuts the connection.
function call(method, path, body, headers = {}) {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(`${base}${path}`, { method, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      let text = '';
      let cut = false;
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('aborted', () => { cut = true; });
      res.on('error', () => { cut = true; });
      res.on('close', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, cut: cut || !res.complete });
      });
    });
    req.on('error', (e) => resolve({ status: 0, error: e.message, text: '' }));
    req.end(payload);
  });
}

const user = (id, title) => ({ role: 'user', content: `Work on bead ${id}: ${title}\n\nDo it.` });
// A conversation with n earlier assistant turns.
function convo(id, title, n = 0) {
  const m = [{ role: 'system', content: 'You are a stub tester.' }, user(id, title)];
  for (let i = 0; i < n; i++) m.push({ role: 'assistant', content: `turn ${i}` }, { role: 'user', content: 'ok' });
  return m;
}
const chat = (messages, extra = {}) => call('POST', '/v1/chat/completions', { model: 'stub-model', messages, ...extra });
const content = (r) => r.json?.choices?.[0]?.message?.content;
const script = (s) => call('POST', '/_stub/script', s);

// SSE payloads ("data: ..." lines) of a streamed answer.
const events = (text) => text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));

before(async () => {
  writeFileSync(file, JSON.stringify(SCRIPT));
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs', '--port', '0', '--script', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
});

after(() => { stub?.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); });

beforeEach(async () => {
  assert.equal((await script(SCRIPT)).status, 200);
  assert.equal((await call('POST', '/_stub/reset')).status, 200);
});

test('a bead gets its sequence by the number of assistant messages; the last repeats', async () => {
  assert.equal(content(await chat(convo('seq-1', 'Anything'))), 'first');
  assert.equal(content(await chat(convo('seq-1', 'Anything'))), 'first', 'stateless: a retry gets the same');
  assert.deepEqual(JSON.parse(content(await chat(convo('seq-1', 'Anything', 1)))), act('second'));
  assert.equal(content(await chat(convo('seq-1', 'Anything', 2))), 'third');
  assert.equal(content(await chat(convo('seq-1', 'Anything', 7))), 'third');
  assert.equal(content(await chat(convo('other-2', 'Unmatched'))), 'default reply');
  assert.equal(content(await chat([{ role: 'user', content: 'no bead here' }])), 'default reply');
  const stats = (await call('GET', '/_stub/stats')).json;
  assert.deepEqual(stats, { calls: 7, faults_served: 0, by_bead: { 'seq-1': 5, 'other-2': 1 } });
});

test('a fault is served once, then the next element; 429 carries Retry-After', async () => {
  const m = convo('fl-3', 'A Flaky thing'); // matched by title
  let r = await chat(m);
  assert.equal(r.status, 500);
  r = await chat(m);
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '7');
  assert.equal(r.json.error.code, 'rate_limit_exceeded');
  r = await chat(m);
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(content(r)), act('after faults'));
  assert.equal(content(await chat(m)), content(r), 'consumed faults stay consumed');
  assert.equal(content(await chat(convo('fl-3', 'A Flaky thing', 1))), 'next');
  // another bead matching the same entry has its own faults to go through
  assert.equal((await chat(convo('fl-4', 'Flaky too'))).status, 500);
  assert.equal((await call('GET', '/_stub/stats')).json.faults_served, 3);
});

test('context-length 400 body, html, empty, malformed and non-JSON replies', async () => {
  await script({ default: [{ fault: '400_context' }, { fault: 'html' }, { fault: 'empty' }, { fault: 'malformed' }, { fault: 'malformed_json_reply' }, 'ok'] });
  const m = convo('x-1', 'faults');
  let r = await chat(m);
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.equal(r.json.error.code, 'context_length_exceeded');
  assert.match(r.json.error.message, /maximum context length is 8192 tokens/);
  r = await chat(m);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/html/);
  assert.match(r.text, /Bad Gateway/);
  r = await chat(m);
  assert.equal(r.status, 200);
  assert.equal(r.text, '');
  r = await chat(m);
  assert.equal(r.status, 200);
  assert.equal(r.json, null, 'truncated JSON');
  assert.ok(r.text.startsWith('{"id":"chatcmpl-'));
  r = await chat(m);
  assert.equal(r.status, 200);
  assert.throws(() => JSON.parse(content(r)));
  assert.equal(content(await chat(m)), 'ok');
});

test('think, prose and fence wrap the JSON', async () => {
  const c = content(await chat(convo('wrap-1', 'Wrapped')));
  assert.equal(c, '<think>hmm</think>\nHere it is:\n\n```json\n{"actions":[],"notes":"n"}\n```');
});

test('streaming: chunks with id and created, finish, usage only when asked, [DONE]', async () => {
  let r = await chat(convo('seq-1', 'Streamed'), { stream: true, stream_options: { include_usage: true } });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/event-stream/);
  let ev = events(r.text);
  assert.equal(ev[ev.length - 1], '[DONE]');
  const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && typeof c.created === 'number'));
  assert.equal(chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join(''), 'first');
  const fin = chunks.findIndex((c) => c.choices[0]?.finish_reason === 'stop');
  assert.equal(fin, chunks.length - 2, 'the finish chunk, then the usage chunk');
  const u = chunks[chunks.length - 1];
  assert.deepEqual(u.choices, []);
  assert.equal(u.usage.completion_tokens, 2);
  assert.equal(u.usage.total_tokens, u.usage.prompt_tokens + 2);
  r = await chat(convo('seq-1', 'Streamed'), { stream: true });
  ev = events(r.text);
  assert.ok(!ev.slice(0, -1).some((e) => 'usage' in JSON.parse(e)), 'no usage chunk unless asked');
  assert.equal(ev[ev.length - 1], '[DONE]');
});

test('a truncated stream stops without finish_reason or [DONE]', async () => {
  await script({ default: [{ fault: 'truncated_stream' }, 'whole'] });
  const r = await chat(convo('t-1', 'cut'), { stream: true });
  assert.equal(r.status, 200);
  assert.ok(r.cut, 'the connection is cut mid-body');
  const ev = events(r.text);
  assert.ok(ev.length >= 2);
  assert.ok(!ev.includes('[DONE]'));
  assert.ok(ev.every((e) => JSON.parse(e).choices[0].finish_reason === null));
  assert.ok(events((await chat(convo('t-1', 'cut'), { stream: true })).text).includes('[DONE]'));
});

test('seeded random faults are deterministic; reset starts over', async () => {
  const seeded = { default: ['fine'], faults: { rate: 0.5, kinds: ['500', '503'], seed: 42 } };
  const run = async () => {
    const out = [];
    for (let i = 0; i < 20; i++) out.push((await chat(convo('r-1', 'random'))).status);
    return out.join(',');
  };
  await script(seeded);
  const a = await run();
  assert.ok(/200/.test(a) && /50[03]/.test(a), `a mix: ${a}`);
  await script(seeded); // a new script re-seeds
  assert.equal(await run(), a);
  assert.equal((await call('POST', '/_stub/reset')).status, 200); // so does reset
  assert.equal(await run(), a);
  await script({ ...seeded, faults: { ...seeded.faults, seed: 7 } });
  assert.notEqual(await run(), a, 'another seed, another sequence');
});

test('reset clears requests, stats, consumed faults and the FIFO', async () => {
  assert.equal((await chat(convo('fl-9', 'Flaky'))).status, 500);
  assert.equal((await chat(convo('fl-9', 'Flaky'))).status, 429);
  assert.equal((await script({ replies: ['queued'] })).status, 200);
  assert.equal((await call('POST', '/_stub/reset')).status, 200);
  assert.deepEqual((await call('GET', '/_stub/requests')).json, []);
  assert.deepEqual((await call('GET', '/_stub/stats')).json, { calls: 0, faults_served: 0, by_bead: {} });
  assert.equal((await chat(convo('fl-9', 'Flaky'))).status, 500, 'the fault is served again, the FIFO is gone');
});

test('the FIFO comes first and keeps its legacy errors; bad scripts are refused', async () => {
  await script({ replies: ['from fifo', { status: 503 }] });
  assert.equal(content(await chat(convo('seq-1', 'x'))), 'from fifo');
  assert.equal((await chat(convo('seq-1', 'x'))).status, 503);
  assert.equal(content(await chat(convo('seq-1', 'x'))), 'first');
  assert.equal((await script({ beads: [{ match: '(', replies: ['x'] }] })).status, 400);
  assert.equal((await script({ default: [{ fault: 'gremlins' }] })).status, 400);
  assert.equal(content(await chat(convo('seq-1', 'x'))), 'first', 'a refused script changes nothing');
});

test('SIGHUP re-reads the script file', async () => {
  writeFileSync(file, JSON.stringify({ default: ['reloaded'] }));
  stub.kill('SIGHUP');
  let c;
  for (let i = 0; i < 50 && c !== 'reloaded'; i++) {
    c = content(await chat(convo('z-1', 'reload')));
    if (c !== 'reloaded') await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(c, 'reloaded');
  writeFileSync(file, JSON.stringify(SCRIPT));
});
