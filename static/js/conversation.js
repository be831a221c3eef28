// The bead drawer's conversation: the messages between the executor and the model across the
// bead's runs (or one run), oldest first, long ones folded.  Messages are only ever appended,
// so a sign of life of a run fetches what follows the ones shown.
import { $, h, clear, time, fillSelect } from './dom.js';
import { request, enc, refresher } from './api.js';
import { on } from './store.js';
import { beadRuns } from './runs.js';

const PAGE = 500;
const MAX_SHOWN = 2000;
const FOLD_CHARS = 1200;
const FOLD_LINES = 16;
let bead = null;
let seq = 0;
let shown = 0; // messages in the list (the next offset)

function foldable(text) {
  return text.length > FOLD_CHARS || text.split('\n').length > FOLD_LINES;
}

function toggle(btn, body, lines) {
  const open = btn.getAttribute('aria-expanded') !== 'true';
  btn.setAttribute('aria-expanded', String(open));
  body.classList.toggle('folded', !open);
  btn.textContent = open ? 'Show less' : `Show all ${lines} lines`;
}

function message(m) {
  const id = `msg-${m.id}`;
  const long = foldable(m.content);
  const lines = m.content.split('\n').length;
  const body = h('pre', { class: `msg-body${long ? ' folded' : ''}`, id }, m.content);
  const btn = long ? h('button', { type: 'button', class: 'link-btn', 'aria-expanded': 'false', 'aria-controls': id }, `Show all ${lines} lines`) : null;
  if (btn) btn.addEventListener('click', () => toggle(btn, body, lines));
  return h('li', { class: `msg role-${m.role}` },
    h('div', { class: 'msg-head' },
      h('span', { class: 'role' }, m.role), ' ',
      h('span', { class: 'muted small' }, `#${m.seq}${m.run_id ? ` · run #${m.run_id}` : ''} · `), time(m.created_at)),
    body, btn);
}

function path() {
  const run = $('#dr-conv-run').value;
  return `/beads/${enc(bead)}/conversation?limit=${PAGE}&offset=${shown}${run ? `&run_id=${enc(run)}` : ''}`;
}

// Fetches the messages after those shown, page by page.
async function more() {
  const my = seq;
  const list = $('#dr-conv');
  try {
    for (;;) {
      const { data, headers } = await request('GET', path());
      if (my !== seq) return;
      if (data.length) list.querySelector(':scope > .empty')?.remove();
      for (const m of data) list.append(message(m));
      shown += data.length;
      if (!headers.get('X-Next-Offset') || shown >= MAX_SHOWN) break;
    }
    if (!shown) clear(list, h('li', { class: 'empty muted' }, 'No messages yet.'));
  } catch (e) {
    if (my === seq) clear(list, h('li', { class: 'empty form-error' }, `Could not load the conversation: ${e.message}`));
  }
}

const refresh = refresher(more);

function reload() {
  seq += 1;
  shown = 0;
  clear($('#dr-conv'), h('li', { class: 'empty muted' }, 'Loading the conversation…'));
  if (bead) refresh();
}

function fillRuns() {
  fillSelect($('#dr-conv-run'), 1, beadRuns().map((r) => [String(r.id), `Run #${r.id} (${r.state})`]));
}

export function initConversation() {
  on('drawer-bead', (id) => {
    bead = id;
    fillSelect($('#dr-conv-run'), 1, []);
    $('#dr-conv-run').value = '';
    reload();
  });
  on('run-chosen', fillRuns);
  on('run-activity', (runId) => {
    fillRuns();
    const only = $('#dr-conv-run').value;
    if (bead && (!only || only === String(runId))) refresh();
  });
  $('#dr-conv-run').addEventListener('change', reload);
}
