// The bead drawer's Pair panel: talk with an agent about the bead (POST /api/v1/pair).  The
// reply is shown as it is written — fetch() reads the Server-Sent Events of the POST's answer
// from its ReadableStream — then the actions it asked for and their results.  A person's
// session lives on the server (7 days): opening the drawer shows it again.  While a run of the
// bead is live, a message can go to the running agent instead ("Send to running agent":
// POST /conversations/{bead}/inject); the agent reads it before its next LLM call, and the
// delivery shows up live (conversation.delivered).
import { $, h, clear, formError, setBusy, showMessage } from './dom.js';
import { get, post, del, postStream, readEvents, enc, ApiError } from './api.js';
import { on } from './store.js';
import { beadRuns } from './runs.js';
import { me } from './account.js';

const LIVE = new Set(['queued', 'running']);
const RESULTS = 'Results of the actions you asked for:';
let bead = null;
let seq = 0;
let session = null;
const sent = new Map(); // injection id -> its list item

const liveRun = () => beadRuns().find((r) => LIVE.has(r.state)) || null;

function empty(text) {
  return h('li', { class: 'empty muted' }, text);
}

function add(node) {
  const log = $('#dr-pair-log');
  log.querySelector(':scope > .empty')?.remove();
  log.append(node);
  return node;
}

function message(role, who, text) {
  return h('li', { class: `msg role-${role}` },
    h('div', { class: 'msg-head' }, h('span', { class: 'role' }, who)),
    h('pre', { class: 'msg-body' }, text));
}

// {actions, results}: one line per action, its outcome, and what it said.
function actionsItem(data) {
  const results = data.results || [];
  return h('li', { class: 'pair-actions' },
    h('div', { class: 'msg-head' }, h('span', { class: 'role' }, `Actions (${results.length})`)),
    h('ol', { class: 'actlog' }, results.map((r) => h('li', { class: `act s-${r.status}` },
      h('span', { class: 'act-type' }, r.action_type), r.path ? ` ${r.path} ` : ' ',
      h('span', { class: `pill st-${r.status === 'executed' ? 'succeeded' : 'failed'}` }, r.status),
      r.message ? h('pre', { class: 'msg-body' }, r.message) : null))));
}

function injectedItem(inj, run) {
  const status = h('span', { class: 'muted small pair-status' }, 'waiting for its next iteration');
  const li = h('li', { class: 'msg role-inject', dataset: { injection: String(inj.id) } },
    h('div', { class: 'msg-head' }, h('span', { class: 'role' }, `To the running agent${run ? ` (run #${run.id})` : ''}`), ' ', status),
    h('pre', { class: 'msg-body' }, inj.content));
  sent.set(inj.id, status);
  return li;
}

function showSession(data) {
  $('#dr-pair-session').textContent = data ? `with ${data.agent_name || data.agent_id}` : '';
  $('#dr-pair-clear').hidden = !session;
}

// This person's session on the bead, if there is one, as it stands.
async function load(id, my) {
  try {
    const list = await get(`/conversations?bead_id=${enc(id)}&kind=pair`);
    if (my !== seq) return;
    const mine = list.find((c) => me.user && c.user === me.user.username);
    if (!mine) { clear($('#dr-pair-log'), empty('Ask the agent about this bead; it can read and change the code with you.')); return; }
    const conv = await get(`/conversations/${enc(mine.id)}?limit=200`);
    if (my !== seq) return;
    session = mine.id;
    showSession(mine);
    clear($('#dr-pair-log'));
    for (const m of conv.messages) {
      if (m.role === 'system') continue;
      if (m.role === 'user' && m.content.startsWith(RESULTS)) add(message('results', 'Action results', m.content.slice(RESULTS.length).trim()));
      else add(message(m.role, m.role === 'user' ? 'You' : mine.agent_name || 'Agent', m.content));
    }
    if (!$('#dr-pair-log').children.length) $('#dr-pair-log').append(empty('No messages in this session yet.'));
  } catch (e) {
    if (my === seq) clear($('#dr-pair-log'), h('li', { class: 'empty form-error' }, `Could not load the pair session: ${e.message}`));
  }
}

// One turn: the person's message, then the agent's reply as it streams in.
async function turn(id, text, my) {
  const res = await postStream('/pair', { bead_id: id, message: text });
  add(message('user', 'You', text));
  const body = h('pre', { class: 'msg-body' });
  const who = h('span', { class: 'role' }, 'Agent');
  const note = h('span', { class: 'muted small pair-status' }, 'writing…');
  const reply = add(h('li', { class: 'msg role-assistant streaming', 'aria-busy': 'true' },
    h('div', { class: 'msg-head' }, who, ' ', note), body));
  await readEvents(res, (name, data) => {
    if (my !== seq) return;
    if (name === 'connected') {
      session = data.session_id;
      who.textContent = data.agent_name;
      showSession(data);
    } else if (name === 'chunk') {
      body.append(data.content);
    } else if (name === 'actions') {
      add(actionsItem(data));
    } else if (name === 'error') {
      reply.classList.add('failed');
      note.textContent = 'failed';
      add(h('li', { class: 'empty form-error' }, `The model could not answer: ${data.error}`));
    } else if (name === 'done') {
      note.textContent = `${data.tokens_used} tokens`;
    }
  });
  reply.classList.remove('streaming');
  reply.removeAttribute('aria-busy');
  if (note.textContent === 'writing…') note.textContent = '';
}

async function inject(id, text) {
  const run = liveRun();
  const inj = await post(`/conversations/${enc(id)}/inject`, { content: text });
  add(injectedItem(inj, run));
}

async function send(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const text = $('#dr-pair-msg').value;
  const toRun = $('#dr-pair-inject').checked && liveRun();
  const my = seq;
  formError(form, null);
  setBusy(form, true);
  try {
    if (toRun) await inject(bead, text);
    else await turn(bead, text, my);
    if (my === seq) $('#dr-pair-msg').value = '';
  } catch (err) {
    if (my === seq) formError(form, err instanceof ApiError ? err.message : String(err));
  } finally {
    setBusy(form, false);
  }
}

// Forgets this person's session: the next message starts a new one.
async function startOver() {
  if (!session) return;
  try {
    await del(`/conversations/${enc(session)}`);
    session = null;
    showSession(null);
    clear($('#dr-pair-log'), empty('A new session starts with your next message.'));
  } catch (e) {
    showMessage($('#dr-pair-form .form-error'), e.message);
  }
}

// "Send to running agent" is offered while a run of the bead is live.
function offerInject() {
  const run = bead ? liveRun() : null;
  $('#dr-pair-inject-field').hidden = !run;
  if (run) $('#dr-pair-inject-label').textContent = `Send to the running agent (run #${run.id}) instead`;
  else $('#dr-pair-inject').checked = false;
}

function show(id) {
  seq += 1;
  bead = id;
  session = null;
  sent.clear();
  showSession(null);
  formError($('#dr-pair-form'), null);
  $('#dr-pair-msg').value = '';
  offerInject();
  if (!id) return;
  clear($('#dr-pair-log'), empty('Loading…'));
  load(id, seq);
}

function onEvent(ev) {
  if (!bead || ev.bead_id !== bead || ev.type !== 'conversation.delivered') return;
  const status = sent.get(ev.data && ev.data.injection_id);
  if (status) status.textContent = `read by the agent at iteration ${ev.data.iteration ?? '?'}`;
}

export function initPair() {
  on('drawer-bead', show);
  on('run-chosen', offerInject);
  on('run-activity', offerInject);
  on('event', onEvent);
  $('#dr-pair-form').addEventListener('submit', send);
  $('#dr-pair-clear').addEventListener('click', startOver);
}
