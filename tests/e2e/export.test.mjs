// Project export and import: GET /api/v1/projects/{id}/export, POST /api/v1/projects/import
// (dry_run, validate_only), the round trip, and every kind of bad import refused with nothing
// written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, api, assertError, authHeader, newBead, newProject, newUser, sql } from './lib.mjs';

let seq = 0;
const run = Date.now().toString(36).slice(-4);
const freshId = () => `x${run}${++seq}`;

// A project with every kind of content: link kinds, a closed bead, tags and context, threaded
// and deleted comments, an escalated decision (open) and a decided one.
async function richProject() {
  const p = await newProject({ description: 'source project', git_repo: 'https://example.invalid/r.git' });
  const a = await newBead(p, { title: 'Design', priority: 1, tags: ['design', 'p1'], context: { note: 'hello', n: '3' } });
  const b = await newBead(p, { title: 'Build', blocked_by: [a.id], description: 'build it' });
  const epic = await newBead(p, { title: 'Epic', type: 'epic' });
  const c = await newBead(p, { title: 'Child', parent: epic.id, related_to: [a.id] });
  const done = await newBead(p, { title: 'Done already', status: 'closed', due_date: '2030-01-02T03:04:05Z', estimated_time: 90 });
  const q = await newBead(p, { title: 'Needs a person' });
  let r = await api('POST', `/api/v1/beads/${q.id}/escalate`, { reason: 'Which database?' });
  assert.equal(r.status, 201, r.text);
  const q2 = await newBead(p, { title: 'Decided one' });
  const d2 = (await api('POST', `/api/v1/beads/${q2.id}/escalate`, { reason: 'Ship it?' })).body;
  r = await api('POST', `/api/v1/decisions/${d2.id}/decide`, { decision: 'deny', rationale: 'not yet', decider_id: 'ceo' });
  assert.equal(r.status, 200, r.text);
  const c1 = (await api('POST', `/api/v1/beads/${a.id}/comments`, { content: 'first', author_id: 'alice' })).body;
  await api('POST', `/api/v1/beads/${a.id}/comments`, { content: 'a reply', author_id: 'bob', parent_id: c1.id });
  const gone = (await api('POST', `/api/v1/beads/${b.id}/comments`, { content: 'oops', author_id: 'carol' })).body;
  assert.equal((await api('DELETE', `/api/v1/comments/${gone.id}`)).status, 200);
  return { p, a, b, epic, c, done, q, q2, d2 };
}

async function exportOf(p, headers = {}) {
  const r = await api('GET', `/api/v1/projects/${p}/export`, undefined, headers);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

// The document with ids mapped back through the import's id_map (new → old) and the
// timestamps and comment ids (which an import renumbers) left out.
const TIMES = new Set(['created_at', 'updated_at', 'closed_at', 'exported_at', 'decided_at']);
function normalise(doc, back = {}) {
  const swap = (v) => (typeof v === 'string' && back[v] ? back[v] : v);
  const walk = (v) => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const o = {};
      for (const k of Object.keys(v).sort()) if (!TIMES.has(k)) o[k] = walk(v[k]);
      return o;
    }
    return swap(v);
  };
  const commentIds = new Map(doc.comments.map((c, i) => [c.id, i]));
  const out = walk({ ...doc, project: { ...doc.project, id: 'P', bead_prefix: 'P' } });
  out.beads.forEach((b) => { b.project_id = 'P'; });
  out.decisions.forEach((d) => { d.project_id = 'P'; });
  out.comments.forEach((c, i) => { c.id = i; c.parent_id = c.parent_id === null ? null : commentIds.get(doc.comments[i].parent_id); });
  return out;
}

// Everything an import could have written anywhere, by counts.
const worldCounts = () => sql(`SELECT (SELECT count(*) FROM projects) || '/' || (SELECT count(*) FROM beads) || '/' ||
  (SELECT count(*) FROM bead_deps) || '/' || (SELECT count(*) FROM bead_comments) || '/' ||
  (SELECT count(*) FROM events WHERE type LIKE 'project.%') || '/' || (SELECT count(*) FROM agents)`);

test('export: the whole project as one document; beads carry no link arrays; 404 for unknown ids', async () => {
  const s = await richProject();
  const doc = await exportOf(s.p);
  assert.equal(doc.format, 'loom-export');
  assert.equal(doc.version, 1);
  assert.ok(doc.exported_at);
  assert.equal(doc.project.id, s.p);
  assert.equal(doc.project.description, 'source project');
  assert.deepEqual(doc.beads.map((b) => b.title),
    ['Design', 'Build', 'Epic', 'Child', 'Done already', 'Needs a person',
      'Decision needed: Needs a person', 'Decided one', 'Decision needed: Decided one']);
  for (const b of doc.beads) for (const k of ['blocked_by', 'blocks', 'parent', 'children', 'related_to']) assert.ok(!(k in b), k);
  const edges = doc.dependencies.map((d) => `${d.bead_id} ${d.kind} ${d.depends_on_id}`);
  assert.ok(edges.includes(`${s.b.id} blocks ${s.a.id}`), edges.join(', '));
  assert.ok(edges.includes(`${s.c.id} parent ${s.epic.id}`));
  assert.ok(edges.some((e) => e.includes('related')));
  assert.equal(doc.comments.length, 4);
  assert.equal(doc.comments.find((c) => c.content === 'a reply').parent_id, doc.comments.find((c) => c.content === 'first').id);
  assert.equal(doc.comments.find((c) => c.deleted).content, '');
  assert.equal(doc.decisions.length, 2);
  assert.equal(doc.decisions[0].question, 'Which database?');
  assert.equal(doc.decisions[0].escalated_from, s.q.id);
  assert.equal(doc.decisions[1].decision, 'deny');
  assertError(await api('GET', '/api/v1/projects/nosuch-project/export'), 404, 'nosuch-project');
  assertError(await api('GET', '/api/v1/projects/NOT_VALID/export'), 400, 'not a valid project id');
});

test('round trip: export → import under a new id → export again gives the same content', async () => {
  const s = await richProject();
  const first = await exportOf(s.p);
  const id = freshId();
  const r = await api('POST', '/api/v1/projects/import', { ...first, rename: { id, bead_prefix: id } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.dry_run, false);
  assert.equal(r.body.project.id, id);
  assert.equal(r.body.project.bead_prefix, id);
  assert.deepEqual(r.body.counts, { beads: 9, dependencies: first.dependencies.length, comments: 4, decisions: 2 });
  assert.equal(r.body.id_map[s.a.id], `${id}-1`);
  assert.deepEqual(r.body.warnings, []);

  const second = await exportOf(id);
  const back = Object.fromEntries(Object.entries(r.body.id_map).map(([o, n]) => [n, o]));
  assert.deepEqual(normalise(second, back), normalise(first));
  // timestamps of beads and comments are kept
  assert.equal(second.beads[0].created_at, first.beads[0].created_at);
  assert.equal(second.comments[1].created_at, first.comments[1].created_at);

  // the link caches, decision links and threads are consistent under the new ids
  const map = r.body.id_map;
  const b2 = (await api('GET', `/api/v1/beads/${map[s.b.id]}`)).body;
  assert.deepEqual(b2.blocked_by, [map[s.a.id]]);
  const c2 = (await api('GET', `/api/v1/beads/${map[s.c.id]}`)).body;
  assert.equal(c2.parent, map[s.epic.id]);
  assert.deepEqual(c2.related_to, [map[s.a.id]]);
  const q2 = (await api('GET', `/api/v1/beads/${map[s.q.id]}`)).body;
  assert.equal(q2.status, 'blocked');
  const dec = (await api('GET', `/api/v1/decisions/${q2.context.escalated_to_ceo_decision_id}`)).body;
  assert.equal(dec.escalated_from, q2.id);
  assert.equal(dec.question, 'Which database?');
  const comments = (await api('GET', `/api/v1/beads/${map[s.a.id]}/comments`)).body;
  assert.equal(comments.length, 2);
  assert.equal(comments[1].parent_id, comments[0].id);
  // new beads continue after the highest imported number; the project has its default agents
  const next = await newBead(id, { title: 'after import' });
  assert.equal(next.id, `${id}-10`);
  assert.ok(Number(sql(`SELECT count(*) FROM agents WHERE project_id='${id}'`)) > 0);
  assert.equal(sql(`SELECT count(*) FROM events WHERE project_id='${id}' AND type IN ('project.created','project.imported')`), '2');
  // the same document again: the id is taken
  assertError(await api('POST', '/api/v1/projects/import', { ...first, rename: { id, bead_prefix: id } }), 409, 'already exists');
});

test('renumber maps ids to 1..N; in-progress beads come back open and unassigned', async () => {
  const p = await newProject();
  await newBead(p, { title: 'gone' });
  const a = await newBead(p, { title: 'A' });
  const b = await newBead(p, { title: 'B', blocked_by: [a.id] });
  const c = await newBead(p, { title: 'C' });
  assert.equal((await api('DELETE', `/api/v1/beads/${p}-1`)).status, 200);
  assert.equal((await api('POST', `/api/v1/beads/${c.id}/claim`, { agent_id: 'agent-zero' })).status, 200);
  const doc = await exportOf(p);
  const id = freshId();
  const r = await api('POST', '/api/v1/projects/import', { ...doc, renumber: true, rename: { id, bead_prefix: id } });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.body.id_map, { [a.id]: `${id}-1`, [b.id]: `${id}-2`, [c.id]: `${id}-3` });
  assert.match(r.body.warnings.join(' '), /1 in_progress beads are imported as open/);
  assert.deepEqual((await api('GET', `/api/v1/beads/${id}-2`)).body.blocked_by, [`${id}-1`]);
  const c3 = (await api('GET', `/api/v1/beads/${id}-3`)).body;
  assert.equal(c3.status, 'open');
  assert.equal(c3.assigned_to, null);
  assert.equal((await newBead(id)).id, `${id}-4`);
});

test('dry_run validates and reports what it would create, writing nothing; validate_only only checks the document', async () => {
  const s = await richProject();
  const doc = await exportOf(s.p);
  const id = freshId();
  const before = worldCounts();
  let r = await api('POST', '/api/v1/projects/import?dry_run=true', { ...doc, rename: { id, bead_prefix: id, name: 'Copy' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.valid, true);
  assert.equal(r.body.dry_run, true);
  assert.deepEqual(r.body.project, { id, name: 'Copy', bead_prefix: id, parent_id: null, source_id: s.p });
  assert.equal(r.body.counts.beads, 9);
  assert.equal(r.body.id_map[s.b.id], `${id}-2`);
  assert.equal(worldCounts(), before);
  assert.equal(sql(`SELECT count(*) FROM projects WHERE id='${id}'`), '0');
  // a dry run sees conflicts in the database
  assertError(await api('POST', '/api/v1/projects/import?dry_run=true', doc), 409, `project ${s.p} already exists`);
  assertError(await api('POST', '/api/v1/projects/import?dry_run=true', { ...doc, rename: { id } }), 409, `bead_prefix ${s.p} is already used`);

  r = await api('POST', '/api/v1/projects/import?validate_only=true', doc);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.valid, true);
  assert.equal(r.body.validate_only, true);
  assert.deepEqual(r.body.counts, { beads: 9, dependencies: doc.dependencies.length, comments: 4, decisions: 2 });
  assertError(await api('POST', '/api/v1/projects/import?validate_only=true', { ...doc, version: 7 }), 400, 'version');
  assertError(await api('POST', '/api/v1/projects/import?dry_run=maybe', doc), 400, 'dry_run');
  assert.equal(worldCounts(), before);

  // a real import of the dry-run document under the same rename creates what it said
  r = await api('POST', '/api/v1/projects/import', { ...doc, rename: { id, bead_prefix: id, name: 'Copy' } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.project.name, 'Copy');
});

test('bad imports are refused with a 400 that names the problem, and nothing is written', async () => {
  const s = await richProject();
  const good = await exportOf(s.p);
  const id = freshId();
  const base = () => ({ ...structuredClone(good), rename: { id, bead_prefix: id } });
  const P = s.p;
  const cases = [
    ['wrong format', (d) => { d.format = 'other'; }, 'format: must be "loom-export"'],
    ['no format', (d) => { delete d.format; }, 'format'],
    ['wrong version', (d) => { d.version = 2; }, 'version: 2 is not supported'],
    ['unknown top-level field', (d) => { d.extra = 1; }, "unknown field 'extra'"],
    ['no project', (d) => { delete d.project; }, 'project: is required'],
    ['project without name', (d) => { delete d.project.name; }, 'project.name: is required'],
    ['bad project status', (d) => { d.project.status = 'gone'; }, 'project.status'],
    ['bad rename id', (d) => { d.rename.id = 'Bad Id'; }, 'rename.id'],
    ['bad rename prefix', (d) => { d.rename.bead_prefix = '9x'; }, 'rename.bead_prefix'],
    ['rename the reserved id', (d) => { d.rename.id = 'import'; }, 'reserved'],
    ['beads missing', (d) => { delete d.beads; }, 'beads: is required'],
    ['beads not an array', (d) => { d.beads = {}; }, 'beads: must be an array'],
    ['bad priority', (d) => { d.beads[1].priority = 9; }, 'beads[1].priority: must be an integer from 0 to 3'],
    ['bad status', (d) => { d.beads[0].status = 'done'; }, 'beads[0].status'],
    ['unknown bead field', (d) => { d.beads[2].colour = 'red'; }, "beads[2]: unknown field 'colour'"],
    ['link arrays on a bead', (d) => { d.beads[1].blocked_by = [d.beads[0].id]; }, 'beads[1].blocked_by: edges belong in "dependencies"'],
    ['title missing', (d) => { delete d.beads[3].title; }, 'beads[3].title: is required'],
    ['bead of another prefix', (d) => { d.beads[0].id = 'other-1'; }, "does not start with the project's bead_prefix"],
    ['bead of another project', (d) => { d.beads[0].project_id = 'elsewhere'; }, 'beads[0].project_id'],
    ['bead number 0', (d) => { d.beads[0].id = `${P}-0`; }, 'bead numbers start at 1'],
    ['duplicate bead ids', (d) => { d.beads[1].id = d.beads[0].id; }, `beads: duplicate id ${P}-1`],
    ['dangling dependency', (d) => { d.dependencies.push({ bead_id: `${P}-1`, depends_on_id: `${P}-99`, kind: 'blocks' }); }, `depends_on_id: bead ${P}-99 is not in beads`],
    ['self dependency', (d) => { d.dependencies.push({ bead_id: `${P}-1`, depends_on_id: `${P}-1`, kind: 'blocks' }); }, 'cannot depend on itself'],
    ['bad dependency kind', (d) => { d.dependencies[0].kind = 'likes'; }, 'dependencies[0].kind'],
    ['duplicate dependency', (d) => { d.dependencies.push({ ...d.dependencies[0] }); }, 'the same'],
    ['dependency cycle', (d) => { d.dependencies.push({ bead_id: `${P}-1`, depends_on_id: `${P}-2`, kind: 'blocks' }); }, `cycle ${P}-1 → ${P}-2 → ${P}-1`],
    ['two parents', (d) => { d.dependencies.push({ bead_id: `${P}-4`, depends_on_id: `${P}-1`, kind: 'parent' }); }, 'more than one parent'],
    ['comment on a missing bead', (d) => { d.comments[0].bead_id = `${P}-77`; }, `comments[0].bead_id: bead ${P}-77 is not in beads`],
    ['comment reply to a missing comment', (d) => { d.comments[1].parent_id = 99999999; }, 'comments[1].parent_id: comment 99999999 is not in comments'],
    ['duplicate comment ids', (d) => { d.comments[2].id = d.comments[0].id; }, 'comments: duplicate id'],
    ['comment without author', (d) => { delete d.comments[0].author_id; }, 'comments[0].author_id: is required'],
    ['decision that is no decision bead', (d) => { d.decisions[0].id = `${P}-1`; }, 'decisions[0].id'],
    ['a date PostgreSQL refuses', (d) => { d.beads[4].created_at = '2026-13-45T00:00:00Z'; }, 'beads[4].created_at'],
    ['too many beads', (d) => {
      d.beads = Array.from({ length: 5001 }, (_, i) => ({ id: `${P}-${i + 1}`, title: 't' }));
      d.dependencies = []; d.comments = []; d.decisions = [];
    }, 'beads: 5001 items; an import holds at most 5000'],
  ];
  const before = worldCounts();
  for (const [name, change, fragment] of cases) {
    const d = base();
    change(d);
    const r = await api('POST', '/api/v1/projects/import', d);
    assertError(r, 400, fragment);
    assert.equal(worldCounts(), before, `${name} wrote something`);
  }
  assertError(await api('POST', '/api/v1/projects/import', '{"format": "loom-export",'), 400, 'malformed JSON');
  assertError(await api('POST', '/api/v1/projects/import', ''), 400, 'empty');
  // over the size cap: refused before it is read
  const big = JSON.stringify({ ...base(), pad: 'x'.repeat(17 << 20) });
  const r = await fetch(BASE + '/api/v1/projects/import', { method: 'POST', headers: { ...authHeader(), 'Content-Type': 'application/json' }, body: big });
  assert.equal(r.status, 413);
  assert.match((await r.json()).error, /too large/);
  assert.equal(worldCounts(), before);
  assert.equal(sql(`SELECT count(*) FROM projects WHERE id='${id}'`), '0');
});

test('permissions: export needs projects:read and membership, import projects:write; the importer owns the project', async () => {
  const owner = await newUser('user');
  const other = await newUser('user');
  const viewer = await newUser('viewer');
  const p = await newProject({}, authHeader(owner.token));
  await newBead(p, { title: 'mine' }, authHeader(owner.token));
  const doc = await exportOf(p, authHeader(owner.token));
  assertError(await api('GET', `/api/v1/projects/${p}/export`, undefined, authHeader(other.token)), 404, 'not found');
  assertError(await api('GET', `/api/v1/projects/${p}/export`, undefined, authHeader(viewer.token)), 404, 'not found');
  assert.equal((await api('POST', `/api/v1/projects/${p}/members`, { username: viewer.username }, authHeader(owner.token))).status, 201);
  assert.equal((await exportOf(p, authHeader(viewer.token))).beads.length, 1);

  const id = freshId();
  const before = sql('SELECT count(*) FROM projects');
  assertError(await api('POST', '/api/v1/projects/import', { ...doc, rename: { id, bead_prefix: id } }, authHeader(viewer.token)), 403, 'projects:write');
  assert.equal(sql('SELECT count(*) FROM projects'), before);

  const r = await api('POST', '/api/v1/projects/import', { ...doc, rename: { id, bead_prefix: id } }, authHeader(other.token));
  assert.equal(r.status, 201, r.text);
  const members = (await api('GET', `/api/v1/projects/${id}/members`, undefined, authHeader(other.token))).body;
  assert.deepEqual(members.map((m) => [m.username, m.owner]), [[other.username, true]]);
  assert.equal(sql(`SELECT owner_id FROM projects WHERE id='${id}'`), String(other.id));
  assertError(await api('GET', `/api/v1/projects/${id}`, undefined, authHeader(owner.token)), 404, 'not found');
  assert.equal((await api('GET', `/api/v1/beads/${id}-1`, undefined, authHeader(other.token))).body.title, 'mine');
});

test('the project id "import" is reserved', async () => {
  assertError(await api('POST', '/api/v1/projects', { id: 'import', name: 'Import' }), 400, 'reserved');
  assertError(await api('POST', '/api/v1/projects', { name: 'Import' }), 400, 'reserved');
  assertError(await api('GET', '/api/v1/projects/import'), 405);
});
