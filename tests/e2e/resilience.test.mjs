// The claim race through nginx, and the database restarted under a running API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, newProject, sql, stackShell, sleep } from './lib.mjs';

const apiPids = () => stackShell("stack_ctl status | grep '^loom-api' | grep -o 'pid [0-9]*' | sort").trim();

test('16 concurrent clients claiming the same 200 beads: each claimed exactly once', async () => {
  const p = await newProject();
  sql(`SELECT count(loom_bead_create(json_build_object('project_id','${p}','title','race')::jsonb,'t')) FROM generate_series(1,200)`);
  const clients = 16;
  const wins = new Map();
  let conflicts = 0;
  await Promise.all(Array.from({ length: clients }, async (_, me) => {
    for (let i = 0; i < 200; i++) {
      const id = `${p}-${((i + me * 13) % 200) + 1}`;
      const r = await api('POST', `/api/v1/beads/${id}/claim`, { agent_id: `agent-${me}` });
      if (r.status === 200) wins.set(id, [...(wins.get(id) || []), me]);
      else if (r.status === 409) conflicts++;
      else assert.fail(`claim ${id}: ${r.status} ${r.text}`);
    }
  }));
  assert.equal(wins.size, 200);
  for (const [id, who] of wins) assert.equal(who.length, 1, `${id} claimed by ${who}`);
  assert.equal(conflicts, clients * 200 - 200);
  assert.equal(sql(`SELECT count(*) FROM beads WHERE project_id='${p}' AND status='in_progress'`), '200');
});

test('database restart: 503 while down, recovers without restarting loom-api', async () => {
  const p = await newProject();
  const pidsBefore = apiPids();
  stackShell('stack_ctl stop postgres >/dev/null');
  let r = await api('GET', `/api/v1/projects/${p}`);
  assert.equal(r.status, 503, r.text);
  assert.ok(r.body.error.includes('database'), r.text);
  const t0 = Date.now();
  r = await api('POST', '/api/v1/beads', { project_id: p, title: 'while down' });
  assert.equal(r.status, 503);
  assert.ok(Date.now() - t0 < 3000, '503 must come quickly');
  r = await api('GET', '/health/ready');
  assert.equal(r.status, 503);
  stackShell('stack_ctl start postgres >/dev/null');
  let ok = false;
  for (let i = 0; i < 100 && !ok; i++) {
    r = await api('GET', '/health/ready');
    ok = r.status === 200;
    if (!ok) await sleep(100);
  }
  assert.ok(ok, 'API did not recover');
  // every thread's stale connection recovers: a burst of requests all succeed
  const results = await Promise.all(Array.from({ length: 64 }, () => api('GET', `/api/v1/projects/${p}`)));
  assert.deepEqual([...new Set(results.map((x) => x.status))], [200]);
  r = await api('POST', '/api/v1/beads', { project_id: p, title: 'after' });
  assert.equal(r.status, 201, r.text);
  assert.equal(apiPids(), pidsBefore, 'loom-api was restarted');
});
