// The bead drawer's action log: what the agent asked for in the chosen run, iteration by
// iteration, with each outcome, and the programs those actions ran (command logs, exit code,
// output).  Actions are only appended, so a sign of life of the run fetches what follows.
import { $, h, clear, fmtMs } from './dom.js';
import { request, get, enc, refresher } from './api.js';
import { on } from './store.js';

const PAGE = 200;
const MAX_SHOWN = 1000;
let run = null;
let seq = 0;
let shown = 0;

function argsText(a) {
  const args = { ...(a.args || {}) };
  delete args.type;
  return Object.keys(args).length ? JSON.stringify(args, null, 2) : '';
}

function actionItem(a) {
  const args = argsText(a);
  return h('li', { class: `act s-${a.status}` },
    h('div', { class: 'act-head' },
      h('span', { class: 'act-n muted small' }, `${a.iteration}.${a.seq}`),
      h('code', { class: 'act-type' }, a.type),
      a.path ? h('span', { class: 'act-path' }, a.path) : null,
      h('span', { class: `pill st-${a.status === 'error' ? 'failed' : 'succeeded'}` }, a.status),
      h('span', { class: 'muted small' }, fmtMs(a.duration_ms))),
    a.message ? h('pre', { class: 'act-msg' }, a.message) : null,
    args ? h('details', { class: 'ev-raw' }, h('summary', {}, 'Arguments'), h('pre', {}, args)) : null);
}

function commandItem(c) {
  const ok = c.exit_code === 0 && !c.timed_out;
  return h('li', { class: 'cmd' },
    h('div', { class: 'act-head' },
      h('code', { class: 'cmd-line' }, `$ ${c.command}`),
      h('span', { class: `pill st-${ok ? 'succeeded' : 'failed'}` }, c.timed_out ? 'timed out' : `exit ${c.exit_code ?? '?'}`),
      h('span', { class: 'muted small' }, fmtMs(c.duration_ms))),
    c.output ? h('details', { class: 'ev-raw' }, h('summary', {}, 'Output'), h('pre', {}, c.output)) : null);
}

async function moreActions(my) {
  const list = $('#dr-actlog');
  for (;;) {
    const { data, headers } = await request('GET', `/runs/${enc(run)}/actions?limit=${PAGE}&offset=${shown}`);
    if (my !== seq) return;
    if (data.length) list.querySelector(':scope > .empty')?.remove();
    for (const a of data) list.append(actionItem(a));
    shown += data.length;
    if (!headers.get('X-Next-Offset') || shown >= MAX_SHOWN) break;
  }
  if (!shown) clear(list, h('li', { class: 'empty muted' }, 'No actions yet.'));
}

async function commands(my) {
  const list = await get(`/commands?run_id=${enc(run)}&limit=100`);
  if (my !== seq) return;
  clear($('#dr-cmds'), list.length ? list.slice().reverse().map(commandItem) : h('li', { class: 'empty muted' }, 'No commands run.'));
}

async function load() {
  const my = seq;
  if (run == null) return;
  try {
    await moreActions(my);
    await commands(my);
  } catch (e) {
    if (my === seq) clear($('#dr-actlog'), h('li', { class: 'empty form-error' }, `Could not load the action log: ${e.message}`));
  }
}

const refresh = refresher(load);

function show(id) {
  seq += 1;
  run = id;
  shown = 0;
  $('#dr-actlog-sub').textContent = id == null ? 'No run to show.' : `Run #${id}`;
  clear($('#dr-actlog'), id == null ? null : h('li', { class: 'empty muted' }, 'Loading actions…'));
  clear($('#dr-cmds'));
  if (id != null) refresh();
}

export function initActionLog() {
  on('drawer-bead', () => show(null));
  on('run-chosen', show);
  on('run-activity', (id) => { if (id === run) refresh(); });
}
