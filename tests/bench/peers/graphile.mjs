// graphile-worker side of make bench-dispatch (see tests/bench/bench-dispatch.sh).
//
// Latency: a runner with BENCH_IDLE_EXECUTORS concurrency waits idle (LISTEN jobs:insert, the
// default 2 s poll behind it); one sample is addJob() → the no-op task starting, in this process.
// Throughput: for each level N, BENCH_RUNS jobs added in one addJobs() call and VACUUM ANALYZEd,
// then run({concurrency: N}) with its defaults (no local queue, no completion batching, a pool of
// N + 2 connections); jobs finished per second over the window (lib.mjs).
import gw from 'graphile-worker';
import { gap, latencyResult, log, nowMs, pool, result, settings, window } from './lib.mjs';

const { run, makeWorkerUtils, Logger } = gw;
process.env.NO_LOG_SUCCESS = '1';
const logger = new Logger(() => (level, message) => {
  if (level === 'error') log(`graphile-worker: ${message}`);
});

const admin = pool(2);
const utilsPool = pool(2);
const utils = await makeWorkerUtils({ pgPool: utilsPool, logger });
await utils.migrate();

const waiting = new Map(); // sample number → resolve(start time)
let started = 0;
const taskList = {
  noop: async (payload) => {
    started++;
    if (payload && payload.s !== undefined) {
      const resolve = waiting.get(payload.s);
      if (resolve) resolve(nowMs());
    }
  },
};

async function startRunner(concurrency) {
  const pgPool = pool(concurrency + 2);
  const runner = await run({ pgPool, concurrency, noHandleSignals: true, taskList, logger });
  return { runner, pgPool };
}

async function stopRunner({ runner, pgPool }) {
  await runner.stop();
  await pgPool.end();
}

async function latency() {
  const r = await startRunner(settings.idle);
  const samples = [];
  for (let i = 0; i < settings.samples; i++) {
    await gap();
    const startedAt = new Promise((resolve) => waiting.set(i, resolve));
    const t0 = nowMs();
    await utils.addJob('noop', { s: i });
    samples.push((await startedAt) - t0);
    waiting.delete(i);
  }
  await stopRunner(r);
  latencyResult('graphile-worker', samples);
}

async function remaining() {
  const { rows } = await admin.query('SELECT count(*)::int n FROM graphile_worker._private_jobs');
  return rows[0].n;
}

async function throughput(concurrency) {
  const { runs, seconds } = settings;
  await admin.query('DELETE FROM graphile_worker._private_jobs');
  await utils.addJobs(Array.from({ length: runs }, () => ({ identifier: 'noop', payload: {} })));
  await admin.query('VACUUM ANALYZE graphile_worker._private_jobs');
  started = 0;
  const r = await startRunner(concurrency);
  const { rate, drained } = await window(runs, seconds, () => started,
    async () => runs - (await remaining()));
  await stopRunner(r);
  log(`throughput graphile-worker: ${concurrency} workers: ${rate.toFixed(0)} jobs/s` +
    (drained ? ' (queue drained inside the window)' : ''));
  result('throughput', 'graphile-worker', concurrency, rate.toFixed(1), '-', '-');
}

if (settings.mode !== 'throughput') await latency();
if (settings.mode !== 'latency') for (const n of settings.levels) await throughput(n);
await utils.release();
await utilsPool.end();
await admin.end();
