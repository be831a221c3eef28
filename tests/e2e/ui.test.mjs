// The dashboard in a real browser: playwright-core drives Debian's chromium (headless) against
// the throw-away stack.  Creates a bead through the UI, watches API changes arrive live (no
// reload), checks an API validation error is shown inline, watches an agent (the scripted LLM
// stub) work a bead made in the UI, with its run, conversation and action log in the drawer;
// escalates and decides in the Decisions tab, triggers a motivation in the Motivations tab,
// checks the Analytics charts and live Logs; the notification bell counts a mention by someone
// else live and marks read, Home's activity folds repeats ("× 3"), the budget bars follow
// spending live and are set through their forms (a viewer gets no form); fails
// on any console error, and leaves screenshots in tests/e2e/artifacts/.  Skips (with the
// reason) when playwright-core or chromium is not installed: `npm ci --prefix tests/e2e` and
// the chromium Debian package.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ADMIN_TOKEN, BASE, api, authHeader, newProject, newBead, newUser, sql, sleep, stackShell } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, 'artifacts');
const CHROMIUM = process.env.LOOM_CHROMIUM || '/usr/bin/chromium';

let chromium = null;
let skip = false;
try {
  ({ chromium } = createRequire(import.meta.url)('playwright-core'));
} catch {
  skip = 'playwright-core is not installed (npm ci --prefix tests/e2e)';
}
if (!skip && !existsSync(CHROMIUM)) skip = `no chromium at ${CHROMIUM} (apt-get install chromium)`;
if (skip) console.log(`# ui.test.mjs skipped: ${skip}`);

let browser;
let project;
let stub = null;
let stubInfo = null; // {url, provider} of the stub, once started
let workProject = null; // the project an agent worked in (for the phone-width analytics)
const problems = []; // console errors, page errors, failed requests
let expectRefusal = null; // the path (or paths) of the requests a step is refused on purpose

before(async () => {
  if (skip) return;
  mkdirSync(artifacts, { recursive: true });
  project = await newProject({ name: 'UI test project' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
    timeout: 15000,
  });
});

after(async () => {
  if (browser) await browser.close();
  stub?.kill('SIGTERM');
});

// The scripted LLM stub on a random port, registered as a provider once it is healthy.
async function startStub() {
  stub = spawn('node', [path.join(here, '..', 'fixtures', 'llm-stub.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    stub.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    stub.on('exit', () => reject(new Error('the LLM stub exited')));
  });
  const provider = `uistub${Date.now().toString(36)}`;
  const r = await api('POST', '/api/v1/providers', { id: provider, endpoint: url, model: 'stub-model' });
  assert.equal(r.status, 201, r.text);
  for (let i = 0; i < 100 && (await api('GET', `/api/v1/providers/${provider}`)).body.status !== 'healthy'; i++) await sleep(100);
  assert.equal((await api('GET', `/api/v1/providers/${provider}`)).body.status, 'healthy');
  return { url, provider };
}

async function script(url, body) {
  const r = await fetch(`${url}/_stub/script`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
}

// A page signed in as token's user (the admin's by default) through the session cookie, as
// after a login; token null: not signed in.
async function page(width, height, token = ADMIN_TOKEN) {
  const context = await browser.newContext({ viewport: { width, height }, baseURL: BASE });
  if (token) await context.addCookies([{ name: 'loom_session', value: token, url: BASE }]);
  const p = await context.newPage();
  p.setDefaultTimeout(5000);
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    // The refusals the test provokes on purpose (empty title, empty reason) Chrome logs too.
    const refused = [].concat(expectRefusal || []);
    if (/status of 40[01]/.test(m.text()) && refused.some((r) => m.location().url.endsWith(r))) return;
    problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  p.on('requestfailed', (r) => {
    // EventSource streams are cut when a page closes; anything else is a real failure.
    if (!r.url().includes('/stream')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  return p;
}

const column = (p, status) => p.locator(`#board .column[data-status="${status}"]`);

// Bar charts: labels and values must stay clear of the bar's track at any width.
const chartCollisions = (p) => p.evaluate(() => Array.from(document.querySelectorAll('#an-charts .bar-row')).filter((g) => {
  const track = g.querySelector('rect.bar-track').getBoundingClientRect();
  return g.querySelector('.bar-value').getBoundingClientRect().left < track.right
    || g.querySelector('.bar-label').getBoundingClientRect().right > track.left;
}).map((g) => g.textContent));

test('dashboard: create a bead in the UI, then watch API changes arrive live', { skip }, async () => {
  const p = await page(1280, 800);
  await p.goto('/');
  // Choose the project in the header selector; the route follows.
  await p.selectOption('#project', project);
  await p.waitForFunction((id) => location.hash.startsWith(`#/${id}/`), project);
  await p.waitForSelector('#live.is-live');
  assert.equal(await p.textContent('#health'), 'healthy');
  assert.match(await p.textContent('#home-h'), /UI test project/);

  await p.click('.tabs a[data-tab="kanban"]');
  await p.waitForSelector('#board-empty:has-text("No beads yet")');

  // Validation: an empty title goes to the API and its message appears next to the field.
  await p.click('#new-bead-btn');
  expectRefusal = '/api/v1/beads';
  await p.click('#new-bead-form button[type="submit"]');
  await p.waitForSelector('#nb-title-err:visible');
  expectRefusal = null;
  assert.match(await p.textContent('#nb-title-err'), /title/);
  assert.equal(await p.getAttribute('#nb-title', 'aria-invalid'), 'true');

  // Create through the form: it shows up in Open.
  await p.fill('#nb-title', 'Render the <b>board</b>');
  await p.fill('#nb-desc', 'Cards move between columns live.');
  await p.selectOption('#nb-priority', '1');
  await p.selectOption('#nb-type', 'feature');
  await p.fill('#nb-tags', 'ui, live');
  await p.click('#new-bead-form button[type="submit"]');
  await p.waitForSelector('#new-bead', { state: 'hidden' });
  const card = column(p, 'open').locator('.card', { hasText: 'Render the <b>board</b>' });
  await card.waitFor();
  const beadId = await card.getAttribute('data-bead');
  assert.match(beadId, new RegExp(`^${project}-\\d+$`));
  assert.equal(await card.locator('.prio').textContent(), 'P1');
  assert.equal(await p.locator('#board b').count(), 0, 'API text is never parsed as HTML');

  // A bead made by someone else arrives through the stream, blocked by ours.
  const other = await api('POST', '/api/v1/beads', { project_id: project, title: 'Wire the stream', blocked_by: [beadId] });
  assert.equal(other.status, 201, other.text);
  await column(p, 'open').locator(`[data-bead="${other.body.id}"]`).waitFor();

  // Close ours through the API: the card moves to Closed without a reload.
  const res = await api('PATCH', `/api/v1/beads/${beadId}`, { status: 'closed' });
  assert.equal(res.status, 200, res.text);
  await column(p, 'closed').locator(`[data-bead="${beadId}"]`).waitFor();
  assert.equal(await column(p, 'open').locator(`[data-bead="${beadId}"]`).count(), 0);

  // The drawer: details, dependency links, and a comment added through the API appears live.
  await column(p, 'closed').locator(`[data-bead="${beadId}"]`).click();
  await p.waitForSelector('#drawer:visible');
  await p.waitForSelector('#dr-details:has-text("Cards move between columns live.")');
  assert.equal(await p.textContent('#dr-title'), 'Render the <b>board</b>');
  assert.equal(await p.textContent('#dr-status'), 'Closed');
  await p.waitForSelector(`#dr-details a.dep:has-text("${other.body.id}")`);
  await p.waitForSelector('#dr-comments:has-text("No comments yet.")');
  const c = await api('POST', `/api/v1/beads/${beadId}/comments`, { content: 'Looks right from the API side.' });
  assert.equal(c.status, 201, c.text);
  await p.waitForSelector('#dr-comments .comment:has-text("Looks right from the API side.")');
  await p.screenshot({ path: path.join(artifacts, 'ui-drawer-1280x800.png') });

  // Escape closes the drawer and gives focus back to the card.
  await p.keyboard.press('Escape');
  await p.waitForSelector('#drawer', { state: 'hidden' });
  await p.screenshot({ path: path.join(artifacts, 'ui-kanban-1280x800.png') });

  await p.click('.tabs a[data-tab="home"]');
  await p.waitForSelector('#home-counts .s-closed .num:has-text("1")');
  await p.screenshot({ path: path.join(artifacts, 'ui-home-1280x800.png') });
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('an agent works a bead made in the UI: the drawer shows its run, conversation and action log live', { skip }, async () => {
  const { url, provider } = stubInfo = await startStub();
  const proj = await newProject({ dispatch: true, name: 'UI agents at work' });
  workProject = proj;
  // Only our agent, on our stub, takes work; it stays paused until the bead has been seen in Open.
  for (const a of (await api('GET', `/api/v1/agents?project_id=${proj}`)).body) {
    assert.equal((await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' })).status, 200);
  }
  const agent = (await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: proj, provider_id: provider, name: 'UI worker' })).body;
  assert.equal((await api('PATCH', `/api/v1/agents/${agent.id}`, { status: 'paused' })).status, 200);
  await script(url, { beads: [{ match: '^Write the notes$', replies: [
    { delay_ms: 1500, notes: 'writing the notes', actions: [
      { type: 'write_file', path: 'notes.txt', content: 'hello from the agent\n' },
      { type: 'run_command', command: 'cat notes.txt' }] },
    { notes: 'finished', actions: [{ type: 'done', reason: 'notes.txt is written' }] },
  ] }] });

  const p = await page(1280, 800);
  await p.goto(`/#/${proj}/kanban`);
  await p.waitForSelector('#live.is-live');
  await p.evaluate(() => { window.loomNoReload = true; }); // gone if the page reloads

  await p.click('#new-bead-btn');
  await p.fill('#nb-title', 'Write the notes');
  await p.fill('#nb-desc', 'A file with a greeting, then done.');
  await p.click('#new-bead-form button[type="submit"]');
  const card = column(p, 'open').locator('.card', { hasText: 'Write the notes' });
  await card.waitFor();
  const beadId = await card.getAttribute('data-bead');

  await card.click();
  await p.waitForSelector('#drawer:visible');
  await p.waitForSelector('#dr-runs:has-text("No runs yet")');
  // The agent may work now: the run appears in the open drawer, then its iteration, then its end.
  assert.equal((await api('PATCH', `/api/v1/agents/${agent.id}`, { status: 'idle' })).status, 200);
  const run = p.locator('#dr-runs .run').first();
  await p.waitForSelector('#dr-runs .run:has(.pill.st-running) .run-iter:text-matches("^1/[0-9]+$")', { timeout: 20000 });
  await p.waitForSelector('#dr-runs .run:has(.pill.st-succeeded)', { timeout: 30000 });
  assert.equal(await run.locator('.reason').textContent(), 'completed');
  assert.match(await run.locator('.run-iter').textContent(), /^2\/\d+$/);
  assert.match(await run.locator('.run-meta').textContent(), /UI worker/);
  assert.match(await run.locator('.run-meta').textContent(), /\d+ in · \d+ out/);
  await p.waitForSelector('#dr-status:text-is("Closed")');
  assert.equal(await run.locator('button:has-text("Cancel run")').count(), 0, 'an ended run cannot be canceled');

  // The conversation: system prompt (folded), the bead, the model's replies.
  await p.waitForSelector(`#dr-conv .msg.role-user:has-text("Work on bead ${beadId}: Write the notes")`);
  await p.waitForSelector('#dr-conv .msg.role-assistant:has-text("notes.txt")');
  const system = p.locator('#dr-conv .msg.role-system').first();
  const fold = system.locator('button[aria-expanded]');
  assert.equal(await fold.getAttribute('aria-expanded'), 'false', 'the long system prompt is folded');
  await fold.click();
  assert.equal(await fold.getAttribute('aria-expanded'), 'true');
  assert.equal(await system.locator('.msg-body.folded').count(), 0);
  await fold.click();

  // The action log of the run, and the command it ran.
  await p.waitForSelector('#dr-actlog .act:has(.act-type:text-is("write_file")):has-text("notes.txt")');
  await p.waitForSelector('#dr-actlog .act:has(.act-type:text-is("done"))');
  assert.equal(await p.locator('#dr-actlog .act.s-error').count(), 0);
  await p.waitForSelector('#dr-cmds .cmd:has-text("cat notes.txt"):has-text("exit 0")');

  // The board behind the drawer followed along, and the page never reloaded.
  await column(p, 'closed').locator(`[data-bead="${beadId}"]`).waitFor();
  assert.equal(await p.evaluate(() => window.loomNoReload), true);
  await p.locator('#dr-runs-h').scrollIntoViewIfNeeded();
  await p.screenshot({ path: path.join(artifacts, 'ui-drawer-run-1280x800.png') });
  await p.locator('#dr-conv-h').scrollIntoViewIfNeeded();
  await p.screenshot({ path: path.join(artifacts, 'ui-drawer-conversation-1280x800.png') });
  await p.keyboard.press('Escape');
  await p.waitForSelector('#drawer', { state: 'hidden' });

  // Analytics: the run's LLM calls as totals and charts (with a table fallback).
  await p.click('.tabs a[data-tab="analytics"]');
  await p.waitForSelector('#an-charts figure svg.bars rect.bar');
  assert.match(await p.locator('#an-charts figure svg.bars').first().getAttribute('role'), /^img$/);
  assert.match(await p.locator('#an-charts figure:has-text("by agent") table').textContent(), /UI worker/);
  const calls = Number((await p.locator('#an-cards .stat:has-text("LLM calls") .num').textContent()).replace(/,/g, ''));
  assert.ok(calls >= 2, `${calls} LLM calls shown`);
  assert.deepEqual(await chartCollisions(p), []);
  await p.selectOption('#an-metric', 'latency');
  await p.waitForSelector('#an-charts figcaption:has-text("Average latency by model")');
  await p.screenshot({ path: path.join(artifacts, 'ui-analytics-1280x800.png'), fullPage: true });
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('pair: talk with an agent in the drawer; while a run is live, send it a message instead', { skip }, async () => {
  const { url, provider } = stubInfo || (stubInfo = await startStub());
  const proj = await newProject({ name: 'UI pair' });
  for (const a of (await api('GET', `/api/v1/agents?project_id=${proj}`)).body) {
    assert.equal((await api('PATCH', `/api/v1/agents/${a.id}`, { status: 'paused' })).status, 200);
  }
  const agent = (await api('POST', '/api/v1/agents', { persona_name: 'engineering-manager', project_id: proj, provider_id: provider, name: 'Pair partner' })).body;
  const b = await newBead(proj, { title: 'Pair on the notes' });
  const reply = 'Let me write it and look at the tree.\n```json\n' + JSON.stringify({ actions: [
    { type: 'write_file', path: 'pair.txt', content: 'from the pair\n' }, { type: 'read_tree', path: '.' }] }) + '\n```';
  await script(url, { replies: [{ content: reply, delay_ms: 800 }] });

  const p = await page(1280, 800);
  await p.goto(`/#/${proj}/kanban/${b.id}`);
  await p.waitForSelector('#live.is-live');
  await p.waitForSelector('#drawer:visible');
  await p.waitForSelector('#dr-pair-log:has-text("Ask the agent")');
  assert.equal(await p.isHidden('#dr-pair-inject-field'), true, 'no live run: nothing to send to');
  await p.fill('#dr-pair-msg', 'Can you add pair.txt?');
  await p.click('#dr-pair-form button[type="submit"]');
  // the reply streams in, then the actions and their results are listed
  await p.waitForSelector('#dr-pair-log .msg.role-user:has-text("Can you add pair.txt?")');
  await p.waitForSelector('#dr-pair-log .msg.role-assistant:not(.streaming):has-text("Let me write it and look at the tree.")');
  await p.waitForSelector('#dr-pair-log .pair-actions .act:has(.act-type:text-is("write_file")):has-text("executed")');
  await p.waitForSelector('#dr-pair-log .pair-actions .act:has(.act-type:text-is("read_tree")):has-text("pair.txt")');
  assert.match(await p.textContent('#dr-pair-session'), /Pair partner/);
  assert.equal(await p.inputValue('#dr-pair-msg'), '');
  await p.locator('#dr-pair-h').scrollIntoViewIfNeeded();
  await p.screenshot({ path: path.join(artifacts, 'ui-drawer-pair-1280x800.png') });
  // the session is kept: the drawer shows it again
  await p.keyboard.press('Escape');
  await p.waitForSelector('#drawer', { state: 'hidden' });
  await p.goto(`/#/${proj}/kanban/${b.id}`);
  await p.waitForSelector('#dr-pair-log .msg.role-assistant:has-text("Let me write it")');
  await p.waitForSelector('#dr-pair-log .msg.role-results:has-text("write_file pair.txt: executed")');

  // a live run (a slow model): the message can go to the running agent, which reads it
  await script(url, { beads: [{ match: '^Pair on the notes$', replies: [
    { delay_ms: 2000, actions: [{ type: 'read_tree', path: '.' }] }, { delay_ms: 2000, actions: [{ type: 'git_status' }] },
    { actions: [{ type: 'done', reason: 'done' }] }] }] }); // the stack's LLM timeout is 3 s
  assert.equal((await api('PATCH', `/api/v1/projects/${proj}`, { context: { dispatch_paused: null } })).status, 200);
  await p.waitForSelector('#dr-pair-inject-field:visible', { timeout: 20000 });
  assert.match(await p.textContent('#dr-pair-inject-label'), /Send to the running agent \(run #\d+\) instead/);
  await p.check('#dr-pair-inject');
  await p.fill('#dr-pair-msg', 'Please finish up.');
  await p.click('#dr-pair-form button[type="submit"]');
  await p.waitForSelector('#dr-pair-log .msg.role-inject:has-text("Please finish up.")');
  await p.waitForSelector('#dr-pair-log .msg.role-inject:has-text("read by the agent at iteration")', { timeout: 20000 });
  await p.waitForSelector('#dr-status:text-is("Closed")', { timeout: 20000 });
  await p.waitForSelector('#dr-pair-inject-field', { state: 'hidden' });
  assert.equal(agent.name, 'Pair partner');
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('decisions: escalate from the drawer, then decide in the Decisions tab', { skip }, async () => {
  const b = await newBead(project, { title: 'Pick a colour' });
  const p = await page(1280, 800);
  await p.goto(`/#/${project}/kanban/${b.id}`);
  await p.waitForSelector('#live.is-live');
  await p.waitForSelector('#drawer:visible');
  await p.click('#dr-actions button:has-text("Escalate")');
  // an empty question is the API's to refuse: its message shows next to the field
  expectRefusal = '/escalate';
  await p.click('#dr-escalate button[type="submit"]');
  await p.waitForSelector('#dx-reason-err:visible');
  expectRefusal = null;
  assert.match(await p.textContent('#dx-reason-err'), /reason/);
  await p.fill('#dx-reason', 'Blue or green for the header?');
  await p.click('#dr-escalate button[type="submit"]');
  await p.waitForSelector('#dr-note:has-text("waits for it")');
  await p.waitForSelector('#dr-status:text-is("Blocked")');
  await p.keyboard.press('Escape');

  await p.click('.tabs a[data-tab="decisions"]');
  const first = p.locator('.dec-card', { hasText: 'Blue or green for the header?' });
  await first.waitFor();
  assert.match(await first.textContent(), new RegExp(`Waiting: ${b.id}`));
  // one asked elsewhere arrives by itself
  const b2 = await newBead(project, { title: 'Pick a font' });
  assert.equal((await api('POST', `/api/v1/beads/${b2.id}/escalate`, { reason: 'Serif or sans?' })).status, 201);
  await p.locator('.dec-card', { hasText: 'Serif or sans?' }).waitFor();
  await p.waitForSelector('#dec-count:text-is("2")');

  // a verdict is required before anything is sent
  await first.locator('button:has-text("Record decision")').click();
  await first.locator('.form-error:has-text("Choose a verdict")').waitFor();
  await first.locator('input[value="approve"]').check();
  await first.locator('textarea[name="rationale"]').fill('Blue matches the brand.');
  await first.locator('input[name="decider_id"]').fill('ui-tester');
  await first.locator('button:has-text("Record decision")').click();
  await p.waitForSelector('#dec-note:has-text("approve recorded")');
  await first.waitFor({ state: 'detached' });
  await p.waitForSelector('#dec-count:text-is("1")');
  const waiting = (await api('GET', `/api/v1/beads/${b.id}`)).body;
  assert.equal(waiting.status, 'closed', 'approve closes the waiting bead');
  assert.equal(waiting.context.ceo_decision, 'approve');

  await p.selectOption('#dec-status', 'closed');
  const decided = p.locator('.dec-card', { hasText: 'Blue or green for the header?' });
  await decided.waitFor();
  assert.match(await decided.textContent(), /Approve.*Blue matches the brand\..*ui-tester/s);
  await p.selectOption('#dec-status', 'open');
  await p.locator('.dec-card', { hasText: 'Serif or sans?' }).waitFor();
  await p.screenshot({ path: path.join(artifacts, 'ui-decisions-1280x800.png'), fullPage: true });
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('logs: lines arrive live from both streams, with filters, pause and a bounded list', { skip }, async () => {
  const p = await page(1280, 800);
  await p.goto(`/#/${project}/logs`);
  await p.waitForSelector('#live.is-live');
  await p.waitForSelector('#log-note:has-text("live")');
  await p.waitForSelector('#log-list .log');
  // an ordinary event (project stream) and a log.* event (log stream) both become lines
  const b = await newBead(project, { title: 'Log me please' });
  await p.waitForSelector(`#log-list .log:has-text("${b.id} created: Log me please")`);
  sql(`SELECT loom_event('log.warn', '${project}', NULL, 'ui-test', '{"message": "disk is getting full"}')`);
  const warn = p.locator('#log-list .log.lv-warn', { hasText: 'disk is getting full' });
  await warn.waitFor();
  assert.equal(await warn.locator('.log-src').textContent(), 'ui-test');
  await p.screenshot({ path: path.join(artifacts, 'ui-logs-1280x800.png') });

  await p.selectOption('#log-level', 'error');
  await warn.waitFor({ state: 'detached' });
  await p.selectOption('#log-level', 'info');
  await warn.waitFor();
  await p.fill('#log-bead', b.id);
  await warn.waitFor({ state: 'detached' });
  await p.waitForSelector(`#log-list .log:has-text("${b.id} created")`);
  await p.fill('#log-bead', '');
  await warn.waitFor();

  await p.click('#log-pause');
  await newBead(project, { title: 'Made while paused' });
  await p.waitForSelector('#log-note:has-text("paused")');
  await sleep(1000);
  assert.equal(await p.locator('#log-list .log:has-text("Made while paused")').count(), 0);
  await p.click('#log-pause');
  await p.waitForSelector('#log-list .log:has-text("Made while paused")');

  // loom-sse restarts: both streams come back by themselves and nothing is missed
  stackShell('stack_ctl restart "loom-sse:*" >/dev/null');
  await newBead(project, { title: 'Made during the restart' });
  await p.waitForSelector('#log-list .log:has-text("Made during the restart")', { timeout: 15000 });
  await p.waitForSelector('#live.is-live');
  sql(`SELECT loom_event('log.error', '${project}', NULL, 'ui-test', '{"message": "after the restart"}')`);
  await p.waitForSelector('#log-list .log.lv-error:has-text("after the restart")');

  sql(`SELECT count(loom_event('log.info', '${project}', NULL, 'ui-test', jsonb_build_object('message', 'bulk line ' || g))) FROM generate_series(1, 700) g`);
  await p.waitForSelector('#log-list .log:has-text("bulk line 700")', { timeout: 10000 });
  const rows = await p.locator('#log-list .log').count();
  assert.ok(rows <= 500, `${rows} rows kept`);
  await p.click('#log-clear');
  await p.waitForSelector('#log-list:has-text("No log lines match")');
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('motivations: trigger one in the tab, its history row appears; changes made elsewhere arrive live', { skip }, async () => {
  const r = await api('POST', '/api/v1/motivations', {
    name: 'Release notes', type: 'external', project_id: project, agent_role: 'documentation-manager',
    cooldown_period: 0, bead_template: { title: 'Write the release notes' },
  });
  assert.equal(r.status, 201, r.text);
  const m = r.body;
  const p = await page(1280, 800);
  await p.goto(`/#/${project}/motivations`);
  const row = p.locator(`#mot-list tr[data-motivation="${m.id}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /only when triggered/);
  assert.match(await row.textContent(), /documentation-manager/);
  await p.locator('#mot-list tr', { hasText: 'QA: review completed work' }).waitFor(); // the built-ins
  assert.match(await p.textContent('#mot-history-list'), /Nothing yet/);

  await p.click('button[aria-label="Trigger Release notes"]');
  await p.locator('#mot-note').waitFor({ state: 'visible' });
  assert.match(await p.textContent('#mot-note'), new RegExp(`Release notes fired: bead ${project}-\\d+`));
  const first = p.locator('#mot-history-list tr[data-trigger]').first();
  await first.waitFor();
  const bead = (await api('GET', `/api/v1/motivations/${m.id}/history`)).body[0].bead_created;
  assert.match(await first.textContent(), /success/);
  assert.match(await first.textContent(), new RegExp(bead));
  assert.match(await p.textContent('#mot-history-h'), /History of Release notes/);
  await row.locator('.pill.st-fired').waitFor();
  assert.equal(await row.locator(`a[href$="/${bead}"]`).count(), 1);

  // a trigger through the API while the bead is open: its "skipped" row arrives without a reload
  await api('POST', `/api/v1/motivations/${m.id}/trigger`);
  await p.locator('#mot-history-list tr[data-trigger]', { hasText: 'skipped' }).waitFor();
  await p.screenshot({ path: path.join(artifacts, 'ui-motivations.png'), fullPage: true });
  await p.click('button[aria-label="Disable Release notes"]');
  await row.locator('.pill.st-disabled').waitFor();
  assert.ok(await p.locator('button[aria-label="Trigger Release notes"]').isDisabled());
  assert.equal((await api('GET', `/api/v1/motivations/${m.id}`)).body.status, 'disabled');
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('dashboard at phone width', { skip }, async () => {
  const p = await page(390, 844);
  await p.goto(`/#/${project}/kanban`);
  await p.waitForSelector('#live.is-live');
  await column(p, 'closed').locator('.card').first().waitFor();
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px at 390px`);
  await p.screenshot({ path: path.join(artifacts, 'ui-kanban-390x844.png'), fullPage: true });
  await p.click('#board .card >> nth=0');
  await p.waitForSelector('#drawer:visible');
  await p.screenshot({ path: path.join(artifacts, 'ui-drawer-390x844.png') });
  await p.click('#dr-close');
  await p.waitForSelector('#drawer', { state: 'hidden' });
  // the new tabs fit a phone too
  for (const [tab, ready] of [['decisions', '.dec-card'], ['motivations', '#mot-list tr[data-motivation]'],
    ['analytics', '#an-charts figure'], ['logs', '#log-list .log']]) {
    if (tab === 'analytics' && workProject) await p.goto(`/#/${workProject}/analytics`);
    else await p.click(`.tabs a[data-tab="${tab}"]`);
    await p.waitForSelector(ready);
    const wide = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(wide <= 0, `${tab} scrolls sideways by ${wide}px at 390px`);
    if (tab === 'analytics') assert.deepEqual(await chartCollisions(p), []);
    await p.screenshot({ path: path.join(artifacts, `ui-${tab}-390x844.png`), fullPage: true });
  }
  await p.context().close();
  assert.deepEqual(problems, []);
});

test('sign in: wrong password shown inline, then the dashboard; Account keys; Users for admins only', { skip }, async () => {
  const v = await newUser('viewer');
  const p = await page(1280, 800, null);
  expectRefusal = ['/api/v1/auth/me', '/api/v1/auth/login']; // signed out; the wrong password
  try {
    await p.goto('/');
    await p.locator('#login').waitFor({ state: 'visible' });
    assert.ok(await p.locator('#app').isHidden(), 'nothing of the dashboard before signing in');
    await p.fill('#login-user', v.username);
    await p.fill('#login-pass', 'not-the-password');
    await p.click('#login-submit');
    await p.locator('#login-error').waitFor({ state: 'visible' });
    assert.match(await p.textContent('#login-error'), /invalid user name or password/);
    await p.fill('#login-pass', v.password);
    await p.click('#login-submit');
    await p.locator('#app').waitFor({ state: 'visible' });
    assert.match(await p.textContent('#user-menu'), new RegExp(`${v.username} · viewer`));
    assert.ok(await p.locator('#tab-users').isHidden(), 'a viewer has no Users tab');
    const cookies = await p.context().cookies();
    const c = cookies.find((x) => x.name === 'loom_session');
    assert.ok(c && c.httpOnly && c.sameSite === 'Strict', JSON.stringify(cookies));
    // Account: a key is shown once, then listed by its prefix only
    await p.goto('/#account');
    await p.fill('#key-name', 'from-the-ui');
    await p.click('#key-form button[type=submit]');
    const key = await p.locator('#key-value').textContent();
    assert.match(key, /^lmk_[0-9a-f]{32}$/);
    await p.locator('#keys-list td', { hasText: /^from-the-ui$/ }).waitFor();
    assert.ok(!(await p.textContent('#keys-list')).includes(key), 'the full key is not listed');
    assert.equal((await api('GET', '/api/v1/auth/me', undefined, { Authorization: `Bearer ${key}` })).status, 200);
    await p.screenshot({ path: path.join(artifacts, 'account.png'), fullPage: true });
    // signing out ends the session: the sign-in page again
    const seen = problems.length;
    await p.click('#logout-btn');
    await p.locator('#login').waitFor({ state: 'visible' });
    // the reload after signing out aborts whatever the old page still had in flight
    for (let i = problems.length - 1; i >= seen; i--) if (problems[i].endsWith('net::ERR_ABORTED')) problems.splice(i, 1);
  } finally {
    expectRefusal = false;
    await p.context().close();
  }
  const a = await page(1280, 800);
  try {
    await a.goto('/#users');
    await a.locator('#users-list td', { hasText: new RegExp(`^${v.username}$`) }).waitFor();
    await a.click(`text=Disable ${v.username}`);
    await a.locator(`text=Enable ${v.username}`).waitFor();
    assert.equal(sql(`SELECT disabled FROM users WHERE username = '${v.username}'`), 't');
    await a.screenshot({ path: path.join(artifacts, 'users.png'), fullPage: true });
  } finally {
    await a.context().close();
  }
  assert.deepEqual(problems, []);
});

test('notifications: a mention by someone else raises the bell live; mark read and mark all read in its panel; Home folds repeats', { skip }, async () => {
  const bob = await newUser('user');
  const alice = await newUser('user');
  for (const u of [bob, alice]) assert.equal((await api('POST', `/api/v1/projects/${project}/members`, { username: u.username })).status, 201);
  const A = authHeader(alice.token);
  const p = await page(1280, 800, bob.token);
  try {
    await p.goto(`/#/${project}/home`);
    await p.waitForSelector('#live.is-live');
    await p.waitForSelector('#notif[data-live="live"]');
    assert.ok(await p.locator('#notif-count').isHidden(), 'no unread notifications yet');
    // someone else mentions bob: the count goes up without a reload
    const bead = await newBead(project, { title: 'Bell ringer' }, A);
    const c = await api('POST', `/api/v1/beads/${bead.id}/comments`, { content: `@${bob.username} can you review this?` }, A);
    assert.equal(c.status, 201, c.text);
    await p.waitForSelector('#notif-count:visible:has-text("1")');
    assert.equal(await p.getAttribute('#notif-btn', 'aria-label'), 'Notifications, 1 unread');
    // Home's activity: alice's three beads are one line, "× 3", live too
    for (let i = 0; i < 2; i++) await newBead(project, { title: `More work ${i}` }, A);
    await p.locator('#home-activity .act', { hasText: `${alice.username} created` }).locator('.agg', { hasText: '× 3' }).waitFor();
    await p.screenshot({ path: path.join(artifacts, 'ui-activity-1280x800.png') });
    // the panel lists it; Mark read takes the count away
    await p.click('#notif-btn');
    await p.waitForSelector('#notif-panel:visible');
    const item = p.locator('#notif-list .notif-item.unread', { hasText: `${alice.username} mentioned you on ${bead.id}` });
    await item.waitFor();
    assert.match(await item.textContent(), /can you review this\?/);
    await p.screenshot({ path: path.join(artifacts, 'ui-notifications-1280x800.png') });
    await item.getByRole('button', { name: /^Mark read/ }).click();
    await p.waitForSelector('#notif-count', { state: 'hidden' });
    assert.equal(await p.locator('#notif-list .notif-item.unread').count(), 0);
    // two more arrive while the panel is open; Mark all read clears them
    for (const n of [1, 2]) await api('POST', `/api/v1/beads/${bead.id}/comments`, { content: `@${bob.username} ping ${n}` }, A);
    await p.waitForSelector('#notif-count:visible:has-text("2")');
    await p.locator('#notif-list .notif-item.unread').nth(1).waitFor();
    await p.click('#notif-all');
    await p.waitForSelector('#notif-count', { state: 'hidden' });
    assert.equal(sql(`SELECT count(*) FILTER (WHERE status = 'unread') || '/' || count(*) FROM notifications WHERE user_id = ${bob.id}`), '0/3');
    // Escape closes the panel and gives the focus back to the bell
    await p.keyboard.press('Escape');
    await p.waitForSelector('#notif-panel', { state: 'hidden' });
    assert.equal(await p.evaluate(() => document.activeElement.id), 'notif-btn');
    // the preferences form in Account: a bad time zone is shown at the field, a good one saved
    await p.goto('/#account');
    await p.waitForSelector('#np-kinds input[value="comment.mention"]:checked');
    await p.fill('#np-timezone', 'Mars/Olympus');
    expectRefusal = '/api/v1/notifications/preferences';
    await p.click('#np-form button[type="submit"]');
    await p.waitForSelector('#np-timezone-err:visible');
    expectRefusal = null;
    await p.fill('#np-timezone', 'Europe/Paris');
    await p.uncheck('#np-kinds input[value="bead.status_change"]');
    await p.click('#np-form button[type="submit"]');
    await p.waitForSelector('#np-done:visible');
    const prefs = await api('GET', '/api/v1/notifications/preferences', undefined, authHeader(bob.token));
    assert.equal(prefs.body.timezone, 'Europe/Paris');
    assert.deepEqual(prefs.body.subscribed_events, ['bead.assigned', 'decision.created', 'bead.created', 'comment.mention']);
  } finally {
    expectRefusal = null;
    await p.context().close();
  }
  assert.deepEqual(problems, []);
});

test('budgets: bars on Home and in the drawer, live as money is spent; set through the forms; a viewer sees no form', { skip }, async () => {
  const p = await newProject({ name: 'Budget UI project' });
  const b = await newBead(p, { title: 'Spends money' });
  let r = await api('PUT', `/api/v1/projects/${p}/budget`, { limit_usd: 1, monthly_limit_usd: 0.5 });
  assert.equal(r.status, 200, r.text);
  // Spending as an executor records it: a run that holds its lease (so Ralph leaves it alone),
  // its LLM calls accounted by loom_llm_call_record, and one call in flight reserved.
  const rid = sql(`INSERT INTO runs (bead_id, project_id, persona_name, priority, state, attempt, lease_owner, lease_expires_at, started_at)
                   VALUES ('${b.id}', '${p}', 'ceo', 2, 'running', 1, 'ui-test', now() + interval '1 hour', now()) RETURNING id`).split('\n')[0];
  const spend = (usd) => sql(`SELECT loom_llm_call_record('{"run_id": ${rid}, "cost_usd": ${usd}, "status": "ok", "requested_model": "ui-test"}'::jsonb)`);
  spend(0.42);
  sql(`INSERT INTO budget_reservations (project_id, bead_id, run_id, owner, amount_usd) VALUES ('${p}', '${b.id}', ${rid}, 'ui-test', 0.05)`);
  const width = (loc, cls) => loc.locator(`rect.${cls}`).getAttribute('width').then((w) => parseFloat(w));
  const pg = await page(1280, 800);
  try {
    await pg.goto(`/#/${p}/home`);
    await pg.waitForSelector('#live.is-live');
    const total = pg.locator('#home-budget .budget[data-scope="total"]');
    const monthly = pg.locator('#home-budget .budget[data-scope="monthly"]');
    const totalBar = total.getByRole('progressbar');
    const monthlyBar = monthly.getByRole('progressbar');
    await totalBar.waitFor();
    assert.equal(await totalBar.getAttribute('aria-valuenow'), '42');
    assert.equal(await totalBar.getAttribute('aria-valuemin'), '0');
    assert.equal(await totalBar.getAttribute('aria-valuemax'), '100');
    assert.equal(await totalBar.getAttribute('aria-labelledby').then((id) => pg.textContent(`#${id}`)), 'All time');
    assert.match(await total.textContent(), /\$0\.42 of \$1\.00 spent \(42 %\) \+ \$0\.05 reserved/);
    assert.match(await totalBar.getAttribute('class'), /lvl-ok/);
    assert.equal(Math.round(await width(totalBar, 'budget-spent')), 42);
    assert.equal(Math.round(await width(totalBar, 'budget-reserved')), 47, 'the reserved part follows the spent part');
    // the month: 84 % of $0.50 is a warning
    assert.equal(await monthlyBar.getAttribute('aria-valuenow'), '84');
    assert.match(await monthly.textContent(), /\$0\.42 of \$0\.50 spent \(84 %\)/);
    assert.match(await monthlyBar.getAttribute('class'), /lvl-warn/);
    // live: another call uses the month's budget up (budget.exceeded), no reload
    spend(0.1);
    await pg.waitForSelector('#home-budget .budget[data-scope="monthly"] [role=progressbar].lvl-over');
    assert.equal(await monthlyBar.getAttribute('aria-valuenow'), '100');
    assert.match(await monthly.textContent(), /\$0\.52 of \$0\.50 spent \(104 %\).*used up/);
    assert.equal(await totalBar.getAttribute('aria-valuenow'), '52');
    await pg.screenshot({ path: path.join(artifacts, 'ui-budget-1280x800.png') });
    // the form: a bad amount is the API's message at its field, and changes nothing
    expectRefusal = `/api/v1/projects/${p}/budget`;
    await pg.fill('#bf-limit', '-1');
    await pg.click('#budget-form button[type="submit"]');
    await pg.waitForSelector('#bf-limit-err:visible');
    expectRefusal = null;
    assert.match(await pg.textContent('#bf-limit-err'), /^limit_usd: must be an amount in USD/);
    assert.equal(await pg.getAttribute('#bf-limit', 'aria-invalid'), 'true');
    assert.equal(Number((await api('GET', `/api/v1/projects/${p}/budget`)).body.limit_usd), 1);
    // raise the all-time limit, clear the monthly one
    await pg.fill('#bf-limit', '2');
    await pg.fill('#bf-monthly', '');
    await pg.click('#budget-form button[type="submit"]');
    await pg.waitForSelector('#budget-done:visible');
    r = await api('GET', `/api/v1/projects/${p}/budget`);
    assert.equal(Number(r.body.limit_usd), 2);
    assert.equal(r.body.monthly_limit_usd, null);
    assert.equal(await totalBar.getAttribute('aria-valuenow'), '26');
    assert.match(await monthly.textContent(), /\$0\.52 spent \+ \$0\.05 reserved · no limit/);
    assert.equal(await monthly.getByRole('progressbar').count(), 0);
    // the bead in the drawer: spent, no limit; set one
    await pg.goto(`/#/${p}/kanban/${b.id}`);
    await pg.waitForSelector('#dr-budget-section:visible');
    assert.match(await pg.textContent('#dr-budget'), /\$0\.52 spent \+ \$0\.05 reserved · no limit/);
    await pg.fill('#db-limit', '3');
    await pg.click('#dr-budget-form button[type="submit"]');
    const beadBar = pg.locator('#dr-budget').getByRole('progressbar');
    await beadBar.waitFor();
    assert.equal(await beadBar.getAttribute('aria-valuenow'), '17.3');
    assert.match(await pg.textContent('#dr-budget'), /\$0\.52 of \$3\.00 spent \(17\.3 %\)/);
    assert.equal(Number((await api('GET', `/api/v1/beads/${b.id}/budget`)).body.limit_usd), 3);
    await pg.screenshot({ path: path.join(artifacts, 'ui-drawer-budget-1280x800.png') });
  } finally {
    expectRefusal = null;
    await pg.context().close();
  }
  // a phone: the bars and the form fit
  const phone = await page(390, 844);
  try {
    await phone.goto(`/#/${p}/home`);
    await phone.locator('#home-budget [role=progressbar]').waitFor();
    await phone.waitForSelector('#budget-form:visible');
    const wide = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(wide <= 0, `Home with the budget scrolls sideways by ${wide}px at 390px`);
    await phone.screenshot({ path: path.join(artifacts, 'ui-budget-390x844.png'), fullPage: true });
  } finally {
    await phone.context().close();
  }
  // a viewer sees the bars, not the forms
  const v = await newUser('viewer');
  assert.equal((await api('POST', `/api/v1/projects/${p}/members`, { username: v.username })).status, 201);
  const vp = await page(1280, 800, v.token);
  try {
    await vp.goto(`/#/${p}/home`);
    await vp.locator('#home-budget [role=progressbar]').waitFor();
    assert.ok(await vp.locator('#budget-form').isHidden(), 'a viewer has no budget form');
    await vp.goto(`/#/${p}/kanban/${b.id}`);
    await vp.locator('#dr-budget [role=progressbar]').waitFor();
    assert.ok(await vp.locator('#dr-budget-form').isHidden(), 'a viewer has no bead budget form');
  } finally {
    await vp.context().close();
    sql(`DELETE FROM budget_reservations WHERE run_id = ${rid}`);
    sql(`UPDATE runs SET state = 'canceled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = ${rid}`);
  }
  assert.deepEqual(problems, []);
});
