// Shared by the peer benchmarks of make bench-dispatch (graphile.mjs, pgboss.mjs): the
// connection the driver hands over, timing, percentiles, the throughput window and the
// "RESULT ..." lines that tests/bench/bench-dispatch.sh reads (same format as bench_dispatch.c).
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

function envInt(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^[0-9]+$/.test(v)) throw new Error(`${name}=${v} is not a number`);
  return Number(v);
}

// BENCH_PG_HOST (socket directory), BENCH_PG_PORT, BENCH_PG_USER, BENCH_PG_DB
export function pgConfig(max) {
  return {
    host: process.env.BENCH_PG_HOST,
    port: envInt('BENCH_PG_PORT', 5432),
    user: process.env.BENCH_PG_USER || 'loom',
    database: process.env.BENCH_PG_DB,
    max,
  };
}

// A pool of at most max connections to that database; its errors are logged, not thrown.
export function pool(max) {
  const p = new pg.Pool(pgConfig(max));
  p.on('error', (e) => log(`pg pool: ${e.message}`));
  p.on('connect', (client) => client.on('error', (e) => log(`pg client: ${e.message}`)));
  return p;
}

// BENCH_MODE: latency, throughput or all (both: latency first, then every level)
export const settings = {
  mode: process.env.BENCH_MODE || 'all',
  runs: envInt('BENCH_RUNS', 20000),
  seconds: envInt('BENCH_SECONDS', 5),
  levels: (process.env.BENCH_LEVELS || '1 2 4 8').trim().split(/\s+/).map(Number),
  samples: envInt('BENCH_LAT_SAMPLES', 500),
  idle: envInt('BENCH_IDLE_EXECUTORS', 4),
  gapMin: envInt('BENCH_GAP_MIN_MS', 10),
  gapMax: envInt('BENCH_GAP_MAX_MS', 30),
};

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

export function log(msg) {
  process.stderr.write(`${msg}\n`);
}

export function result(...fields) {
  process.stdout.write(`RESULT ${fields.join(' ')}\n`);
}

// Nearest-rank percentile of sorted values (as bench_dispatch.c).
export function pct(sorted, q) {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

export function latencyResult(name, samples) {
  const v = [...samples].sort((a, b) => a - b);
  result('latency', name, pct(v, 0.5).toFixed(2), pct(v, 0.99).toFixed(2),
    v[v.length - 1].toFixed(2), v.length);
}

export async function gap() {
  const { gapMin, gapMax } = settings;
  await sleep(gapMin + Math.floor(Math.random() * (gapMax - gapMin + 1)));
}

// Jobs finished per second, as bench_dispatch.c measures runs: a 250 ms warm-up, then the
// database's count of finished jobs at both ends of a window of `seconds`, or until the queue
// ran dry.  started() is the handlers' local count, polled to see the end without loading the
// database; done() counts committed completions.
export async function window(runs, seconds, started, done) {
  await sleep(250);
  const c0 = await done();
  const t0 = nowMs();
  if (c0 >= runs) throw new Error(`the queue of ${runs} jobs drained in the warm-up`);
  while (nowMs() - t0 < seconds * 1000 && started() < runs) await sleep(5);
  let c1 = await done();
  let t1 = nowMs();
  while (started() >= runs && c1 < runs && t1 - t0 < seconds * 1000) {
    await sleep(2);
    c1 = await done();
    t1 = nowMs();
  }
  return { rate: ((c1 - c0) * 1000) / (t1 - t0), drained: c1 >= runs };
}
