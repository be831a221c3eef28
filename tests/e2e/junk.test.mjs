// A seeded generator of malformed requests: every field of every write route gets values of the
// wrong type, junk strings, huge numbers, deep nesting; bodies are truncated at random points;
// paths and query strings get junk.  Nothing may answer 5xx or anything but a JSON error, and the
// target project must be unchanged afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, newProject, newBead, footprint } from './lib.mjs';

let seed = 20261124;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const pick = (xs) => xs[rnd(xs.length)];

const junkValues = [
  null, true, false, 0, -1, 1.5, 1e300, 99999999999999999999, '', ' ', 'x'.repeat(5000),
  '\u0000', '\ud800', '<script>', "'; DROP TABLE beads; --", '../../etc/passwd', '%00', [], [1, 2],
  [null], ['a', 5], {}, { a: { b: { c: [] } } }, 'P9', '2026-02-30T25:61:00Z', 'open\n',
];

function deep(n) { let v = 1; for (let i = 0; i < n; i++) v = [v]; return v; }

test('300+ malformed requests: never a 5xx, always a JSON error, nothing written', async () => {
  const p = await newProject();
  const other = await newProject(); // creations that are valid by chance land here
  const b = await newBead(p);
  const routes = [
    ['POST', '/api/v1/beads', { project_id: other, title: 't' }],
    ['PATCH', `/api/v1/beads/${b.id}`, { title: 't' }],
    ['PATCH', '/api/v1/beads', { filter: { project_id: p }, updates: { priority: 1 } }],
    ['POST', `/api/v1/beads/${b.id}/claim`, { agent_id: 'a' }],
    ['POST', `/api/v1/beads/${b.id}/redispatch`, { reason: 'r' }],
    ['POST', `/api/v1/beads/${b.id}/comments`, { content: 'c' }],
    ['POST', '/api/v1/projects', { name: 'n' }],
    ['PUT', `/api/v1/projects/${p}`, { name: 'n' }],
    ['POST', `/api/v1/projects/${p}/close`, { force: false }],
  ];
  const fields = ['project_id', 'title', 'description', 'type', 'status', 'priority', 'assigned_to',
    'tags', 'context', 'blocked_by', 'blocks', 'parent', 'children', 'related_to', 'due_date',
    'estimated_time', 'milestone_id', 'agent_id', 'reason', 'content', 'parent_id', 'name', 'id',
    'bead_prefix', 'git_strategy', 'is_sticky', 'filter', 'updates', 'force', 'comment'];
  const before = footprint(p);
  let n = 0;
  const check = (r, what) => {
    n++;
    assert.ok(r.status >= 400 && r.status < 500 || r.status === 200 || r.status === 201,
      `${what} -> ${r.status} ${r.text.slice(0, 200)}`);
    if (r.status >= 400) assert.equal(typeof r.body?.error, 'string', `${what}: not a JSON error: ${r.text.slice(0, 200)}`);
  };
  for (let i = 0; i < 240; i++) {
    const [method, path, valid] = pick(routes);
    const body = { ...valid };
    const f = pick(fields);
    body[f] = rnd(10) === 0 ? deep(40 + rnd(20)) : pick(junkValues);
    let text = JSON.stringify(body);
    if (rnd(4) === 0) text = text.slice(0, rnd(text.length));
    check(await api(method, path, text), `${method} ${path} ${text.slice(0, 120)}`);
  }
  const junkPaths = ['/api/v1/beads/%ff', '/api/v1/beads/a-b-c', '/api/v1/projects/%2e%2e',
    '/api/v1/beads/x-1/comments/extra', '/api/v1/comments/-1', '/api/v1/comments/1e9',
    `/api/v1/beads/${'9'.repeat(40)}`, '/api/v1//projects', '/api/v1/beads?limit=1&limit=2',
    '/api/v1/beads?priority=P', '/api/v1/beads?=x', '/api/v1/beads?x', '/api/v1/work-graph?project_id=A',
    '/api/v1/events?since_id=-5', '/api/v1/events?bead_id=nope', '/api/v1/beads/ready?offset=abc'];
  for (let i = 0; i < 80; i++) {
    const path = pick(junkPaths);
    check(await api(pick(['GET', 'PATCH', 'DELETE', 'POST']), path, rnd(2) ? '{}' : undefined), path);
  }
  assert.ok(n >= 300);
  // a mutation that is valid by chance may edit bead b or add a comment, but no bead and no
  // dependency may appear in the project
  const [beads, , deps, comments] = footprint(p).split('/');
  const [beads0, , deps0, comments0] = before.split('/');
  assert.equal(beads, beads0);
  assert.equal(deps, deps0);
  assert.ok(Number(comments) >= Number(comments0));
});
