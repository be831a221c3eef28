// The activity feed and notifications, through nginx against the real stack: events become
// activities (repeats within five minutes fold into one row, not across: the clock is faked in
// SQL), the feed's filters and its stream; notifications for assignments, @mentions, decisions
// and P0 beads, with preferences (kinds, minimum priority, quiet hours, off); marking read;
// nobody reads, marks or streams anyone else's.  Every stream is closed in a finally and every
// wait has a deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ADMIN_TOKEN, BASE, api, assertError, authHeader, newBead, newProject, newUser, sql, sleep } from './lib.mjs';

const admin = { token: ADMIN_TOKEN, username: 'admin' };

// ---- a small SSE client ------------------------------------------------------------------

function sseOpen(urlPath, headers = authHeader()) {
  return new Promise((resolve, reject) => {
    const req = http.get(BASE + urlPath, { headers, agent: false }, (res) => {
      const s = { status: res.statusCode, buf: '', events: [], close: () => req.destroy() };
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        s.buf += chunk;
        let i;
        while ((i = s.buf.indexOf('\n\n')) >= 0) {
          const block = s.buf.slice(0, i);
          s.buf = s.buf.slice(i + 2);
          const ev = {};
          for (const line of block.split('\n')) {
            const m = /^([a-z]+): ?(.*)$/.exec(line);
            if (m && m[1] !== 'retry') ev[m[1]] = m[1] === 'data' && ev.data !== undefined ? `${ev.data}\n${m[2]}` : m[2];
          }
          if (ev.event) s.events.push({ ...ev, json: ev.data ? JSON.parse(ev.data) : null });
        }
      });
      resolve(s);
    });
    req.on('error', reject);
    req.setTimeout(20000, () => req.destroy(new Error('stream request timed out')));
  });
}

async function waitFor(pred, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > until) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

const connected = (s) => waitFor(() => s.events.find((e) => e.event === 'connected'), 5000, 'connected');
const named = (s, name) => s.events.filter((e) => e.event === name);

async function feed(query, headers) {
  const r = await api('GET', `/api/v1/activity-feed?${query}`, undefined, headers);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

// A project of the admin's with these users as members.
async function projectWith(...users) {
  const p = await newProject();
  for (const u of users) {
    const r = await api('POST', `/api/v1/projects/${p}/members`, { username: u.username });
    assert.equal(r.status, 201, r.text);
  }
  return p;
}

async function inbox(user, query = '') {
  const r = await api('GET', `/api/v1/notifications${query}`, undefined, authHeader(user.token));
  assert.equal(r.status, 200, r.text);
  return { list: r.body, unread: Number(r.headers.get('x-unread-count')) };
}

const setPrefs = async (user, prefs) => {
  const r = await api('PUT', '/api/v1/notifications/preferences', prefs, authHeader(user.token));
  assert.equal(r.status, 200, r.text);
  return r.body;
};

const comment = async (user, bead, content) => {
  const r = await api('POST', `/api/v1/beads/${bead}/comments`, { content }, authHeader(user.token));
  assert.equal(r.status, 201, r.text);
  return r.body;
};

// ---- the activity feed -------------------------------------------------------------------

test('activity: repeats within five minutes fold into one row, not across; other kinds stay apart', async () => {
  const member = await newUser('user');
  const p = await projectWith(member);
  const beads = [];
  for (let i = 0; i < 3; i++) beads.push(await newBead(p, { title: `fold ${i}` }));
  let rows = await feed(`project_id=${p}&event_type=bead.created`);
  assert.equal(rows.length, 1, JSON.stringify(rows));
  const a = rows[0];
  assert.equal(a.aggregation_count, 3);
  assert.equal(a.is_aggregated, true);
  assert.equal(a.actor_id, 'admin');
  assert.equal(a.actor_type, 'user');
  assert.equal(a.action, 'created');
  assert.equal(a.resource_type, 'bead');
  assert.equal(a.resource_id, beads[2].id, 'the row names the latest bead');
  assert.equal(a.resource_title, 'fold 2');
  assert.deepEqual(a.metadata.resource_ids, beads.map((b) => b.id));
  assert.equal(a.aggregation_key, `bead.created|${p}|admin`);
  assert.equal(a.visibility, 'project');
  assert.equal(a.event_id, Number(sql(`SELECT max(id) FROM events WHERE type = 'bead.created' AND project_id = '${p}'`)));
  // another actor in the same window is a row of its own
  await newBead(p, { title: 'by the member' }, authHeader(member.token));
  rows = await feed(`project_id=${p}&event_type=bead.created`);
  assert.deepEqual(rows.map((r) => [r.actor_id, r.aggregation_count]), [[member.username, 1], ['admin', 3]]);
  // six minutes later (the row's first occurrence moved back), the next one starts a new row
  sql(`UPDATE activities SET created_at = created_at - interval '6 minutes' WHERE id = ${a.id}`);
  const late = await newBead(p, { title: 'after the window' });
  rows = await feed(`project_id=${p}&event_type=bead.created&agent_id=nobody`);
  assert.deepEqual(rows, []);
  rows = (await feed(`project_id=${p}&event_type=bead.created`)).filter((r) => r.actor_id === 'admin');
  assert.deepEqual(rows.map((r) => [r.resource_id, r.aggregation_count, r.is_aggregated]), [[late.id, 1, false], [beads[2].id, 3, true]]);
  // a status change is never folded: one row each
  await api('PATCH', `/api/v1/beads/${beads[0].id}`, { status: 'in_progress' });
  await api('PATCH', `/api/v1/beads/${beads[0].id}`, { status: 'blocked' });
  rows = await feed(`bead_id=${beads[0].id}&event_type=bead.status_change`);
  assert.deepEqual(rows.map((r) => [r.metadata.from, r.metadata.to, r.aggregation_count]), [['in_progress', 'blocked', 1], ['open', 'in_progress', 1]]);
  // a bead.updated that only changed status is said by bead.status_change: no row of its own
  assert.deepEqual(await feed(`bead_id=${beads[0].id}&event_type=bead.updated`), []);
  // run.* and log.* events are not activities
  sql(`SELECT loom_event('log.line', '${p}', NULL, 'test', '{"msg":"x"}')`);
  assert.equal(sql(`SELECT count(*) FROM activities WHERE project_id = '${p}' AND event_type LIKE 'log.%'`), '0');
});

test('activity feed: filters, paging, isolation, and bad input is a 400 that changes nothing', async () => {
  const outsider = await newUser('user');
  const p = await newProject();
  const q = await newProject();
  const b = await newBead(p, { title: 'filtered' });
  await newBead(q);
  await comment(admin, b.id, 'a note');
  const agent = (await api('GET', `/api/v1/agents?project_id=${p}`)).body[0];
  assert.ok(agent, 'the project has default agents');
  const to = agent.status === 'paused' ? 'idle' : 'paused';
  assert.equal((await api('PATCH', `/api/v1/agents/${agent.id}`, { status: to })).status, 200);

  const all = await feed(`project_id=${p}`);
  assert.ok(all.every((r) => r.project_id === p));
  assert.ok(all.some((r) => r.event_type === 'project.created'));
  for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].updated_at >= all[i].updated_at, 'newest first');
  const byBead = await feed(`bead_id=${b.id}`);
  assert.deepEqual(byBead.map((r) => r.event_type).sort(), ['bead.created', 'comment.created']);
  const c = byBead.find((r) => r.event_type === 'comment.created');
  assert.equal(c.resource_type, 'comment');
  assert.equal(c.resource_title, 'filtered');
  assert.equal(c.metadata.excerpt, 'a note');
  const byAgent = await feed(`agent_id=${agent.id}`);
  assert.ok(byAgent.length >= 1 && byAgent.every((r) => r.agent_id === agent.id));
  assert.ok(byAgent.some((r) => r.event_type === 'agent.status_change' && r.metadata.status === to));
  assert.deepEqual(await feed(`project_id=${p}&since=2999-01-01T00:00:00Z`), []);
  assert.ok((await feed(`project_id=${p}&since=2000-01-01`)).length === all.length);
  // paging
  const page = await api('GET', `/api/v1/activity-feed?project_id=${p}&limit=1`);
  assert.equal(page.body.length, 1);
  assert.equal(page.headers.get('x-next-offset'), '1');
  const page2 = await api('GET', `/api/v1/activity-feed?project_id=${p}&limit=1&offset=1`);
  assert.equal(page2.body[0].id, all[1].id);
  // a non-member sees nothing of p, a member does
  const h = authHeader(outsider.token);
  assert.deepEqual(await feed(`project_id=${p}`, h), []);
  assert.ok((await feed('limit=1000', h)).every((r) => r.project_id !== p && r.project_id !== q));
  assert.equal((await api('POST', `/api/v1/projects/${p}/members`, { username: outsider.username })).status, 201);
  assert.ok((await feed(`project_id=${p}`, h)).length >= all.length);

  const before = sql('SELECT count(*) || \'/\' || max(id) FROM activities');
  for (const [query, fragment] of [
    ['project_id=Not%20Valid', 'project_id'], ['bead_id=zz', 'bead_id'], ['event_type=BEAD', 'event_type'],
    ['agent_id=%01', 'agent_id'], ['since=yesterday', 'since'], ['since=2026-13-45', 'since'],
    ['limit=0', 'limit'], ['limit=5000', 'limit'], ['offset=-1', 'offset'], ['stauts=open', 'stauts'],
  ]) {
    assertError(await api('GET', `/api/v1/activity-feed?${query}`), 400, fragment);
  }
  assert.equal(sql('SELECT count(*) || \'/\' || max(id) FROM activities'), before);
});

test('activity stream: "activity" events only, the folded row again as it grows, by project, resumable', async () => {
  const p = await newProject();
  const q = await newProject();
  const s = await sseOpen(`/api/v1/activity-feed/stream?project_id=${p}`);
  let s2;
  try {
    assert.equal(s.status, 200);
    await connected(s);
    const b1 = await newBead(p, { title: 'first' });
    await newBead(q, { title: 'elsewhere' });
    const b2 = await newBead(p, { title: 'second' });
    sql(`SELECT loom_event('log.line', '${p}', NULL, 'test', '{"msg":"not an activity"}')`);
    await comment(admin, b1.id, 'streamed');
    const acts = await waitFor(() => {
      const a = named(s, 'activity');
      return a.some((e) => e.json.event_type === 'comment.created') && a;
    }, 3000, 'the comment activity');
    assert.deepEqual(s.events.map((e) => e.event).filter((n) => n !== 'connected' && n !== 'activity'), []);
    assert.ok(acts.every((e) => e.json.project_id === p));
    // a folded row comes again as it grows (a state already overtaken when loom-sse reads it
    // is skipped): its counts only go up, and the newest says both beads
    const created = acts.filter((e) => e.json.event_type === 'bead.created');
    assert.ok(created.length >= 1 && created.every((e) => e.json.id === created[0].json.id));
    for (let i = 1; i < created.length; i++) assert.ok(created[i].json.aggregation_count > created[i - 1].json.aggregation_count);
    assert.deepEqual([created.at(-1).json.resource_id, created.at(-1).json.aggregation_count], [b2.id, 2]);
    assert.deepEqual(created.at(-1).json.metadata.resource_ids, [b1.id, b2.id]);
    // the SSE id is the event's (the newest folded in): a resume continues after it, also when
    // the ring no longer holds the rest (5000 log lines later: read from the table)
    const first = acts[0].id;
    s.close();
    sql(`SELECT count(loom_event('log.line', '${p}', NULL, 'test', '{}')) FROM generate_series(1, 5000)`);
    const last = await newBead(p, { title: 'after the flood' });
    s2 = await sseOpen(`/api/v1/activity-feed/stream?project_id=${p}`, { ...authHeader(), 'Last-Event-ID': first });
    await waitFor(() => named(s2, 'activity').some((e) => e.json.resource_id === last.id), 10000, 'the resumed activities');
    await sleep(200);
    // every activity whose newest event is after the resume point arrives (from the ring, an
    // overtaken state may come too, as it would have live), in id order, none twice
    const got = named(s2, 'activity').map((e) => Number(e.id));
    const want = sql(`SELECT string_agg(event_id::text, ',' ORDER BY event_id) FROM activities WHERE project_id = '${p}' AND event_id > ${first}`);
    for (const id of want.split(',')) assert.ok(got.includes(Number(id)), `activity event ${id} missing from ${got}`);
    for (let i = 0; i < got.length; i++) assert.ok(got[i] > (i ? got[i - 1] : Number(first)), `${got} out of order`);
    assert.ok(named(s2, 'activity').every((e) => e.json.project_id === p));
    assert.equal(named(s2, 'activity').at(-1).json.aggregation_count, 3);
  } finally {
    s.close();
    s2?.close();
  }
});

// ---- notifications -----------------------------------------------------------------------

test('notifications: assignment and @mention, never for your own actions or outside your projects', async () => {
  const alice = await newUser('user');
  const bob = await newUser('user');
  const carol = await newUser('user'); // not a member
  const p = await projectWith(alice, bob);
  const A = authHeader(alice.token);
  const b = await newBead(p, { title: 'needs an owner' }, A);
  let r = await api('PATCH', `/api/v1/beads/${b.id}`, { assigned_to: bob.username }, A);
  assert.equal(r.status, 200, r.text);
  let box = await inbox(bob);
  assert.equal(box.unread, 1);
  const n = box.list[0];
  assert.equal(n.event_type, 'bead.assigned');
  assert.equal(n.priority, 'high');
  assert.equal(n.status, 'unread');
  assert.equal(n.read_at, null);
  assert.equal(n.title, `${b.id} assigned to you: needs an owner`);
  assert.equal(n.link, `#/${p}/kanban/${b.id}`);
  assert.equal(n.project_id, p);
  assert.equal(n.bead_id, b.id);
  assert.equal(n.user_id, bob.id);
  assert.equal(typeof n.activity_id, 'number');
  assert.equal((await feed(`bead_id=${b.id}&event_type=bead.assigned`))[0].id, n.activity_id);

  await comment(alice, b.id, `@${bob.username}, please look; cc @${alice.username} @${carol.username} @nobody-here.`);
  box = await inbox(bob);
  assert.equal(box.unread, 2);
  assert.equal(box.list[0].event_type, 'comment.mention');
  assert.equal(box.list[0].title, `${alice.username} mentioned you on ${b.id}`);
  assert.match(box.list[0].message, /please look/);
  assert.equal(box.list[0].priority, 'normal');
  assert.deepEqual((await inbox(alice)).list, [], 'nothing for your own actions');
  assert.deepEqual((await inbox(carol)).list, [], 'nothing from a project you cannot see');
  assert.equal(sql(`SELECT string_agg(mentioned_username, ',') FROM comment_mentions m JOIN bead_comments c ON c.id = m.comment_id WHERE c.bead_id = '${b.id}'`), bob.username);

  // your bead changed state (someone else did it)
  assert.equal((await api('PATCH', `/api/v1/beads/${b.id}`, { status: 'blocked' }, A)).status, 200);
  box = await inbox(bob);
  assert.equal(box.list[0].event_type, 'bead.status_change');
  assert.equal(box.list[0].title, `${b.id} is now blocked: needs an owner`);
  // the same change by bob himself: nothing new
  assert.equal((await api('PATCH', `/api/v1/beads/${b.id}`, { status: 'open' }, authHeader(bob.token))).status, 200);
  assert.equal((await inbox(bob)).unread, 3);
});

test('notifications: P0 beads reach every member, decisions the members who may decide', async () => {
  const alice = await newUser('user');
  const bob = await newUser('user');
  const vera = await newUser('viewer');
  const p = await projectWith(alice, bob, vera);
  const A = authHeader(alice.token);
  const urgent = await newBead(p, { title: 'prod is down', priority: 0 }, A);
  for (const u of [bob, vera]) {
    const [n] = (await inbox(u)).list;
    assert.equal(n.event_type, 'bead.created');
    assert.equal(n.priority, 'critical');
    assert.equal(n.title, `P0 bead ${urgent.id}: prod is down`);
  }
  // the admin created the project: a member too
  assert.ok((await inbox(admin)).list.some((n) => n.bead_id === urgent.id));
  const d = await api('POST', `/api/v1/beads/${urgent.id}/escalate`, { reason: 'roll back or fix forward?' }, A);
  assert.equal(d.status, 201, d.text);
  const bobs = (await inbox(bob)).list.filter((n) => n.event_type === 'decision.created');
  assert.equal(bobs.length, 1);
  assert.equal(bobs[0].priority, 'critical', 'a P0 decision');
  assert.equal(bobs[0].message, 'roll back or fix forward?');
  assert.equal(bobs[0].link, `#/${p}/decisions`);
  assert.deepEqual((await inbox(vera)).list.filter((n) => n.event_type === 'decision.created'), [], 'a viewer cannot decide');
  // created already assigned to someone: one notification, not two
  const mine = await newBead(p, { title: 'yours, urgently', priority: 0, assigned_to: bob.username }, A);
  assert.deepEqual((await inbox(bob)).list.filter((n) => n.bead_id === mine.id).map((n) => [n.event_type, n.priority]), [['bead.assigned', 'critical']]);
});

test('notifications: preferences (kinds, minimum priority, quiet hours, off) are respected', async () => {
  const alice = await newUser('user');
  const bob = await newUser('user');
  const p = await projectWith(alice, bob);
  const A = authHeader(alice.token);
  const B = authHeader(bob.token);
  const defaults = await api('GET', '/api/v1/notifications/preferences', undefined, B);
  assert.deepEqual(defaults.body, {
    enable_in_app: true, subscribed_events: [], min_priority: 'normal', quiet_hours_start: null,
    quiet_hours_end: null, timezone: 'UTC', project_filters: [], digest_mode: 'realtime',
  });
  const b = await newBead(p, { title: 'prefs' }, A);
  const count = async () => (await inbox(bob)).list.length;

  // only assignments: a mention is recorded but not notified
  assert.equal((await setPrefs(bob, { subscribed_events: ['bead.assigned'] })).subscribed_events[0], 'bead.assigned');
  await comment(alice, b.id, `hey @${bob.username}`);
  assert.equal(await count(), 0);
  assert.equal(sql(`SELECT notified_at IS NULL FROM comment_mentions WHERE mentioned_username = '${bob.username}'`), 't');
  await api('PATCH', `/api/v1/beads/${b.id}`, { assigned_to: bob.username }, A);
  assert.equal(await count(), 1);

  // minimum priority critical: a P2 assignment (high) is dropped, a P0 one (critical) arrives
  await setPrefs(bob, { subscribed_events: [], min_priority: 'critical' });
  await newBead(p, { title: 'p2 for bob', assigned_to: bob.username }, A);
  assert.equal(await count(), 1);
  const p0 = await newBead(p, { title: 'p0 for bob', priority: 0, assigned_to: bob.username }, A);
  assert.equal((await inbox(bob)).list[0].bead_id, p0.id);
  await setPrefs(bob, { min_priority: 'low' });

  // projects: only notifications from the listed ones
  const other = await newProject({}, A);
  await setPrefs(bob, { project_filters: [other] });
  await comment(alice, b.id, `again @${bob.username}`);
  assert.equal(await count(), 2);
  await setPrefs(bob, { project_filters: [] });

  // quiet hours around now: stored (unread, marked) but not pushed; after them, pushed again
  const s = await sseOpen('/api/v1/notifications/stream', B);
  try {
    await connected(s);
    const now = new Date();
    const hhmm = (d) => d.toISOString().slice(11, 16);
    const q = await setPrefs(bob, { quiet_hours_start: hhmm(new Date(now - 3600e3)), quiet_hours_end: hhmm(new Date(+now + 3600e3)), timezone: 'UTC' });
    assert.equal(q.quiet_hours_start, hhmm(new Date(now - 3600e3)));
    await comment(alice, b.id, `quiet please @${bob.username}`);
    const [held] = (await inbox(bob)).list;
    assert.match(held.message, /quiet please/);
    assert.equal(held.metadata.quiet_hours, true);
    assert.equal(held.status, 'unread');
    await setPrefs(bob, { quiet_hours_start: null, quiet_hours_end: null });
    await comment(alice, b.id, `loud again @${bob.username}`);
    await waitFor(() => named(s, 'notification').length >= 1, 3000, 'the pushed notification');
    await sleep(200);
    assert.deepEqual(named(s, 'notification').map((e) => e.json.data.notification.message), [`loud again @${bob.username}`]);
  } finally {
    s.close();
  }

  // off: nothing at all
  const before = await count();
  await setPrefs(bob, { enable_in_app: false });
  await comment(alice, b.id, `@${bob.username} ?`);
  assert.equal(await count(), before);

  // bad preferences are 400s naming the field, and change nothing
  const saved = (await api('GET', '/api/v1/notifications/preferences', undefined, B)).body;
  for (const [body, fragment] of [
    [{ subscribed_events: ['bead.exploded'] }, 'subscribed_events[0]'], [{ min_priority: 'urgent' }, 'min_priority'],
    [{ quiet_hours_start: '25:00', quiet_hours_end: '07:00' }, 'quiet_hours_start'], [{ quiet_hours_end: '7am' }, 'quiet_hours_end'],
    [{ quiet_hours_start: '22:00' }, 'both'], [{ timezone: 'Mars/Olympus' }, 'timezone'],
    [{ project_filters: ['Not Valid'] }, 'project_filters[0]'], [{ digest_mode: 'daily' }, 'digest_mode'],
    [{ enable_in_app: 'yes' }, 'enable_in_app'], [{ volume: 11 }, 'volume'], [{}, 'no fields'],
  ]) {
    assertError(await api('PUT', '/api/v1/notifications/preferences', body, B), 400, fragment);
  }
  assertError(await api('PATCH', '/api/v1/notifications/preferences', '{"min_priority":', B), 400);
  assert.deepEqual((await api('GET', '/api/v1/notifications/preferences', undefined, B)).body, saved);
});

test('notifications: mark read and mark all read; someone else\'s are a 404 and stay unread', async () => {
  const alice = await newUser('user');
  const bob = await newUser('user');
  const p = await projectWith(alice, bob);
  const b = await newBead(p, { title: 'read me' }, authHeader(alice.token));
  for (let i = 0; i < 3; i++) await comment(alice, b.id, `ping ${i} @${bob.username}`);
  const B = authHeader(bob.token);
  let box = await inbox(bob);
  assert.equal(box.unread, 3);
  const [first, second] = box.list;

  for (const [who, h] of [['alice', authHeader(alice.token)], ['the admin', authHeader()]]) {
    assertError(await api('POST', `/api/v1/notifications/${first.id}/read`, undefined, h), 404, `notification ${first.id} not found`);
    assert.ok(!(await inbox({ token: h.Authorization.slice(7) })).list.some((n) => n.id === first.id), `${who} does not list it`);
  }
  assert.equal(sql(`SELECT status FROM notifications WHERE id = ${first.id}`), 'unread');
  assert.equal((await api('POST', '/api/v1/notifications/mark-all-read', undefined, authHeader(alice.token))).status, 200);
  assert.equal((await inbox(bob)).unread, 3, 'marking all of yours read leaves others alone');

  let r = await api('POST', `/api/v1/notifications/${first.id}/read`, undefined, B);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'read');
  assert.ok(r.body.read_at);
  const again = await api('POST', `/api/v1/notifications/${first.id}/read`, {}, B);
  assert.equal(again.body.read_at, r.body.read_at, 'reading again changes nothing');
  box = await inbox(bob);
  assert.equal(box.unread, 2);
  assert.deepEqual((await inbox(bob, '?status=read')).list.map((n) => n.id), [first.id]);
  assert.deepEqual((await inbox(bob, '?status=unread&limit=1')).list.map((n) => n.id), [second.id]);

  r = await api('POST', '/api/v1/notifications/mark-all-read', {}, B);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, { marked: 2, unread_count: 0 });
  box = await inbox(bob);
  assert.equal(box.unread, 0);
  assert.ok(box.list.length === 3 && box.list.every((n) => n.status === 'read'));
  assert.deepEqual((await inbox(bob, '?status=unread')).list, []);
  assert.equal((await inbox(bob, '?status=all')).list.length, 3);

  for (const [method, path, body, status, fragment] of [
    ['POST', '/api/v1/notifications/abc/read', undefined, 400, 'notification id'],
    ['POST', '/api/v1/notifications/0/read', undefined, 400, 'notification id'],
    ['POST', '/api/v1/notifications/99999999/read', undefined, 404, 'not found'],
    ['POST', `/api/v1/notifications/${first.id}/read`, { status: 'unread' }, 400, 'status'],
    ['POST', '/api/v1/notifications/mark-all-read', { all: true }, 400, 'all'],
    ['GET', '/api/v1/notifications?status=new', undefined, 400, 'status'],
    ['GET', '/api/v1/notifications?limit=0', undefined, 400, 'limit'],
    ['GET', '/api/v1/notifications?user_id=1', undefined, 400, 'user_id'],
  ]) {
    assertError(await api(method, path, body, B), status, fragment);
  }
  assert.equal(sql(`SELECT count(*) FILTER (WHERE status = 'read') || '/' || count(*) FROM notifications WHERE user_id = ${bob.id}`), '3/3');
  assertError(await api('GET', '/api/v1/notifications', undefined, { Authorization: null }), 401);
});

test('notifications stream: only your own, and never on anyone else\'s stream or in their events', async () => {
  const alice = await newUser('user');
  const bob = await newUser('user');
  const p = await projectWith(alice, bob);
  const A = authHeader(alice.token);
  const B = authHeader(bob.token);
  const b = await newBead(p, { title: 'streams' }, A);
  // a user in no project at all is signed in too: their stream opens
  const loner = await newUser('viewer');
  const alone = await sseOpen('/api/v1/notifications/stream', authHeader(loner.token));
  try {
    assert.equal(alone.status, 200);
    await connected(alone);
  } finally {
    alone.close();
  }
  assertError(await api('GET', '/api/v1/notifications/stream', undefined, { Authorization: null }), 401);
  const bobs = await sseOpen('/api/v1/notifications/stream', B);
  const alices = await sseOpen('/api/v1/notifications/stream', A);
  const adminAll = await sseOpen('/api/v1/events/stream');
  const adminFeed = await sseOpen('/api/v1/activity-feed/stream');
  const aliceAll = await sseOpen('/api/v1/events/stream', A);
  const streams = [bobs, alices, adminAll, adminFeed, aliceAll];
  try {
    await Promise.all(streams.map(connected));
    await comment(alice, b.id, `secret plan for @${bob.username}`);
    const ev = await waitFor(() => named(bobs, 'notification')[0], 3000, 'bob\'s notification');
    assert.equal(ev.json.type, 'notification');
    assert.equal(ev.json.project_id, null);
    assert.equal(ev.json.data.notification.event_type, 'comment.mention');
    assert.equal(ev.json.data.notification.user_id, bob.id);
    assert.equal(ev.json.data.unread_count, 1);
    // a later event every other stream sees: by then they would have had the notification
    await newBead(p, { title: 'sentinel' }, A);
    for (const s of [adminAll, aliceAll]) await waitFor(() => s.events.some((e) => e.event === 'bead.created' && Number(e.id) > Number(ev.id)), 3000, 'the sentinel');
    await waitFor(() => adminFeed.events.some((e) => Number(e.id) > Number(ev.id)), 3000, 'the sentinel activity');
    for (const s of [alices, adminAll, adminFeed, aliceAll]) {
      assert.deepEqual(s.events.filter((e) => e.event.startsWith('notification') || e.json?.type?.startsWith('notification')), []);
    }
    assert.ok(!alices.events.some((e) => e.event !== 'connected'), 'alice\'s own stream got nothing of bob\'s');
    // nor does anyone read it from the events table, the admin included: streams only
    for (const h of [authHeader(), A, B]) {
      const evs = await api('GET', '/api/v1/events?limit=1000', undefined, h);
      assert.ok(!evs.body.some((e) => e.type.startsWith('notification')), evs.text.slice(0, 300));
      const typed = await api('GET', '/api/v1/events?type=notification.read', undefined, h);
      assert.deepEqual(typed.body, []);
    }
    // marking read reaches bob's stream with the new count
    assert.equal((await api('POST', `/api/v1/notifications/${ev.json.data.notification.id}/read`, undefined, B)).status, 200);
    const read = await waitFor(() => named(bobs, 'notification.read')[0], 3000, 'notification.read');
    assert.deepEqual(read.json.data, { ids: [ev.json.data.notification.id], unread_count: 0 });
    // a resume from before it replays bob's own, and only to bob, also from the table
    sql(`SELECT count(loom_event('log.line', '${p}', NULL, 'test', '{}')) FROM generate_series(1, 5000)`);
    const again = await sseOpen(`/api/v1/notifications/stream?last_event_id=${Number(ev.id) - 1}`, B);
    const aliceAgain = await sseOpen(`/api/v1/notifications/stream?last_event_id=${Number(ev.id) - 1}`, A);
    streams.push(again, aliceAgain);
    await waitFor(() => named(again, 'notification.read').length === 1, 10000, 'the replay');
    assert.deepEqual(again.events.filter((e) => e.event !== 'connected').map((e) => e.id), [ev.id, read.id]);
    await comment(bob, b.id, `thanks @${alice.username}`);
    await waitFor(() => named(aliceAgain, 'notification').length === 1, 3000, 'alice\'s own');
    assert.ok(aliceAgain.events.every((e) => e.event === 'connected' || e.json.data.notification?.user_id === alice.id));
  } finally {
    streams.forEach((s) => s.close());
  }
});
