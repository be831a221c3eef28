// pg-boss side of make bench-dispatch (see tests/bench/bench-dispatch.sh).
//
// pg-boss 10 has no LISTEN: work() polls, at pollingIntervalSeconds (default 2, minimum 0.5),
// and sleeps out the interval after every fetch, full or empty.  So:
// Latency: BENCH_IDLE_EXECUTORS work() workers, batchSize 1, pollingIntervalSeconds 0.5 (the
// fastest it allows); one sample is send() → the no-op handler starting, in this process.  The
// workers poll in step, and the next job is sent 0..500 ms after the last was picked up, so the
// samples cover the whole polling phase.
// Throughput: work() would measure its own sleep (N × batchSize / interval), so each of N
// concurrent loops does what work() does without the sleep, both calls awaited:
//   "pg-boss"       fetch(batchSize 1) → complete(id): one job claimed and completed per round
//                   trip, as a Loom executor does;
//   "pg-boss-bN"    fetch(batchSize BENCH_PGBOSS_BATCH, 50) → complete(ids): pg-boss as its
//                   docs advise for throughput.
// BENCH_RUNS jobs are inserted with one insert() call and VACUUM ANALYZEd before each level.
// Maintenance (supervise) and cron (schedule) are off, as loom-ralph is not running for Loom.
import PgBoss from 'pg-boss';
import { gap, latencyResult, log, nowMs, pgConfig, pool, result, settings, window } from './lib.mjs';

const QUEUE = 'noop';
const POLL_S = 0.5;
const admin = pool(2);

async function startBoss(max) {
  const boss = new PgBoss({ ...pgConfig(max), schema: 'pgboss', supervise: false, schedule: false });
  boss.on('error', (e) => log(`pg-boss: ${e.message}`));
  await boss.start();
  return boss;
}

async function latency() {
  const boss = await startBoss(settings.idle + 2);
  await boss.createQueue(QUEUE);
  const waiting = new Map();
  const ids = [];
  for (let w = 0; w < settings.idle; w++) {
    ids.push(await boss.work(QUEUE, { batchSize: 1, pollingIntervalSeconds: POLL_S },
      async (jobs) => {
        for (const job of jobs) {
          const resolve = waiting.get(job.data.s);
          if (resolve) resolve(nowMs());
        }
      }));
  }
  const samples = [];
  const n = Number(process.env.BENCH_PGBOSS_SAMPLES || 60);
  for (let i = 0; i < n; i++) {
    await gap();
    const startedAt = new Promise((resolve) => waiting.set(i, resolve));
    const t0 = nowMs();
    await boss.send(QUEUE, { s: i });
    samples.push((await startedAt) - t0);
    waiting.delete(i);
  }
  for (const id of ids) await boss.offWork({ id });
  await boss.stop({ graceful: true, wait: true });
  latencyResult('pg-boss', samples);
}

async function completed() {
  const { rows } = await admin.query(
    "SELECT count(*)::int n FROM pgboss.job WHERE name = $1 AND state = 'completed'", [QUEUE]);
  return rows[0].n;
}

async function throughput(concurrency, batch) {
  const { runs, seconds } = settings;
  const label = batch === 1 ? 'pg-boss' : `pg-boss-b${batch}`;
  await admin.query('DELETE FROM pgboss.job WHERE name = $1', [QUEUE]);
  const boss = await startBoss(concurrency + 2);
  await boss.createQueue(QUEUE);
  await boss.insert(Array.from({ length: runs }, () => ({ name: QUEUE, data: {} })));
  await admin.query('VACUUM ANALYZE pgboss.job');
  let started = 0;
  let stop = false;
  const loop = async () => {
    while (!stop) {
      const jobs = await boss.fetch(QUEUE, { batchSize: batch });
      if (!jobs || jobs.length === 0) return;
      started += jobs.length;
      await boss.complete(QUEUE, jobs.map((j) => j.id));
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  const { rate, drained } = await window(runs, seconds, () => started, completed);
  stop = true;
  await Promise.all(loops);
  await boss.stop({ graceful: true, wait: true });
  log(`throughput ${label}: ${concurrency} loops: ${rate.toFixed(0)} jobs/s` +
    (drained ? ' (queue drained inside the window)' : ''));
  result('throughput', label, concurrency, rate.toFixed(1), '-', '-');
}

const batch = Number(process.env.BENCH_PGBOSS_BATCH || 50);
if (settings.mode !== 'throughput') await latency();
if (settings.mode !== 'latency') {
  for (const n of settings.levels) {
    await throughput(n, 1);
    await throughput(n, batch);
  }
}
await admin.end();
