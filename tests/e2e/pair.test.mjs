// Pair programming, conversations, injected messages, the chat proxy, project memory and
// lessons, end to end: the real API streams through nginx from the scripted stub, real
// executors run the action loop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { BASE, api, assertError, authHeader, newBead, newProject, newUser, sql, sleep } from './lib.mjs';

let stub;
let stubUrl;
let provider;

const actions = (...list) => ({ actions: list, notes: 'scripted' });
const stubPost = async (path, body) => {
  const r = await fetch(`${stubUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
};
const chatCalls = async () => (await (await fetch(`${stubUrl}/_stub/requests`)).json())
  .filter((q) => q.path === '/v1/chat/completions');

// POSTs and reads the whole streamed answer: {status, headers, text, events [{event, data, at}]}
// with each event's arrival time (ms since the request went out).
async function stream(path, body, headers = {}) {
  const t0 = Date.now();
  const res = await fetch(BASE + path, {
    method: 'POST',
    headers: { ...authHeader(), 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const events = [];
  let text = '';
  let pending = '';
  const decoder = new TextDecoder();
  for await (const piece of res.body) {
    const s = decoder.decode(piece, { stream: true });
    text += s;
    pending += s;
    let cut;
    while ((cut = pending.indexOf('\n\n')) >= 0) {
      const block = pending.slice(0, cut);
      pending = pending.slice(cut + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) events.push({ event, data: data.join('\n'), at: Date.now() - t0 });
    }
  }
  return { status: res.status, headers: res.headers, text, events };
}
const json = (e) => JSON.parse(e.data);
const named = (r, name) => r.events.filter((e) => e.event === name).map(json);

async function waitBead(id, pred, what, ms = 30000) {
  let b;
  for (const t0 = Date.now(); Date.now() - t0 < ms;) {
    b = (await api('GET', `/api/v1/beads/${id}`)).body;
    if (pred(b)) return b;
    await sleep(150);
  }
  assert.fail(`bead ${id} never ${what}: ${JSON.stringify(b)}`);
}

// A project whose only working agent is an engineering manager on the stub.
async function project(opts = {}) {
  const p = await newProject(opts);
  for (const a of (await api('GET', `/api/v1/agents?project_id=${p}`)).body) {
    await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' });
  }
  const r = await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: p, provider_id: provider });
  assert.equal(r.status, 201, r.text);
  return { id: p, agent: r.body };
}

before(async () => {
  stub = spawn('node', ['tests/fixtures/llm-stub.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stubUrl = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('stub exited')));
  });
  sql(`UPDATE providers SET status = 'inactive'`);
  sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE state IN ('queued', 'running')`);
  provider = `pairstub${Date.now().toString(36)}`;
  assert.equal((await api('POST', '/api/v1/providers', { id: provider, endpoint: stubUrl, model: 'stub-model' })).status, 201);
  for (let i = 0; i < 100 && (await api('GET', `/api/v1/providers/${provider}`)).body.status !== 'healthy'; i++) await sleep(100);
});

after(() => stub?.kill('SIGTERM'));

test('pair streams the reply as it comes, runs its actions, and keeps the session', async () => {
  const { id: p, agent } = await project();
  const b = await newBead(p, { title: 'Greeting file', description: 'We need hello.txt.' });
  const reply = 'Sure — I will write hello.txt, read it back and remember how we test.\n```json\n' + JSON.stringify({
    actions: [
      { type: 'write_file', path: 'hello.txt', content: 'hello pair\n' },
      { type: 'read_file', path: 'hello.txt' },
      { type: 'remember', category: 'convention', key: 'greeting', value: 'hello.txt says hello', confidence: 0.8 },
      { type: 'create_bead', bead: { title: 'not here' } },
      { type: 'read_file', path: '../../../etc/passwd' },
    ],
  }) + '\n```';
  await stubPost('/_stub/reset', {});
  await stubPost('/_stub/script', { replies: [{ content: reply, delay_ms: 1500 }] }); // the stack's LLM timeout is 3 s
  const r = await stream('/api/v1/pair', { bead_id: b.id, message: 'Please add hello.txt' });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  assert.deepEqual([...new Set(r.events.map((e) => e.event))], ['connected', 'chunk', 'actions', 'done']);
  const [connected] = named(r, 'connected');
  assert.match(connected.session_id, /^pair_[0-9a-f]{32}$/);
  assert.equal(connected.agent_id, agent.id);
  assert.equal(connected.agent_name, agent.name);
  assert.equal(connected.message_count, 2); // the system prompt and the person's message
  // streamed, not buffered: connected went out before the model answered (it waited 1.5 s)
  const chunks = r.events.filter((e) => e.event === 'chunk');
  assert.ok(chunks.length > 5, `${chunks.length} chunks`);
  assert.ok(chunks[0].at - r.events[0].at >= 1000, `connected at ${r.events[0].at} ms, first chunk at ${chunks[0].at} ms`);
  assert.equal(chunks.map((e) => json(e).content).join(''), reply);
  // the actions ran in the bead's worktree; what pair mode may not do is refused
  const [acts] = named(r, 'actions');
  assert.equal(acts.actions.length, 5);
  assert.deepEqual(acts.results.map((x) => [x.action_type, x.status]), [
    ['write_file', 'executed'], ['read_file', 'executed'], ['remember', 'executed'],
    ['create_bead', 'error'], ['read_file', 'error']]);
  assert.match(acts.results[1].message, /hello pair/);
  assert.match(acts.results[3].message, /not available in pair mode/);
  const file = `${process.env.LOOM_VAR}/projects/${p}/worktrees/${b.id}/hello.txt`;
  assert.ok(existsSync(file), file);
  assert.equal(readFileSync(file, 'utf8'), 'hello pair\n');
  const [done] = named(r, 'done');
  assert.equal(done.session_id, connected.session_id);
  assert.ok(done.tokens_used > 0, JSON.stringify(done));
  assert.equal(done.message_count, 4); // + the reply and the results
  const mem = (await api('GET', `/api/v1/projects/${p}/memory`)).body;
  assert.deepEqual(mem.map((m) => [m.category, m.key, m.value, m.confidence, m.source_bead]),
    [['convention', 'greeting', 'hello.txt says hello', 0.8, b.id]]);
  // what the model was sent: the pair system prompt and the person's words, streamed
  let calls = await chatCalls();
  let last = calls[calls.length - 1].body;
  assert.equal(last.stream, true);
  assert.equal(last.messages[0].role, 'system');
  assert.match(last.messages[0].content, /Pair-programming mode/);
  assert.match(last.messages[0].content, new RegExp(`pairing with admin on bead ${b.id}: Greeting file`));
  assert.deepEqual(last.messages.slice(1), [{ role: 'user', content: 'Please add hello.txt' }]);
  // accounted as a pair call of the bead, the agent and the provider
  assert.equal(sql(`SELECT string_agg(concat_ws('/', source, project_id, agent_id, provider_id, status, streamed), ',') FROM llm_calls WHERE bead_id='${b.id}'`),
    `pair/${p}/${agent.id}/${provider}/ok/t`);

  // the next turn continues the session: the model sees its reply and the results
  await stubPost('/_stub/script', { replies: ['Done: hello.txt is there.'] });
  const r2 = await stream('/api/v1/pair', { bead_id: b.id, message: 'Thanks!' });
  const [c2] = named(r2, 'connected');
  assert.equal(c2.session_id, connected.session_id);
  assert.equal(c2.message_count, 5);
  assert.deepEqual(named(r2, 'actions'), []); // a plain answer has none
  assert.equal(named(r2, 'done')[0].message_count, 6);
  calls = await chatCalls();
  last = calls[calls.length - 1].body;
  assert.deepEqual(last.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'user']);
  assert.equal(last.messages[2].content, reply);
  assert.match(last.messages[3].content, /^Results of the actions you asked for:\n1\. write_file hello.txt: executed/);
  assert.equal(last.messages[4].content, 'Thanks!');

  // the conversation: listed, read, reset (the system prompt stays), deleted
  const list = (await api('GET', `/api/v1/conversations?bead_id=${b.id}&kind=pair`)).body;
  assert.equal(list.length, 1);
  assert.equal(list[0].id, connected.session_id);
  assert.equal(list[0].kind, 'pair');
  assert.equal(list[0].message_count, 6);
  assert.equal(list[0].user, 'admin');
  assert.ok(Date.parse(list[0].expires_at) - Date.now() > 6.9 * 86400e3, 'kept for 7 days');
  const conv = (await api('GET', `/api/v1/conversations/${connected.session_id}`)).body;
  assert.deepEqual(conv.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'user', 'assistant']);
  const reset = await api('POST', `/api/v1/conversations/${connected.session_id}/reset`);
  assert.equal(reset.status, 200, reset.text);
  assert.equal(reset.body.message_count, 1);
  assert.deepEqual(reset.body.messages.map((m) => m.role), ['system']);
  assert.equal((await api('DELETE', `/api/v1/conversations/${connected.session_id}`)).status, 204);
  assertError(await api('GET', `/api/v1/conversations/${connected.session_id}`), 404, 'not found');
  assert.equal(sql(`SELECT count(*) FROM pair_messages WHERE session_id='${connected.session_id}'`), '0');
});

test('pair: bad input is a clear 4xx and changes nothing; other people see nothing', async () => {
  const { id: p } = await project();
  const b = await newBead(p, { title: 'Pair refusals' });
  const bare = await newProject(); // its agents lose their provider below
  const bb = await newBead(bare, { title: 'No provider' });
  sql(`UPDATE agents SET provider_id = NULL WHERE project_id = '${bare}'`);
  const count = () => sql(`SELECT (SELECT count(*) FROM pair_sessions) || '/' || (SELECT count(*) FROM pair_messages) || '/' || (SELECT count(*) FROM llm_calls WHERE source = 'pair')`);
  const before = count();
  const cases = [
    [{}, 400, 'bead_id'],
    [{ bead_id: b.id }, 400, 'message'],
    [{ message: 'hi' }, 400, 'bead_id'],
    [{ bead_id: 'nope', message: 'hi' }, 400, 'not a bead id'],
    [{ bead_id: b.id, message: '' }, 400, 'message'],
    [{ bead_id: b.id, message: 7 }, 400, 'message'],
    [{ bead_id: b.id, message: 'hi', colour: 'red' }, 400, "unknown field 'colour'"],
    [{ bead_id: b.id, message: 'hi', agent_id: 'agent-999999' }, 404, 'agent agent-999999 not found'],
    [{ bead_id: `${p}-9999`, message: 'hi' }, 404, 'not found'],
    [{ bead_id: bb.id, message: 'hi' }, 409, 'has a provider'],
    ['{"bead_id": ', 400, 'JSON'],
  ];
  for (const [body, status, fragment] of cases) {
    assertError(await api('POST', '/api/v1/pair', body), status, fragment);
  }
  assertError(await api('GET', '/api/v1/pair'), 405);
  // another user's bead does not exist for them; a viewer may not pair at all
  const stranger = await newUser('user');
  assertError(await api('POST', '/api/v1/pair', { bead_id: b.id, message: 'hi' }, authHeader(stranger.token)), 404, 'not found');
  const viewer = await newUser('viewer');
  assertError(await api('POST', '/api/v1/pair', { bead_id: b.id, message: 'hi' }, authHeader(viewer.token)), 403, 'runs:write');
  assert.equal(count(), before);
  // a provider that fails the call: an error event ends the stream, and the call is accounted
  await stubPost('/_stub/script', { replies: [{ fault: '401' }] });
  const r = await stream('/api/v1/pair', { bead_id: b.id, message: 'hello?' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.events.map((e) => e.event), ['connected', 'error']);
  assert.equal(named(r, 'error')[0].error_class, 'auth');
  assert.equal(sql(`SELECT status || '/' || error_class FROM llm_calls WHERE bead_id = '${b.id}' AND source = 'pair'`), 'error/auth');
});

test('inject: a person\'s message reaches the running loop at its next iteration', async () => {
  const { id: p } = await project({ dispatch: true });
  await stubPost('/_stub/reset', {});
  await stubPost('/_stub/script', { beads: [{ match: '^Listen to me$', replies: [
    { delay_ms: 2000, actions: [{ type: 'read_tree', path: '.' }] }, // the stack's LLM timeout is 3 s
    { delay_ms: 1500, actions: [{ type: 'git_status' }] },
    actions({ type: 'done', reason: 'heard' }),
  ] }] });
  const b = await newBead(p, { title: 'Listen to me' });
  let run;
  for (let i = 0; i < 200 && !run; i++) {
    run = sql(`SELECT id FROM runs WHERE bead_id = '${b.id}' AND state = 'running'`);
    if (!run) await sleep(50);
  }
  assert.ok(run, 'the run started');
  const inj = await api('POST', `/api/v1/conversations/${b.id}/inject`, { content: 'Use the blue one, please.' });
  assert.equal(inj.status, 202, inj.text);
  assert.equal(inj.body.status, 'pending');
  assert.equal(inj.body.author, 'admin');
  assert.equal(String(inj.body.run_id), run);
  // Loom's field name works too
  assert.equal((await api('POST', `/api/v1/conversations/${b.id}/inject`, { message: 'And keep it short.' })).status, 202);
  const closed = await waitBead(b.id, (x) => x.status === 'closed', 'closed');
  assert.equal(closed.context.terminal_reason, 'completed');
  // the model was told, in a later call of the same run
  const calls = (await chatCalls()).filter((q) => q.body.messages.some((m) => m.content.includes(`Work on bead ${b.id}:`)));
  const told = calls.findIndex((q) => q.body.messages.some((m) => m.role === 'user' && m.content === 'A person (admin) says: Use the blue one, please.'));
  assert.ok(told >= 0, 'an LLM request carried the injected message');
  assert.ok(calls[told].body.messages.some((m) => m.content === 'A person (admin) says: And keep it short.'));
  // ... and the conversation keeps it; the injections are delivered
  const conv = (await api('GET', `/api/v1/conversations/${b.id}`)).body;
  assert.equal(conv.kind, 'bead');
  assert.equal(conv.live_run_id, null);
  assert.ok(conv.messages.some((m) => m.role === 'user' && m.content === 'A person (admin) says: Use the blue one, please.' && String(m.run_id) === run));
  assert.deepEqual(conv.injections.map((i) => [i.content, i.status]), [
    ['Use the blue one, please.', 'delivered'], ['And keep it short.', 'delivered']]);
  assert.equal(sql(`SELECT count(*) FROM events WHERE bead_id = '${b.id}' AND type = 'conversation.delivered'`), '2');

  // no live run: nothing would read it; bad bodies and ids are refused; nothing is stored
  const n = () => sql(`SELECT count(*) FROM injections WHERE bead_id = '${b.id}'`);
  const before = n();
  assertError(await api('POST', `/api/v1/conversations/${b.id}/inject`, { content: 'anyone?' }), 409, 'no run of bead');
  assertError(await api('POST', `/api/v1/conversations/${b.id}/inject`, {}), 400, 'content');
  assertError(await api('POST', `/api/v1/conversations/${b.id}/inject`, { content: 'a', message: 'b' }), 400, 'not both');
  assertError(await api('POST', `/api/v1/conversations/${b.id}/inject`, { content: '' }), 400, 'content');
  assertError(await api('POST', `/api/v1/conversations/pair_${'0'.repeat(32)}/inject`, { content: 'x' }), 400, 'pair session');
  assertError(await api('POST', '/api/v1/conversations/not_an_id/inject', { content: 'x' }), 400, 'not a conversation id');
  assertError(await api('POST', `/api/v1/conversations/${p}-99999/inject`, { content: 'x' }), 404, 'not found');
  const stranger = await newUser('user');
  assertError(await api('POST', `/api/v1/conversations/${b.id}/inject`, { content: 'x' }, authHeader(stranger.token)), 404, 'not found');
  assert.equal(n(), before);
});

test('conversations: the action loop\'s one is listed, read, reset and deleted by bead id', async () => {
  const { id: p } = await project({ dispatch: true });
  await stubPost('/_stub/script', { beads: [{ match: '^Chatty$', replies: [actions({ type: 'read_tree' }), actions({ type: 'done' })] }] });
  const b = await newBead(p, { title: 'Chatty' });
  await waitBead(b.id, (x) => x.status === 'closed', 'closed');
  const list = (await api('GET', `/api/v1/conversations?project_id=${p}`)).body;
  assert.equal(list.length, 1);
  assert.equal(list[0].id, b.id);
  assert.equal(list[0].kind, 'bead');
  assert.equal(list[0].title, 'Chatty');
  const msgs = Number(sql(`SELECT count(*) FROM messages WHERE bead_id = '${b.id}'`));
  assert.ok(msgs >= 4);
  assert.equal(list[0].message_count, msgs);
  assert.deepEqual((await api('GET', `/api/v1/conversations?project_id=${p}&kind=pair`)).body, []);
  const conv = (await api('GET', `/api/v1/conversations/${b.id}?limit=2`)).body;
  assert.equal(conv.message_count, msgs);
  assert.equal(conv.messages.length, 2, 'the newest two');
  assert.equal(conv.messages[1].seq, msgs);
  // a stranger sees none of it
  const stranger = await newUser('user');
  assert.deepEqual((await api('GET', `/api/v1/conversations?project_id=${p}`, undefined, authHeader(stranger.token))).body, []);
  assertError(await api('GET', `/api/v1/conversations/${b.id}`, undefined, authHeader(stranger.token)), 404, 'not found');
  assertError(await api('POST', `/api/v1/conversations/${b.id}/reset`, undefined, authHeader(stranger.token)), 404, 'not found');
  assertError(await api('GET', '/api/v1/conversations?kind=chat'), 400, 'kind');
  assertError(await api('GET', '/api/v1/conversations?bead_id=x'), 400, 'bead_id');
  assertError(await api('GET', '/api/v1/conversations?project=x'), 400, 'project');
  assertError(await api('GET', '/api/v1/conversations/a%20b'), 400, 'not a conversation id');
  assert.equal(sql(`SELECT count(*) FROM messages WHERE bead_id = '${b.id}'`), String(msgs));
  const reset = await api('POST', `/api/v1/conversations/${b.id}/reset`);
  assert.equal(reset.status, 200, reset.text);
  assert.equal(reset.body.message_count, 0);
  assert.equal((await api('DELETE', `/api/v1/conversations/${b.id}`)).status, 204);
  assert.equal((await api('GET', `/api/v1/conversations/${b.id}`)).body.message_count, 0);
  assert.equal(sql(`SELECT count(*) FROM events WHERE bead_id = '${b.id}' AND type IN ('conversation.reset', 'conversation.deleted')`), '2');
});

test('chat completions proxy: plain, OpenAI stream and Loom stream, all accounted', async () => {
  const { id: p } = await project();
  const calls = () => Number(sql(`SELECT count(*) FROM llm_calls WHERE source = 'proxy' AND project_id = '${p}'`));
  await stubPost('/_stub/reset', {});
  await stubPost('/_stub/script', { replies: ['Hello from the proxy.'] });
  const plain = await api('POST', '/api/v1/chat/completions', { project_id: p, messages: [{ role: 'user', content: 'hi' }], temperature: 0.3, max_tokens: 20 });
  assert.equal(plain.status, 200, plain.text);
  assert.equal(plain.body.object, 'chat.completion');
  assert.equal(plain.body.choices[0].message.content, 'Hello from the proxy.');
  assert.ok(plain.body.usage.total_tokens > 0);
  let sent = (await chatCalls()).pop().body;
  assert.deepEqual(sent, { messages: [{ role: 'user', content: 'hi' }], temperature: 0.3, max_tokens: 20, model: 'stub-model' },
    'passed through with the model filled in and Loom\'s fields taken out');
  assert.equal(sql(`SELECT concat_ws('/', source, provider_id, requested_model, status, streamed, prompt_tokens > 0) FROM llm_calls WHERE source = 'proxy' AND project_id = '${p}'`),
    `proxy/${provider}/stub-model/ok/f/t`);

  // OpenAI's stream: data lines, no usage chunk unless asked, [DONE]
  await stubPost('/_stub/script', { replies: ['A streamed answer, in pieces.'] });
  const os = await stream(`/api/v1/chat/completions?provider_id=${provider}`, { messages: [{ role: 'user', content: 'stream it' }], stream: true, model: 'other-model' });
  assert.equal(os.status, 200, os.text);
  assert.match(os.headers.get('content-type'), /^text\/event-stream/);
  const datas = os.events.map((e) => e.data);
  assert.equal(datas.pop(), '[DONE]');
  const chunks = datas.map((d) => JSON.parse(d));
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.choices.length === 1));
  assert.equal(chunks.map((c) => c.choices[0].delta.content || '').join(''), 'A streamed answer, in pieces.');
  sent = (await chatCalls()).pop().body;
  assert.equal(sent.model, 'other-model');
  assert.equal(sent.stream, true);
  assert.deepEqual(sent.stream_options, { include_usage: true });
  assert.equal(sql(`SELECT concat_ws('/', project_id IS NULL, requested_model, streamed) FROM llm_calls WHERE source = 'proxy' ORDER BY id DESC LIMIT 1`), 't/other-model/t');

  // Loom's stream: connected, chunk (OpenAI chunks), done with the tokens
  await stubPost('/_stub/script', { replies: ['Loom style.'] });
  const ls = await stream('/api/v1/chat/completions/stream', { project_id: p, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'go' }] });
  assert.equal(ls.status, 200, ls.text);
  assert.deepEqual([...new Set(ls.events.map((e) => e.event))], ['connected', 'chunk', 'done']);
  assert.deepEqual(named(ls, 'connected')[0], { provider_id: provider, model: 'stub-model' });
  assert.equal(named(ls, 'chunk').map((c) => c.choices[0].delta.content || '').join(''), 'Loom style.');
  const [done] = named(ls, 'done');
  assert.ok(done.tokens_used > 0 && done.tokens_used === done.prompt_tokens + done.completion_tokens, JSON.stringify(done));
  assert.equal(calls(), 2);

  // the provider's refusals: our error shape, still accounted
  await stubPost('/_stub/script', { replies: [{ fault: '500' }] });
  assertError(await api('POST', '/api/v1/chat/completions', { project_id: p, messages: [{ role: 'user', content: 'x' }] }), 502, `provider ${provider} answered HTTP 500`);
  await stubPost('/_stub/script', { replies: [{ fault: '400_context' }] });
  assertError(await api('POST', `/api/v1/chat/completions?project_id=${p}`, { messages: [{ role: 'user', content: 'x' }], stream: true }), 400, 'maximum context length');
  assert.equal(calls(), 4);
  assert.equal(sql(`SELECT count(*) FROM llm_calls WHERE source = 'proxy' AND project_id = '${p}' AND status = 'error'`), '2');

  // bad input: 4xx, nothing sent, nothing recorded
  const requests = (await chatCalls()).length;
  const msgs = [{ role: 'user', content: 'x' }];
  const cases = [
    ['/api/v1/chat/completions', { project_id: p }, 400, 'messages: required'],
    ['/api/v1/chat/completions', { project_id: p, messages: [] }, 400, 'messages: must hold 1'],
    ['/api/v1/chat/completions', { project_id: p, messages: 'hi' }, 400, 'messages: must be an array'],
    ['/api/v1/chat/completions', { project_id: p, messages: [{ content: 'x' }] }, 400, 'messages[0].role'],
    ['/api/v1/chat/completions', { project_id: p, messages: [{ role: 'wizard', content: 'x' }] }, 400, "'wizard' is not one of"],
    ['/api/v1/chat/completions', { messages: msgs }, 400, 'project_id or provider_id is required'],
    ['/api/v1/chat/completions', { project_id: 'Bad Id', messages: msgs }, 400, 'project_id'],
    ['/api/v1/chat/completions', { project_id: p, messages: msgs, model: 5 }, 400, 'model'],
    ['/api/v1/chat/completions', { project_id: p, messages: msgs, stream: 'yes' }, 400, 'stream'],
    [`/api/v1/chat/completions?project_id=${p}`, { project_id: 'other', messages: msgs }, 400, 'the query says'],
    ['/api/v1/chat/completions?colour=red', { project_id: p, messages: msgs }, 400, 'colour'],
    ['/api/v1/chat/completions', { provider_id: 'no-such-provider', messages: msgs }, 404, 'provider no-such-provider not found'],
    ['/api/v1/chat/completions', { project_id: 'no-such-project', messages: msgs }, 404, 'project no-such-project not found'],
    ['/api/v1/chat/completions/stream', { messages: msgs }, 400, 'project_id or provider_id'],
    ['/api/v1/chat/completions', '[1, 2]', 400, 'object'],
  ];
  for (const [path, body, status, fragment] of cases) assertError(await api('POST', path, body), status, fragment);
  const stranger = await newUser('user');
  assertError(await api('POST', '/api/v1/chat/completions', { project_id: p, messages: msgs }, authHeader(stranger.token)), 404, 'not found');
  const viewer = await newUser('viewer');
  assertError(await api('POST', '/api/v1/chat/completions', { project_id: p, messages: msgs }, authHeader(viewer.token)), 403, 'chat:write');
  assert.equal((await chatCalls()).length, requests);
  assert.equal(calls(), 4);
});

test('project memory: set, list, filter, delete; bad input refused; in the prompt with the lessons', async () => {
  const { id: p } = await project({ dispatch: true });
  const put = (cat, key, body, h) => api('PUT', `/api/v1/projects/${p}/memory/${cat}/${encodeURIComponent(key)}`, body, h);
  let r = await put('convention', 'indent style', { value: 'tabs, 8 wide', confidence: 0.9 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.body.category, r.body.key, r.body.value, r.body.confidence, r.body.updated_by], ['convention', 'indent style', 'tabs, 8 wide', 0.9, 'admin']);
  assert.equal((await put('build_system', 'test', { value: 'make test' })).body.confidence, 0.5);
  r = await put('convention', 'indent style', { value: 'tabs', confidence: 1 });
  assert.equal(r.body.value, 'tabs');
  assert.deepEqual((await api('GET', `/api/v1/projects/${p}/memory`)).body.map((m) => `${m.category}/${m.key}=${m.value}`),
    ['build_system/test=make test', 'convention/indent style=tabs']);
  assert.deepEqual((await api('GET', `/api/v1/projects/${p}/memory?category=build_system`)).body.map((m) => m.key), ['test']);
  assert.deepEqual((await api('GET', `/api/v1/projects/${p}/memory/convention`)).body.map((m) => m.key), ['indent style']);
  assert.equal(sql(`SELECT count(*) FROM events WHERE project_id = '${p}' AND type = 'memory.updated'`), '3');
  const snapshot = () => sql(`SELECT coalesce(string_agg(concat_ws('/', category, key, value, confidence), ',' ORDER BY key), '') FROM project_memory WHERE project_id = '${p}'`);
  const before = snapshot();
  const stranger = await newUser('user');
  const viewer = await newUser('viewer');
  const cases = [
    [() => put('nope', 'k', { value: 'v' }), 400, "category: 'nope' is not one of"],
    [() => put('convention', 'k', {}), 400, 'value'],
    [() => put('convention', 'k', { value: '' }), 400, 'value'],
    [() => put('convention', 'k', { value: 'v', confidence: 2 }), 400, 'confidence: must be a number from 0 to 1'],
    [() => put('convention', 'k', { value: 'v', confidence: '0.5' }), 400, 'confidence'],
    [() => put('convention', 'k', { value: 'v', colour: 'red' }), 400, "unknown field 'colour'"],
    [() => put('convention', 'k', { value: 'v', source_bead: 'x' }), 400, 'source_bead'],
    [() => put('convention', 'x'.repeat(201), { value: 'v' }), 400, 'key'],
    [() => put('convention', 'k', '{"value":'), 400, 'JSON'],
    [() => api('PUT', `/api/v1/projects/no-such-project/memory/convention/k`, { value: 'v' }), 404, 'project no-such-project not found'],
    [() => api('GET', '/api/v1/projects/no-such-project/memory'), 404, 'not found'],
    [() => api('GET', `/api/v1/projects/${p}/memory?category=nope`), 400, 'category'],
    [() => api('GET', `/api/v1/projects/${p}/memory/nope`), 400, 'category'],
    [() => api('DELETE', `/api/v1/projects/${p}/memory/convention/never-set`), 404, 'has no memory'],
    [() => api('GET', `/api/v1/projects/${p}/memory`, undefined, authHeader(stranger.token)), 404, 'not found'],
    [() => put('convention', 'k', { value: 'v' }, authHeader(stranger.token)), 404, 'not found'],
    [() => put('convention', 'k', { value: 'v' }, authHeader(viewer.token)), 403, 'projects:write'],
  ];
  for (const [call, status, fragment] of cases) assertError(await call(), status, fragment);
  assert.equal(snapshot(), before);
  assert.equal((await api('DELETE', `/api/v1/projects/${p}/memory/build_system/test`)).status, 204);
  assert.equal((await api('GET', `/api/v1/projects/${p}/memory`)).body.length, 1);

  // an agent's run: a failing test run twice is one lesson seen twice; remember adds memory
  const failing = 'test:\n\t@echo "FAIL: test_greeting: expected hello, got 42" && exit 1\n';
  await stubPost('/_stub/script', { beads: [
    { match: '^Break the tests$', replies: [
      actions({ type: 'write_file', path: 'Makefile', content: failing }, { type: 'run_tests' }),
      actions({ type: 'run_tests' }, { type: 'remember', category: 'failure', key: 'greeting test', value: 'test_greeting fails until hello is returned' }),
      actions({ type: 'done', reason: 'left it failing' }),
    ] },
    { match: '^Learn from it$', replies: [actions({ type: 'done', reason: 'read the lessons' })] },
  ] });
  const b1 = await newBead(p, { title: 'Break the tests' });
  await waitBead(b1.id, (x) => x.status === 'closed', 'closed', 60000);
  const lessons = (await api('GET', `/api/v1/projects/${p}/lessons`)).body;
  assert.equal(lessons.length, 1, JSON.stringify(lessons));
  assert.equal(lessons[0].category, 'test_failure');
  assert.match(lessons[0].title, /^Tests failed: FAIL: test_greeting: expected hello, got 42/);
  assert.equal(lessons[0].occurrences, 2);
  assert.ok(lessons[0].relevance > 0.99, JSON.stringify(lessons[0]));
  assert.equal(lessons[0].source_bead_id, b1.id);
  const agentMem = (await api('GET', `/api/v1/projects/${p}/memory?category=failure`)).body;
  assert.deepEqual(agentMem.map((m) => [m.key, m.value, m.confidence, m.source_bead]),
    [['greeting test', 'test_greeting fails until hello is returned', 0.6, b1.id]]);
  // the next bead's system prompt carries both
  const b2 = await newBead(p, { title: 'Learn from it' });
  await waitBead(b2.id, (x) => x.status === 'closed', 'closed');
  const req = (await chatCalls()).find((q) => q.body.messages.some((m) => m.content.includes(`Work on bead ${b2.id}:`)));
  const system = req.body.messages[0].content;
  assert.match(system, /# Lessons from earlier work in this project\n- \[test_failure\] Tests failed: FAIL: test_greeting.* \(seen 2 times\)/);
  assert.match(system, /# Project memory[^\n]*\n- \[convention\] indent style: tabs\n/);
  assert.match(system, /- \[failure\] greeting test: test_greeting fails until hello is returned/);
  assert.ok(system.indexOf('[convention] indent style') < system.indexOf('[failure] greeting test'), 'surest first');
  assert.match(system, /"type": "remember"/);
});
