// End-to-end tests of the bead/project API through real nginx, libfcgi and PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, assertError, newProject, newBead, footprint, sql } from './lib.mjs';

test('health endpoints answer', async () => {
  let r = await api('GET', '/health/live');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'alive');
  r = await api('GET', '/health/ready');
  assert.equal(r.status, 200);
  r = await api('GET', '/health');
  assert.equal(r.status, 200);
  assert.equal(r.body.components.database.status, 'healthy');
  r = await api('GET', '/api/v1/health');
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.body).sort(), ['status', 'uptime_seconds', 'version']);
  assert.equal(typeof r.body.uptime_seconds, 'number');
});

test('project CRUD round trip, close and reopen', async () => {
  let r = await api('POST', '/api/v1/projects', { name: 'Round Trip Project', git_repo: 'https://example.invalid/x.git', context: { build_command: 'make' } });
  assert.equal(r.status, 201, r.text);
  const id = r.body.id;
  assert.match(id, /^round-trip-project/);
  assert.equal(r.body.status, 'open');
  assert.equal(r.body.context.build_command, 'make');

  r = await api('GET', `/api/v1/projects/${id}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.git_repo, 'https://example.invalid/x.git');

  r = await api('GET', '/api/v1/projects?limit=1000');
  assert.ok(r.body.some((p) => p.id === id));

  r = await api('PUT', `/api/v1/projects/${id}`, { description: 'now described', is_sticky: true, context: { build_command: null, test_command: 'make check' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.description, 'now described');
  assert.equal(r.body.is_sticky, true);
  assert.deepEqual(r.body.context, { test_command: 'make check' });

  const bead = await newBead(id);
  r = await api('GET', `/api/v1/projects/${id}/state`);
  assert.equal(r.body.open_beads, 1);
  assert.equal(r.body.can_close, false);

  assertError(await api('POST', `/api/v1/projects/${id}/close`, {}), 409, 'unfinished');
  r = await api('PATCH', `/api/v1/beads/${bead.id}`, { status: 'closed' });
  assert.equal(r.status, 200);
  r = await api('POST', `/api/v1/projects/${id}/close`, { comment: 'done' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'closed');
  assert.ok(r.body.closed_at);
  assertError(await api('POST', '/api/v1/beads', { project_id: id, title: 'late' }), 409, 'closed');
  r = await api('POST', `/api/v1/projects/${id}/reopen`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'reopened');
  assert.equal(r.body.closed_at, null);

  r = await api('DELETE', `/api/v1/projects/${id}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.beads_deleted, 1);
  assertError(await api('GET', `/api/v1/projects/${id}`), 404, 'not found');
  assertError(await api('GET', `/api/v1/beads/${bead.id}`), 404, 'not found');
});

test('bead CRUD round trip with every field', async () => {
  const p = await newProject();
  const a = await newBead(p, { title: 'first', description: 'the first', type: 'bug', priority: 0, tags: ['backend', 'qa'], context: { requires_persona: 'qa-engineer' }, due_date: '2026-12-31T00:00:00Z', estimated_time: 90, milestone_id: 'm1' });
  assert.equal(a.id, `${p}-1`);
  assert.equal(a.type, 'bug');
  assert.equal(a.priority, 0);
  assert.deepEqual(a.tags, ['backend', 'qa']);
  assert.equal(a.estimated_time, 90);
  assert.ok(a.due_date.startsWith('2026-12-31'));

  const b = await newBead(p, { title: 'second', blocked_by: [a.id] });
  const epic = await newBead(p, { title: 'epic', type: 'epic' });
  const c = await newBead(p, { title: 'child', parent: epic.id });

  let r = await api('GET', `/api/v1/beads/${a.id}`);
  assert.deepEqual(r.body.blocks, [b.id]);
  r = await api('GET', `/api/v1/beads/${epic.id}`);
  assert.deepEqual(r.body.children, [c.id]);

  r = await api('PATCH', `/api/v1/beads/${b.id}`, { title: 'second, renamed', description: 'd', status: 'blocked', priority: 3, assigned_to: 'agent-x', tags: [], context: { note: 'n' }, related_to: [c.id], blocked_by: [], blocks: [epic.id], due_date: null, estimated_time: null, milestone_id: null, type: 'feature' });
  assert.equal(r.status, 200, r.text);
  const nb = r.body;
  assert.equal(nb.title, 'second, renamed');
  assert.equal(nb.status, 'blocked');
  assert.equal(nb.priority, 3);
  assert.equal(nb.assigned_to, 'agent-x');
  assert.equal(nb.type, 'feature');
  assert.deepEqual(nb.tags, []);
  assert.deepEqual(nb.blocked_by, []);
  assert.deepEqual(nb.blocks, [epic.id]);
  assert.deepEqual(nb.related_to, [c.id]);
  r = await api('GET', `/api/v1/beads/${c.id}`);
  assert.deepEqual(r.body.related_to, [b.id]);

  r = await api('PATCH', `/api/v1/beads/${epic.id}`, { children: [a.id] });
  assert.deepEqual(r.body.children, [a.id]);
  r = await api('GET', `/api/v1/beads/${c.id}`);
  assert.equal(r.body.parent, null);
  r = await api('PATCH', `/api/v1/beads/${a.id}`, { status: 'closed' });
  assert.ok(r.body.closed_at);
  r = await api('PATCH', `/api/v1/beads/${a.id}`, { status: 'open', assigned_to: null });
  assert.equal(r.body.closed_at, null);
  assert.equal(r.body.assigned_to, null);

  r = await api('DELETE', `/api/v1/beads/${c.id}`);
  assert.equal(r.status, 200);
  assertError(await api('GET', `/api/v1/beads/${c.id}`), 404, `bead ${c.id} not found`);
  r = await api('GET', `/api/v1/beads/${b.id}`);
  assert.deepEqual(r.body.related_to, []);
});

test('list filters and pagination', async () => {
  const p = await newProject();
  for (let i = 0; i < 7; i++) {
    await newBead(p, { title: `t${i}`, priority: i % 4, type: i % 2 ? 'bug' : 'task', tags: i < 3 ? ['ui'] : [] });
  }
  await api('PATCH', `/api/v1/beads/${p}-2`, { assigned_to: 'a1' });
  let r = await api('GET', `/api/v1/beads?project_id=${p}`);
  assert.equal(r.body.length, 7);
  assert.deepEqual(r.body.map((b) => b.priority), [0, 0, 1, 1, 2, 2, 3]);
  r = await api('GET', `/api/v1/beads?project_id=${p}&type=bug`);
  assert.equal(r.body.length, 3);
  r = await api('GET', `/api/v1/beads?project_id=${p}&priority=P1`);
  assert.equal(r.body.length, 2);
  r = await api('GET', `/api/v1/beads?project_id=${p}&tag=ui`);
  assert.equal(r.body.length, 3);
  r = await api('GET', `/api/v1/beads?project_id=${p}&assigned_to=a1`);
  assert.deepEqual(r.body.map((b) => b.id), [`${p}-2`]);
  r = await api('GET', `/api/v1/beads?project_id=${p}&assigned_to=`);
  assert.equal(r.body.length, 6);
  r = await api('GET', `/api/v1/beads?project_id=${p}&status=closed`);
  assert.deepEqual(r.body, []);

  const seen = [];
  let offset = 0;
  for (;;) {
    r = await api('GET', `/api/v1/beads?project_id=${p}&limit=3&offset=${offset}`);
    seen.push(...r.body.map((b) => b.id));
    const next = r.headers.get('x-next-offset');
    if (!next) break;
    offset = Number(next);
  }
  assert.equal(seen.length, 7);
  assert.equal(new Set(seen).size, 7);

  await newProject();
  const all = (await api('GET', '/api/v1/projects?limit=1000')).body.map((x) => x.id);
  const paged = [];
  for (let o = 0; o < all.length; o++) {
    r = await api('GET', `/api/v1/projects?limit=1&offset=${o}`);
    assert.equal(r.body.length, 1);
    assert.equal(Boolean(r.headers.get('x-next-offset')), o < all.length - 1);
    paged.push(r.body[0].id);
  }
  assert.deepEqual(paged, all);
});

test('ready beads: open, blockers closed, parent blockers inherited', async () => {
  const p = await newProject();
  const blocker = await newBead(p, { title: 'blocker' });
  const epic = await newBead(p, { title: 'epic', blocked_by: [blocker.id] });
  const child = await newBead(p, { title: 'child', parent: epic.id });
  const free = await newBead(p, { title: 'free', priority: 0 });
  const ids = async () => (await api('GET', `/api/v1/beads/ready?project_id=${p}`)).body.map((b) => b.id);
  assert.deepEqual(await ids(), [free.id, blocker.id]);
  assertError(await api('POST', `/api/v1/beads/${child.id}/claim`, { agent_id: 'a' }), 409, 'blocked by');
  await api('PATCH', `/api/v1/beads/${blocker.id}`, { status: 'closed' });
  assert.deepEqual((await ids()).sort(), [free.id, epic.id, child.id].sort());
});

test('claim, redispatch and comments', async () => {
  const p = await newProject();
  const b = await newBead(p);
  let r = await api('POST', `/api/v1/beads/${b.id}/claim`, { agent_id: 'agent-1' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'in_progress');
  assert.equal(r.body.assigned_to, 'agent-1');
  r = await api('POST', `/api/v1/beads/${b.id}/claim`, { agent_id: 'agent-1' });
  assert.equal(r.status, 200, 'the holder claiming again is a no-op');
  assertError(await api('POST', `/api/v1/beads/${b.id}/claim`, { agent_id: 'agent-2' }), 409, 'already claimed by agent-1');

  await api('PATCH', `/api/v1/beads/${b.id}`, { context: { dispatch_count: '7', loop_detected: 'true', keep: 'yes' } });
  r = await api('POST', `/api/v1/beads/${b.id}/redispatch`, { reason: 'try again' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'open');
  assert.equal(r.body.assigned_to, null);
  assert.equal(r.body.context.dispatch_count, undefined);
  assert.equal(r.body.context.loop_detected, undefined);
  assert.equal(r.body.context.keep, 'yes');
  assert.equal(r.body.context.redispatch_requested, 'true');
  assert.equal(r.body.context.redispatch_requested_reason, 'try again');

  r = await api('POST', `/api/v1/beads/${b.id}/comments`, { content: 'top', author_id: 'u1' });
  assert.equal(r.status, 201, r.text);
  const top = r.body;
  r = await api('POST', `/api/v1/beads/${b.id}/comments`, { content: 'reply', parent_id: top.id });
  assert.equal(r.body.parent_id, top.id);
  const other = await newBead(p);
  assertError(await api('POST', `/api/v1/beads/${other.id}/comments`, { content: 'x', parent_id: top.id }), 400, 'belongs to bead');
  r = await api('PATCH', `/api/v1/comments/${top.id}`, { content: 'top, edited' });
  assert.equal(r.body.edited, true);
  r = await api('DELETE', `/api/v1/comments/${top.id}`);
  assert.equal(r.body.deleted, true);
  r = await api('GET', `/api/v1/beads/${b.id}/comments`);
  assert.deepEqual(r.body.map((c) => [c.content, c.deleted]), [['', true], ['reply', false]]);
  assertError(await api('PATCH', `/api/v1/comments/${top.id}`, { content: 'x' }), 404, 'not found');
});

test('bulk PATCH updates what the filter names, atomically', async () => {
  const p = await newProject();
  for (let i = 0; i < 5; i++) await newBead(p, { tags: i < 3 ? ['bulk'] : [] });
  let r = await api('PATCH', '/api/v1/beads', { filter: { project_id: p, tag: 'bulk' }, updates: { priority: 0, status: 'deferred' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.updated, 3);
  r = await api('GET', `/api/v1/beads?project_id=${p}&status=deferred`);
  assert.equal(r.body.length, 3);
  assertError(await api('PATCH', '/api/v1/beads', { filter: {}, updates: { priority: 1 } }), 400, 'at least one condition');
  assertError(await api('PATCH', '/api/v1/beads', { filter: { project_id: p }, updates: { priority: 9 } }), 400, 'updates.priority');
  const before = footprint(p);
  assertError(await api('PATCH', '/api/v1/beads', { filter: { project_id: p }, updates: { blocked_by: [`${p}-1`] } }), 400, 'itself');
  assert.equal(footprint(p), before);
});

test('work graph and events', async () => {
  const p = await newProject();
  const a = await newBead(p);
  const b = await newBead(p, { blocked_by: [a.id] });
  const c = await newBead(p, { parent: a.id });
  let r = await api('GET', `/api/v1/work-graph?project_id=${p}`);
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.body.beads).sort(), [a.id, b.id, c.id].sort());
  assert.deepEqual(r.body.edges, [
    { from: a.id, to: b.id, relationship: 'blocks' },
    { from: a.id, to: c.id, relationship: 'parent' },
  ]);
  r = await api('GET', `/api/v1/events?project_id=${p}&type=bead.created`);
  assert.equal(r.body.length, 3);
  assert.ok(r.body[0].id > r.body[1].id);
  assert.equal(r.body[0].data.bead.id, c.id);
  // every change writes exactly its events
  const n = Number(sql(`SELECT count(*) FROM events WHERE project_id='${p}'`));
  await api('POST', `/api/v1/beads/${b.id}/comments`, { content: 'hi' });
  assert.equal(Number(sql(`SELECT count(*) FROM events WHERE project_id='${p}'`)), n + 1);
});

test('static files: dashboard, assets, and a missing asset is a 404', async () => {
  let r = await api('GET', '/');
  assert.equal(r.status, 200);
  assert.ok(r.text.includes('<title>Loom</title>'));
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  r = await api('GET', '/loom.js');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /javascript/);
  r = await api('GET', '/no-such-file.js');
  assert.equal(r.status, 404);
  r = await api('GET', '/some/client/route');
  assert.equal(r.status, 200, 'unknown non-asset paths fall back to the dashboard');
});
