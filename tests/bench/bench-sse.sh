#!/usr/bin/env bash
# make bench-sse: how many event streams one loom-sse holds behind nginx, and what they cost.
#
# One throw-away stack (tests/lib/stack.sh: nginx, loom-api, loom-sse, PostgreSQL, dispatcher
# and Ralph; no executors), then build/tests/bench/sse_client (C, epoll, plain sockets) runs
# every level in BENCH_SSE_LEVELS (1000 5000 10000) in turn: it opens that many concurrent
# GET /api/v1/events/stream through nginx on loopback, reads VmRSS of loom-sse and of the nginx
# workers, times BENCH_SSE_HEALTH (200) sequential GET /health, then inserts BENCH_SSE_EVENTS
# (20) events BENCH_SSE_INTERVAL_MS (200) apart with loom_event() (the payload carries the
# send time, plus BENCH_SSE_PAD (0) bytes of padding) and times each one's arrival on every
# stream, while GET /health runs every 20 ms and the CPU time of loom-sse, the nginx workers
# and the client is read from /proc.  BENCH_SSE_VERBOSE=1 prints each event's first and last
# arrival.  See tests/bench/sse_client.c.
#
# Prints tables with the targets marked PASS or MISS at the largest level: every stream open
# and every event delivered, NOTIFY -> client p99 < 250 ms, loom-sse + nginx memory < 16 KiB
# per stream, /health p99 < 50 ms with the streams open.  Exits 0 when a target is missed,
# non-zero when something failed.  Bounded: every phase has a deadline (the client's: 120 s
# to connect, 60 s of /health, 15 s to deliver after the last event; 30 min for all), and the
# stack is removed on exit.  The whole default run takes about a minute.
#
# Limits: each stream holds one descriptor in the client and in loom-sse and two in nginx (the
# client connection and the FastCGI one).  The client raises its RLIMIT_NOFILE to the hard
# limit; loom-sse gets LOOM_SSE_MAX_STREAMS = the largest level + 1000; nginx's per-worker
# worker_connections and worker_rlimit_nofile come from nginx/nginx.conf.in (sized for
# 10,000 streams, see the comment there).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
client=${SSE_CLIENT:-$root/build/tests/bench/sse_client}
levels=${BENCH_SSE_LEVELS:-1000 5000 10000}
[ -x "$client" ] || { echo "bench-sse: $client is not built (make bench-sse builds it)" >&2; exit 1; }
most=0
for n in $levels; do ((n > most)) && most=$n; done
((most > 0)) || { echo "bench-sse: BENCH_SSE_LEVELS is empty" >&2; exit 1; }

# Streams past the cap would get 503; the margin covers streams of the previous level that
# loom-sse has not let go of yet.
export LOOM_SSE_MAX_STREAMS=$((most + 1000))
export STACK_EXECUTORS=0
# shellcheck source=tests/lib/stack.sh
source tests/lib/stack.sh
stack_start
work=$(mktemp -d "${TMPDIR:-/tmp}/loom-bench-sse.XXXXXX")
cleanup() { rm -rf "$work"; }
loom_trap_add cleanup

host_port=${LOOM_URL#http://}
host=${host_port%:*} port=${host_port##*:}
sse_pid=$(stack_ctl pid loom-sse:loom-sse)
nginx_master=$(<"$LOOM_VAR/nginx/nginx.pid")
nginx_workers=$(pgrep -P "$nginx_master" | paste -sd, -)
[[ $sse_pid =~ ^[1-9][0-9]*$ ]] || { echo "bench-sse: no loom-sse pid ($sse_pid)" >&2; exit 1; }
[ -n "$nginx_workers" ] || { echo "bench-sse: no nginx workers under $nginx_master" >&2; exit 1; }
# Streams need a credential (nginx asks loom-api through auth_request): the admin's session.
BENCH_SSE_TOKEN=$(printf '{"username":"admin","password":"%s"}' "$LOOM_ADMIN_PASSWORD" |
	curl -fsS -X POST -H 'Content-Type: application/json' --data @- "$LOOM_URL/api/v1/auth/login" |
	sed -n 's/.*"token" *: *"\(lms_[0-9a-f]*\)".*/\1/p')
[ -n "$BENCH_SSE_TOKEN" ] || { echo "bench-sse: cannot log in as admin" >&2; exit 1; }
export BENCH_SSE_TOKEN
# The stream must answer before the load starts (the hub reads the head first).
for ((i = 0; i < 100; i++)); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 -H "Authorization: Bearer $BENCH_SSE_TOKEN" \
		"$LOOM_URL/api/v1/events/stream" || true)
	[ "$code" = 200 ] && break
	sleep 0.1
done

echo "bench-sse: levels $levels; loom-sse pid $sse_pid, nginx workers $nginx_workers" >&2
# shellcheck disable=SC2086 # the levels are words on purpose
timeout 1800 "$client" "$host" "$port" "$sse_pid" "$nginx_workers" $levels | tee "$work/results" >&2 ||
	{ stack_logs 20; exit 1; }

# ---- the table ---------------------------------------------------------------------------
get() { awk -v k="$1" -v n="$2" -v c="$3" '$1 == "RESULT" && $2 == k && $3 == n {print $c; exit}' "$work/results"; }
base_sse=$(awk '$1 == "RESULT" && $2 == "base" {print $3}' "$work/results")
base_nginx=$(awk '$1 == "RESULT" && $2 == "base" {print $4}' "$work/results")
# KiB per stream: (the larger of idle and after-events RSS - baseline) / streams open
per() { # level column (4 = loom-sse, 5 = nginx) base
	awk -v a="$(get rss "$1" "$2")" -v b="$(get rss_events "$1" "$2")" -v z="$3" \
		-v n="$(get open "$1" 4)" \
		'BEGIN { m = a > b ? a : b; if (m == "" || n + 0 == 0) print "-"; else printf "%.1f", (m - z) / n }'
}
sum() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", a + b }'; }
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a != "-" && b != "" && a + 0 < b + 0) }'; }
verdict() { if "$@"; then echo PASS; else echo MISS; fi; }
line() { local w; printf '|'; for w in "$@"; do printf -- '-%.0s' $(seq 1 $((w + 2))); printf '|'; done; printf '\n'; }

# shellcheck disable=SC2059 # the format is the table's, passed in on purpose
row() { local f=$1; shift; printf "| $f |\n" "$@"; }
printf '\nbench-sse: nginx %s, %s cores, loopback; %s events %s ms apart per level\n' \
	"$(nginx -v 2>&1 | sed 's/.*nginx\///')" "$(nproc)" "${BENCH_SSE_EVENTS:-20}" \
	"${BENCH_SSE_INTERVAL_MS:-200}"
printf 'baseline (no stream open): loom-sse %s KiB, nginx workers %s KiB\n\n' "$base_sse" "$base_nginx"

printf 'delivery: event inserted -> its data line read, on every stream (ms)\n'
f='%7s | %7s | %7s | %8s | %8s | %8s | %15s'
row "$f" streams open 'open s' p50 p99 max delivered
line 7 7 7 8 8 8 15
for n in $levels; do
	row "$f" "$n" "$(get open "$n" 4)" "$(get open "$n" 6)" "$(get latency "$n" 4)" \
		"$(get latency "$n" 5)" "$(get latency "$n" 6)" "$(get latency "$n" 7)/$(get latency "$n" 8)"
done

printf '\ncost per stream: RSS over the baseline / streams open (KiB; the larger of idle and right\n'
printf 'after the events); CPU time per delivered event over the events phase (us)\n'
f='%7s | %9s | %9s | %9s | %9s | %9s | %9s'
row "$f" streams 'sse KiB' 'nginx KiB' 'KiB total' 'sse us' 'nginx us' 'client us'
line 7 9 9 9 9 9 9
cpu() { awk -v t="$(get cpu "$1" "$2")" -v d="$(get latency "$1" 7)" \
	'BEGIN { if (t == "" || d + 0 == 0) print "-"; else printf "%.1f", t * 1000 / d }'; }
for n in $levels; do
	s=$(per "$n" 4 "$base_sse") g=$(per "$n" 5 "$base_nginx")
	row "$f" "$n" "$s" "$g" "$(sum "$s" "$g")" "$(cpu "$n" 4)" "$(cpu "$n" 5)" "$(cpu "$n" 6)"
done

printf '\nGET /health on a new connection, streams open: quiet (back to back), and every 20 ms\n'
printf 'while the events go out (busy) (ms)\n'
f='%7s | %9s | %9s | %9s | %9s | %9s | %9s'
row "$f" streams 'quiet p50' 'quiet p99' 'quiet ok' 'busy p50' 'busy p99' 'busy ok'
line 7 9 9 9 9 9 9
for n in $levels; do
	row "$f" "$n" "$(get health "$n" 4)" "$(get health "$n" 5)" \
		"$(get health "$n" 7)/$(get health "$n" 8)" "$(get health_events "$n" 4)" \
		"$(get health_events "$n" 5)" "$(get health_events "$n" 7)/$(get health_events "$n" 8)"
done
printf 'nginx workers'"'"' open descriptors (two per stream):'
for n in $levels; do printf ' %s at %s;' "$(get fds "$n" 4)" "$n"; done
printf ' worker_connections %s each\n\n' \
	"$(awk '$1 == "worker_connections" {sub(";", "", $2); print $2}' "$LOOM_VAR/conf/nginx.conf")"

t=$most
s=$(per "$t" 4 "$base_sse") g=$(per "$t" 5 "$base_nginx")
printf 'targets at %s streams:\n' "$t"
printf '  %-46s %s\n' "all $t open and every event delivered" \
	"$(verdict test "$(get open "$t" 4)" = "$t" -a "$(get latency "$t" 7)" = "$(get latency "$t" 8)")"
printf '  %-46s %s\n' "NOTIFY -> client p99 < 250 ms" "$(verdict less "$(get latency "$t" 5)" 250)"
printf '  %-46s %s\n' "loom-sse + nginx < 16 KiB per stream" "$(verdict less "$(sum "$s" "$g")" 16)"
health_ok() { less "$(get health "$t" 5)" 50 && [ "$(get health "$t" 7)" = "$(get health "$t" 8)" ]; }
printf '  %-46s %s\n' "/health p99 < 50 ms with the streams open, all 200" "$(verdict health_ok)"
printf '  %-46s %s\n' "(info) /health p99 while the events go out" "$(get health_events "$t" 5) ms"
