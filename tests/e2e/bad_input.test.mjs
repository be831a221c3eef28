// Every class of bad input gets a 4xx with a JSON {"error"} naming the problem, never a 5xx, and
// leaves nothing half-written: each case checks the project's footprint is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, assertError, newProject, newBead, footprint, BASE } from './lib.mjs';

test('bad request bodies', async () => {
  const p = await newProject();
  const a = await newBead(p);
  const child = await newBead(p, { parent: a.id });
  const before = footprint(p);
  const cases = [
    // [method, path, body, status, fragment]
    ['POST', '/api/v1/beads', '{"project_id":', 400, 'malformed JSON'],
    ['POST', '/api/v1/beads', '{"project_id":"x","title":"t"} trailing', 400, 'malformed JSON'],
    ['POST', '/api/v1/beads', '[]', 400, 'JSON object'],
    ['POST', '/api/v1/beads', '', 400, 'empty'],
    ['POST', '/api/v1/beads', { project_id: p, title: 5 }, 400, 'title: must be a string'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', priority: '1' }, 400, 'priority: must be an integer'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', priority: 4 }, 400, 'from 0 to 3'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', tags: 'x' }, 400, 'tags: must be an array'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', tags: [1] }, 400, 'tags[0]'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', context: [] }, 400, 'context: must be an object'],
    ['POST', '/api/v1/beads', { project_id: p }, 400, 'title: is required'],
    ['POST', '/api/v1/beads', { title: 't' }, 400, 'project_id: is required'],
    ['POST', '/api/v1/beads', { project_id: p, title: '' }, 400, 'title'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', status: 'done' }, 400, "status: 'done' is not one of"],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', type: 'story' }, 400, 'type'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', stauts: 'open' }, 400, "unknown field 'stauts'"],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', id: 'x-1' }, 400, 'id: is read-only'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', due_date: 'soon' }, 400, 'due_date'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', due_date: '2026-13-45T99:00:00Z' }, 400, ''],
    ['POST', '/api/v1/beads', { project_id: p, title: 'a\u0000b' }, 400, 'NUL'],
    ['POST', '/api/v1/beads', { project_id: 'no-such-project', title: 't' }, 400, 'does not exist'],
    ['POST', '/api/v1/beads', { project_id: 'Bad Id!', title: 't' }, 400, 'project_id'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', blocked_by: [`${p}-999`] }, 400, 'does not exist'],
    ['POST', '/api/v1/beads', { project_id: p, title: 't', blocked_by: ['not-an-id!'] }, 400, 'not a bead id'],
    ['PATCH', `/api/v1/beads/${a.id}`, { blocked_by: [a.id] }, 400, 'cannot depend on itself'],
    ['PATCH', `/api/v1/beads/${a.id}`, { blocked_by: [child.id] }, 409, 'dependency cycle'],
    ['PATCH', `/api/v1/beads/${a.id}`, { parent: child.id }, 409, 'dependency cycle'],
    ['PATCH', `/api/v1/beads/${a.id}`, {}, 400, 'no fields'],
    ['PATCH', `/api/v1/beads/${a.id}`, { project_id: 'other' }, 400, 'read-only'],
    ['PATCH', `/api/v1/beads/${p}-999`, { title: 'x' }, 404, 'not found'],
    ['POST', `/api/v1/beads/${a.id}/claim`, {}, 400, 'agent_id: is required'],
    ['POST', `/api/v1/beads/${a.id}/claim`, { agent_id: 'x\ny' }, 400, 'control characters'],
    ['POST', `/api/v1/beads/${p}-999/claim`, { agent_id: 'x' }, 404, 'not found'],
    ['POST', `/api/v1/beads/${a.id}/comments`, { content: '' }, 400, 'content'],
    ['POST', `/api/v1/beads/${a.id}/comments`, { content: 'x', parent_id: 999999999 }, 400, 'does not exist'],
    ['POST', '/api/v1/projects', { name: 'x', git_strategy: 'yolo' }, 400, 'git_strategy'],
    ['POST', '/api/v1/projects', { name: 'x', bead_prefix: '9lives' }, 400, 'bead_prefix'],
    ['POST', '/api/v1/projects', { id: p, name: 'dup' }, 409, 'already exists'],
    ['POST', '/api/v1/projects', { name: 'other', bead_prefix: p }, 409, 'already used'],
    ['POST', '/api/v1/projects', { name: '!!!' }, 400, 'cannot derive'],
    ['PUT', `/api/v1/projects/${p}`, { status: 'closed' }, 400, 'read-only'],
  ];
  for (const [method, path, body, status, fragment] of cases) {
    const r = await api(method, path, body);
    assertError(r, status, fragment);
    assert.equal(footprint(p), before, `${method} ${path} ${JSON.stringify(body)} changed state`);
  }
});

test('bodies that are too large or not JSON', async () => {
  const p = await newProject();
  const before = footprint(p);
  const big = JSON.stringify({ project_id: p, title: 't', description: 'x'.repeat(1100000) });
  assertError(await api('POST', '/api/v1/beads', big), 413, '');
  const notJson = await api('POST', '/api/v1/beads', 'title=x', { 'Content-Type': 'application/x-www-form-urlencoded' });
  assertError(notJson, 415, 'JSON');
  // just under the limit but over the description cap: 400, not 413
  const long = JSON.stringify({ project_id: p, title: 't', description: 'x'.repeat(300000) });
  assertError(await api('POST', '/api/v1/beads', long), 400, 'description');
  assert.equal(footprint(p), before);
});

test('junk in paths and query strings, wrong methods', async () => {
  const cases = [
    ['GET', '/api/v1/nope', 404, 'no route'],
    ['GET', '/api/v1/beads/not%20an%20id', 400, 'not a valid bead id'],
    ['GET', '/api/v1/beads/x-1/claim/extra', 404, 'no route'],
    ['GET', '/api/v1/projects/UPPER', 400, 'not a valid project id'],
    ['GET', '/api/v1/comments/abc', 405, ''],
    ['PATCH', '/api/v1/comments/abc', 400, 'comment id'],
    ['GET', '/api/v1/beads?stauts=open', 400, "unknown query parameter 'stauts'"],
    ['GET', '/api/v1/beads?status=done', 400, 'status'],
    ['GET', '/api/v1/beads?limit=0', 400, 'limit'],
    ['GET', '/api/v1/beads?limit=abc', 400, 'limit'],
    ['GET', '/api/v1/beads?offset=-1', 400, 'offset'],
    ['GET', '/api/v1/beads?priority=7', 400, 'priority'],
    ['GET', '/api/v1/beads?tag=a&tag=b', 400, 'twice'],
    ['GET', '/api/v1/beads?project_id=%zz', 400, 'percent-encoding'],
    ['GET', '/api/v1/beads?project_id=%00', 400, 'percent-encoding'],
    ['GET', '/api/v1/events?type=DROP%20TABLE', 400, 'type'],
    ['GET', '/api/v1/events?limit=5000', 400, 'limit'],
    ['PUT', '/api/v1/beads/x-1', 405, 'not allowed'],
    ['DELETE', '/api/v1/beads', 405, 'not allowed'],
    ['POST', '/api/v1/health', 405, 'not allowed'],
    ['GET', `/api/v1/beads/${'a'.repeat(3000)}`, 400, ''],
  ];
  for (const [method, path, status, fragment] of cases) {
    const r = await api(method, path);
    assertError(r, status, fragment);
    if (status === 405) assert.ok(r.headers.get('allow'), `${method} ${path}: 405 without Allow`);
  }
});

test('malformed HTTP never yields a 5xx', async () => {
  // a bare body with a lying Content-Length is nginx's business; odd methods reach us
  for (const method of ['OPTIONS', 'TRACE', 'PROPFIND']) {
    const r = await fetch(`${BASE}/api/v1/beads`, { method }).catch(() => null);
    if (r) assert.ok(r.status < 500 && r.status >= 400, `${method} -> ${r.status}`);
  }
});
