#!/usr/bin/env bash
# make bench-dispatch: how fast Loom's queue hands out work, against graphile-worker and pg-boss
# measured in the same run on the same PostgreSQL.
#
#   1. latency: bead INSERT (loom_bead_create) → its run claimed by an idle executor, with the
#      real loom-dispatcher in between; BENCH_LOOM_LAT_SAMPLES sequential samples (250), each
#      BENCH_GAP_MIN_MS..BENCH_GAP_MAX_MS (205..255) after the previous run finished, so that
#      the dispatcher is idle when the bead arrives: it wakes on the bead's event, then sleeps
#      its coalescing gap (min_gap_ms = 200, workers/dispatcher.c) before the tick that queues
#      the run.  BENCH_IDLE_EXECUTORS (4) executor threads LISTEN loom_runs.
#   2. throughput: BENCH_RUNS (20000) trivial runs queued by a set-based INSERT (beads in
#      progress, one queued run each), then E = BENCH_LEVELS (1 2 4 8) executor threads loop
#      loom_run_claim, then loom_run_finish_claim (the run's end with 'completed' and the next
#      claim in one transaction, as loom-executor does) while runs come; runs finished per second over
#      BENCH_SECONDS (5) after a 250 ms warm-up, or until the queue runs dry.  Re-seeded and
#      VACUUM ANALYZEd before each level.  A diagnostic row repeats E=4 with the events table's
#      NOTIFY trigger disabled, to show what the per-event NOTIFY costs.
#   3. peers, same cluster, own databases, same trivial job (a no-op handler), same levels:
#      graphile-worker run({concurrency: N}) with its defaults; pg-boss N fetch → complete loops
#      (its work() sleeps pollingInterval after every fetch; see tests/bench/peers/pgboss.mjs).
#      pg-boss also with BENCH_PGBOSS_BATCH (50) jobs per fetch, as its docs advise.
#      Latency: graphile-worker with BENCH_IDLE_EXECUTORS idle (LISTEN), BENCH_LAT_SAMPLES
#      (500) samples 10..30 ms apart; pg-boss work() polling every 0.5 s (its minimum),
#      BENCH_PGBOSS_SAMPLES (60) samples 0..500 ms apart.
#
# The cluster is a throw-away one (tests/lib/pg.sh) with durable commits: fsync=on,
# synchronous_commit=on, full_page_writes=on.  The Loom side is build/tests/bench/bench_dispatch
# (C, libpq, one connection per executor thread); the peers are node scripts in
# tests/bench/peers (versions pinned in package-lock.json, installed with npm ci).
# Prints a table with the ratios and the targets (p99 < 5 ms; >= 2,000 runs/s at 4 executors;
# ahead of both peers) marked PASS or MISS.  Exits 0 when a target is missed, non-zero when
# something failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
bin=${LOOM_BIN_DIR:-$root/build/bin}
bench=${BENCH_DISPATCH:-$root/build/tests/bench/bench_dispatch}
export BENCH_RUNS=${BENCH_RUNS:-20000} BENCH_SECONDS=${BENCH_SECONDS:-5}
export BENCH_LEVELS=${BENCH_LEVELS:-1 2 4 8} BENCH_IDLE_EXECUTORS=${BENCH_IDLE_EXECUTORS:-4}
lat_samples=${BENCH_LOOM_LAT_SAMPLES:-250}
gap_min=${BENCH_GAP_MIN_MS:-205} gap_max=${BENCH_GAP_MAX_MS:-255}
for f in "$bin/loom-dispatcher" "$bin/loom-migrate" "$bench"; do
	[ -x "$f" ] || { echo "bench-dispatch: $f is not built (make bench-dispatch builds it)" >&2; exit 1; }
done
command -v node >/dev/null || { echo "bench-dispatch: node is not installed" >&2; exit 1; }

echo "bench-dispatch: npm ci (graphile-worker, pg-boss)" >&2
npm ci --prefix tests/bench/peers --no-audit --no-fund --loglevel=error >&2

export PG_TEMP_DURABLE=1 PG_TEMP_SHARED_BUFFERS=128MB
# shellcheck source=tests/lib/pg.sh
source tests/lib/pg.sh
pg_temp_start
work=$(mktemp -d "${TMPDIR:-/tmp}/loom-bench-dispatch.XXXXXX")
dispatcher_pid=
cleanup() {
	[ -z "$dispatcher_pid" ] || { kill "$dispatcher_pid" 2>/dev/null; wait "$dispatcher_pid" 2>/dev/null; }
	rm -rf "$work"
}
loom_trap_add cleanup

psql_admin() { psql -X -q -At -v ON_ERROR_STOP=1 "$PG_TEMP_ADMIN_URL" "$@"; }
psql_loom() { psql -X -q -At -v ON_ERROR_STOP=1 "$LOOM_DATABASE_URL" "$@"; }
psql_admin -c "CREATE DATABASE bench_graphile OWNER loom" -c "CREATE DATABASE bench_pgboss OWNER loom"
durability=$(psql_admin -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
	WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')")
pg_version=$(psql_admin -c "SHOW server_version")
"$bin/loom-migrate" --dir sql --personas deploy/personas >"$work/migrate.log" 2>&1 ||
	{ cat "$work/migrate.log" >&2; exit 1; }
"$bench" setup

echo "bench-dispatch: loom latency, $lat_samples samples (~$((lat_samples * (gap_min + 230) / 1000)) s)" >&2
"$bin/loom-dispatcher" 2>"$work/dispatcher.log" &
dispatcher_pid=$!
sleep 0.3
kill -0 "$dispatcher_pid" || { cat "$work/dispatcher.log" >&2; exit 1; }
"$bench" latency "$lat_samples" "$BENCH_IDLE_EXECUTORS" "$gap_min" "$gap_max" | tee "$work/results" >&2
kill "$dispatcher_pid"
wait "$dispatcher_pid" || true
dispatcher_pid=

export BENCH_PG_HOST=$PG_TEMP_DIR/sock BENCH_PG_PORT=$PG_TEMP_PORT BENCH_PG_USER=loom
graphile() { BENCH_PG_DB=bench_graphile node tests/bench/peers/graphile.mjs | tee -a "$work/results" >&2; }
pgboss() { BENCH_PG_DB=bench_pgboss node tests/bench/peers/pgboss.mjs | tee -a "$work/results" >&2; }
echo "bench-dispatch: graphile-worker and pg-boss latency" >&2
BENCH_MODE=latency BENCH_LAT_SAMPLES=${BENCH_LAT_SAMPLES:-500} BENCH_GAP_MIN_MS=10 \
	BENCH_GAP_MAX_MS=30 graphile
BENCH_MODE=latency BENCH_GAP_MIN_MS=0 BENCH_GAP_MAX_MS=500 pgboss

# Level by level, the three systems back to back, so that a noisy minute on a shared machine
# lands on one level of all of them rather than on all levels of one.
for e in $BENCH_LEVELS; do
	echo "bench-dispatch: throughput at $e" >&2
	"$bench" throughput loom "$BENCH_RUNS" "$BENCH_SECONDS" "$e" | tee -a "$work/results" >&2
	BENCH_MODE=throughput BENCH_LEVELS=$e graphile
	BENCH_MODE=throughput BENCH_LEVELS=$e pgboss
done
psql_loom -c "ALTER TABLE events DISABLE TRIGGER events_notify"
"$bench" throughput loom-no-notify "$BENCH_RUNS" "$BENCH_SECONDS" 4 | tee -a "$work/results" >&2
psql_loom -c "ALTER TABLE events ENABLE TRIGGER events_notify"

# ---- the table ---------------------------------------------------------------------------
get() { awk -v k="$1" -v n="$2" -v c="$3" '$1 == "RESULT" && $2 == k && $3 == n {print $c; exit}' "$work/results"; }
rate() { awk -v n="$1" -v e="$2" -v c="${3:-5}" '$1 == "RESULT" && $2 == "throughput" && $3 == n && $4 == e {print $c; exit}' "$work/results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 < b + 0) }'; }
verdict() { if "$@"; then echo PASS; else echo MISS; fi; }
line() { local w; printf '|'; for w in "$@"; do printf -- '-%.0s' $(seq 1 $((w + 2))); printf '|'; done; printf '\n'; }
batch=${BENCH_PGBOSS_BATCH:-50}

printf '\nbench-dispatch: PostgreSQL %s, %s (durable commits), %s cores, one cluster for all\n' \
	"$pg_version" "$durability" "$(nproc)"
printf 'graphile-worker %s, pg-boss %s, node %s; every system on its own connections\n\n' \
	"$(node -p "require('./tests/bench/peers/node_modules/graphile-worker/package.json').version")" \
	"$(node -p "require('./tests/bench/peers/node_modules/pg-boss/package.json').version")" \
	"$(node --version)"

printf 'enqueue -> claimed/started with %s idle workers (ms)\n' "$BENCH_IDLE_EXECUTORS"
printf '| %-50s | %8s | %8s | %8s | %7s |\n' system p50 p99 max samples
line 50 8 8 8 7
for s in "loom|loom: bead INSERT -> run claimed (via dispatcher)" \
	"graphile-worker|graphile-worker: addJob -> task start (LISTEN)" \
	"pg-boss|pg-boss: send -> handler start (polls 0.5 s)"; do
	printf '| %-50s | %8s | %8s | %8s | %7s |\n' "${s#*|}" "$(get latency "${s%%|*}" 4)" \
		"$(get latency "${s%%|*}" 5)" "$(get latency "${s%%|*}" 6)" "$(get latency "${s%%|*}" 7)"
done
printf 'loom stages p50/p99 (ms): loom_bead_create call %s/%s; bead row -> run row (dispatcher)' \
	"$(get stage insert 4)" "$(get stage insert 5)"
printf ' %s/%s;\n  run row -> claimed (dispatch commit, NOTIFY loom_runs, claim) %s/%s\n\n' \
	"$(get stage dispatch 4)" "$(get stage dispatch 5)" "$(get stage claim 4)" "$(get stage claim 5)"

printf 'claim + complete of trivial jobs, jobs/s (%s queued, %s s window; ratio = loom / peer)\n' \
	"$BENCH_RUNS" "$BENCH_SECONDS"
printf '| %5s | %8s | %8s | %8s | %9s | %8s | %8s | %9s | %9s | %9s |\n' E loom graphile \
	pg-boss "boss b$batch" 'x graph.' 'x boss' "x b$batch" 'claim ms' 'finish ms'
line 5 8 8 8 9 8 8 9 9 9
for e in $BENCH_LEVELS; do
	l=$(rate loom "$e") g=$(rate graphile-worker "$e") b=$(rate pg-boss "$e")
	bb=$(rate "pg-boss-b$batch" "$e")
	printf '| %5s | %8s | %8s | %8s | %9s | %8s | %8s | %9s | %9s | %9s |\n' "$e" "$l" "$g" "$b" \
		"$bb" "$(ratio "$l" "$g")" "$(ratio "$l" "$b")" "$(ratio "$l" "$bb")" \
		"$(rate loom "$e" 6)" "$(rate loom "$e" 7)"
done
printf 'E: executor threads (loom), run({concurrency: E}) (graphile-worker), fetch -> complete loops\n'
printf '(pg-boss: 1 job per fetch; b%s: %s per fetch).  claim ms: mean loom_run_claim (the first\n' \
	"$batch" "$batch"
printf 'claim of each executor); finish ms: mean loom_run_finish_claim (a run'"'"'s end and the next claim).\n'
printf 'diagnostic: loom, 4 executors, events NOTIFY trigger disabled: %s runs/s (%sx loom at 4)\n\n' \
	"$(rate loom-no-notify 4)" "$(ratio "$(rate loom-no-notify 4)" "$(rate loom 4)")"

tput_ahead() {
	local e p
	for e in $BENCH_LEVELS; do
		for p in graphile-worker pg-boss "pg-boss-b$batch"; do
			less "$(rate "$p" "$e")" "$(rate loom "$e")" || return 1
		done
	done
}
lat_ahead() {
	local p
	for p in graphile-worker pg-boss; do
		less "$(get latency loom 4)" "$(get latency "$p" 4)" || return 1
		less "$(get latency loom 5)" "$(get latency "$p" 5)" || return 1
	done
}
printf 'targets\n'
printf '  %-60s %s (p99 %s ms)\n' 'latency p99 < 5 ms' "$(verdict less "$(get latency loom 5)" 5)" \
	"$(get latency loom 5)"
printf '  %-60s %s (%s runs/s)\n' '>= 2,000 runs/s at 4 executors' \
	"$(verdict less 1999.999 "$(rate loom 4)")" "$(rate loom 4)"
printf '  %-60s %s\n' 'latency ahead of both peers (p50 and p99)' "$(verdict lat_ahead)"
printf '  %-60s %s\n' 'throughput ahead of both peers (every E, both pg-boss rows)' \
	"$(verdict tput_ahead)"
