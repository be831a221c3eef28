// Budgets: the project's all-time and monthly budget as bars on Home (spent, reserved by calls
// in flight, limit, percent; warning colour from 80 %, used up from 100 %) with a form to set
// or clear the limits, and the bead's budget in the drawer.  Reads and writes
// GET/PUT /projects/{id}/budget and /beads/{id}/budget; kept current by the stream's budget.*
// and run.* events (spending moves with runs), at most one fetch a second.  Viewers see the
// bars only: the API refuses them projects:write / beads:write, so the forms are not offered.
import { $, h, s, clear, fmtUsd, formError, setBusy, showMessage } from './dom.js';
import { get, put, enc, ApiError } from './api.js';
import { state, on } from './store.js';
import { me } from './account.js';

const WARN_PERCENT = 80;
const THROTTLE_MS = 1000;
let nextId = 0;

const canEdit = () => !!me.user && (me.user.role === 'admin' || me.user.role === 'user');
const num = (v) => (v == null ? null : Number(v));
// Events after which what a budget shows may have changed.
const moves = (t) => t.startsWith('budget.') || t === 'run.finished' || t === 'run.iteration';

// At most one call of fn per THROTTLE_MS; calls in between collapse into the pending one.
function throttled(fn) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, THROTTLE_MS);
  };
}

function level(percent) {
  if (percent >= 100) return 'over';
  if (percent >= WARN_PERCENT) return 'warn';
  return 'ok';
}

// One budget: a label, the numbers in words and, when there is a limit, a progressbar whose
// value is the percent spent (reserved money is drawn after it, lighter, not counted).
export function budgetBar(label, spentUsd, reservedUsd, limitUsd, scope) {
  const spent = Number(spentUsd || 0);
  const reserved = Number(reservedUsd || 0);
  const limit = num(limitUsd);
  const id = `budget-${++nextId}`;
  const head = h('div', { class: 'budget-head' }, h('span', { class: 'budget-label', id: `${id}-l` }, label));
  const held = reserved > 0 ? ` + ${fmtUsd(reserved)} reserved` : '';
  if (limit == null) {
    head.append(h('span', { class: 'budget-nums' }, `${fmtUsd(spent)} spent${held} · `, h('span', { class: 'muted' }, 'no limit')));
    return h('div', { class: 'budget no-limit', dataset: { scope } }, head);
  }
  const percent = limit > 0 ? Math.round((spent * 1000) / limit) / 10 : (spent > 0 ? 100 : 0);
  const lvl = level(limit > 0 ? percent : (spent > 0 ? 100 : 0));
  const text = `${fmtUsd(spent)} of ${fmtUsd(limit)} spent (${percent} %)${held}`;
  head.append(h('span', { class: 'budget-nums', id: `${id}-n` }, text,
    lvl === 'over' ? h('span', { class: 'budget-flag' }, ' · used up') : null));
  const pct = (v) => `${Math.min(100, limit > 0 ? (v * 100) / limit : (v > 0 ? 100 : 0))}%`;
  const spentW = pct(spent);
  const bar = h('div', {
    class: `budget-bar lvl-${lvl}`, role: 'progressbar', 'aria-labelledby': `${id}-l`, 'aria-describedby': `${id}-n`,
    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.min(percent, 100)),
    'aria-valuetext': `${percent} %: ${text}`,
  }, svgBar(spentW, pct(spent + reserved)));
  return h('div', { class: `budget lvl-${lvl}`, dataset: { scope } }, head, bar);
}

// The bar as SVG (geometry in attributes: the CSP allows no inline style): the track, the
// reserved part up to spent + reserved, spent on top.
function svgBar(spentW, totalW) {
  return s('svg', { class: 'budget-svg', 'aria-hidden': 'true', focusable: 'false' },
    [['budget-track', '100%'], ['budget-reserved', totalW], ['budget-spent', spentW]].map(([cls, width]) =>
      s('rect', { class: cls, x: 0, y: 0, height: '100%', width })));
}

// An amount typed by a person: empty is "no limit" (null); a number goes as a number; anything
// else goes as typed, for the API to explain what it wants.
function amount(input) {
  const v = input.value.trim();
  if (!v) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
}

// An amount as its field shows it: empty for no limit.
const amountText = (value) => (value == null ? '' : String(Number(value)));

// Shows value in input unless the person is editing it.
function fill(input, value) {
  if (input.dataset.dirty || document.activeElement === input) return;
  input.value = amountText(value);
}

/* ---------- the project's budget on Home ---------- */

let projectBudget = null;
let projectSeq = 0;
let stale = true;
let shownProject = null;

async function loadProject() {
  const p = state.project;
  const seq = ++projectSeq;
  stale = false;
  if (!p) { projectBudget = null; renderProject(); return; }
  try {
    const b = await get(`/projects/${enc(p.id)}/budget`);
    if (seq !== projectSeq) return;
    projectBudget = b;
    showMessage($('#home-budget-error'), null);
  } catch (e) {
    if (seq !== projectSeq) return;
    showMessage($('#home-budget-error'), `Could not load the budget: ${e.message}`);
  }
  renderProject();
}

function renderProject() {
  const b = projectBudget;
  const panel = $('#home-budget-panel');
  panel.hidden = !state.project;
  if (!b) { clear($('#home-budget')); $('#budget-form').hidden = true; return; }
  $('#home-budget-month').textContent = b.month ? `month ${b.month} (UTC)` : '';
  clear($('#home-budget'),
    budgetBar('All time', b.spent_usd, b.reserved_usd, b.limit_usd, 'total'),
    budgetBar('This month', b.month_spent_usd, b.reserved_usd, b.monthly_limit_usd, 'monthly'),
    b.reservations ? h('p', { class: 'muted small' }, `${b.reservations === 1 ? '1 call in flight reserves' : `${b.reservations} calls in flight reserve`} ${fmtUsd(b.reserved_usd)}.`) : null,
    (b.blocked_beads || []).length ? h('p', { class: 'budget-blocked small' },
      `Used up: ${b.blocked_beads.length} bead${b.blocked_beads.length === 1 ? '' : 's'} wait for a larger budget (see Decisions).`) : null);
  const form = $('#budget-form');
  form.hidden = !canEdit();
  fill($('#bf-limit'), b.limit_usd);
  fill($('#bf-monthly'), b.monthly_limit_usd);
}

async function saveProject(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const p = state.project;
  if (!p) return;
  formError(form, null);
  setBusy(form, true);
  try {
    const b = await put(`/projects/${enc(p.id)}/budget`, { limit_usd: amount($('#bf-limit')), monthly_limit_usd: amount($('#bf-monthly')) });
    // A project.updated event may have replaced state.project meanwhile: compare ids.
    if (!state.project || state.project.id !== p.id) return;
    for (const el of [$('#bf-limit'), $('#bf-monthly')]) delete el.dataset.dirty;
    projectBudget = b;
    $('#bf-limit').value = amountText(b.limit_usd);
    $('#bf-monthly').value = amountText(b.monthly_limit_usd);
    renderProject();
    showMessage($('#budget-done'), 'Budget saved.');
  } catch (err) {
    formError(form, err instanceof ApiError ? err.message : String(err));
  } finally {
    setBusy(form, false);
  }
}

const homeShown = () => !$('#view-home').hidden;
const refreshProject = throttled(() => { if (homeShown()) loadProject(); else stale = true; });

/* ---------- the bead's budget in the drawer ---------- */

let bead = null; // bead id shown in the drawer
let beadSeq = 0;

async function loadBead() {
  const id = bead;
  const seq = ++beadSeq;
  const section = $('#dr-budget-section');
  if (!id) { section.hidden = true; return; }
  let b;
  try {
    b = await get(`/beads/${enc(id)}/budget`);
  } catch (e) {
    if (seq !== beadSeq) return;
    section.hidden = false;
    clear($('#dr-budget'), h('p', { class: 'form-error' }, `Could not load the budget: ${e.message}`));
    return;
  }
  if (seq !== beadSeq) return;
  renderBead(b);
}

function renderBead(b) {
  const shown = b.limit_usd != null || Number(b.spent_usd) > 0 || Number(b.reserved_usd) > 0;
  const section = $('#dr-budget-section');
  section.hidden = !shown && !canEdit();
  clear($('#dr-budget'), shown
    ? budgetBar('This bead', b.spent_usd, b.reserved_usd, b.limit_usd, 'bead')
    : h('p', { class: 'muted' }, 'No limit; nothing spent yet.'),
    b.blocked_reason && b.blocked_reason.startsWith('budget') ? h('p', { class: 'budget-blocked small' }, b.blocked_reason) : null);
  $('#dr-budget-form').hidden = !canEdit();
  fill($('#db-limit'), b.limit_usd);
}

async function saveBead(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const id = bead;
  if (!id) return;
  formError(form, null);
  setBusy(form, true);
  try {
    const b = await put(`/beads/${enc(id)}/budget`, { limit_usd: amount($('#db-limit')) });
    if (id !== bead) return;
    delete $('#db-limit').dataset.dirty;
    $('#db-limit').value = amountText(b.limit_usd);
    renderBead(b);
  } catch (err) {
    formError(form, err instanceof ApiError ? err.message : String(err));
  } finally {
    setBusy(form, false);
  }
}

const refreshBead = throttled(() => { if (bead) loadBead(); });

/* ---------- wiring ---------- */

export function initBudget() {
  $('#budget-form').addEventListener('submit', saveProject);
  $('#dr-budget-form').addEventListener('submit', saveBead);
  for (const sel of ['#bf-limit', '#bf-monthly', '#db-limit']) {
    $(sel).addEventListener('input', (e) => { e.currentTarget.dataset.dirty = '1'; showMessage($('#budget-done'), null); });
  }
  on('project', () => {
    // project.updated events come here too: a new limit, not a new project.
    const id = state.project ? state.project.id : null;
    if (id === shownProject) { refreshProject(); return; }
    shownProject = id;
    projectBudget = null;
    for (const sel of ['#bf-limit', '#bf-monthly']) { delete $(sel).dataset.dirty; $(sel).value = ''; }
    formError($('#budget-form'), null);
    showMessage($('#budget-done'), null);
    renderProject();
    if (homeShown()) loadProject(); else stale = true;
  });
  on('tab', (tab) => { if (tab === 'home' && stale) loadProject(); });
  on('drawer-bead', (id) => {
    bead = id;
    beadSeq += 1;
    delete $('#db-limit').dataset.dirty;
    $('#db-limit').value = '';
    formError($('#dr-budget-form'), null);
    $('#dr-budget-section').hidden = true;
    if (id) loadBead();
  });
  on('event', (ev) => {
    if (moves(ev.type)) refreshProject();
    if (bead && ev.bead_id === bead && moves(ev.type)) refreshBead();
    else if (bead && ev.type === 'bead.updated' && ev.bead_id === bead) refreshBead();
  });
}
