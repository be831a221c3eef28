#!/usr/bin/env bash
# make bench-api: throughput and p99 latency through nginx for three API routes and a static
# file, measured in one run on one stack, with each route's ratio to the static figure.
#
#   BENCH_SECONDS (10)  BENCH_CONNECTIONS (32)  BENCH_THREADS (2)
#
# The stack is a throw-away one (tests/lib/stack.sh) with make-up settings except fsync
# (LOOM_PG_FAST=1), so the figures measure Loom, not the disk of a shared machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-32}
threads=${BENCH_THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is not installed (deploy/install-deps.sh test)"; exit 1; }

# shellcheck source=tests/lib/stack.sh
source tests/lib/stack.sh
stack_start
trap stack_stop EXIT

export BENCH_PROJECT=bench BENCH_PREFIX=bench BENCH_BEADS=1000
# Every API request carries a credential, as a real client's does: the admin's API key (each
# request is checked against the database, so this measures authentication too).
token=$(printf '{"username":"admin","password":"%s"}' "$LOOM_ADMIN_PASSWORD" |
	curl -fsS -X POST -H 'Content-Type: application/json' --data @- "$LOOM_URL/api/v1/auth/login" |
	sed -n 's/.*"token" *: *"\(lms_[0-9a-f]*\)".*/\1/p')
[ -n "$token" ] || { echo "bench-api: cannot log in as admin" >&2; exit 1; }
BENCH_KEY=$(curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
	-d '{"name":"bench-api"}' "$LOOM_URL/api/v1/auth/api-keys" | sed -n 's/.*"key" *: *"\(lmk_[0-9a-f]*\)".*/\1/p')
[ -n "$BENCH_KEY" ] || { echo "bench-api: cannot make an API key" >&2; exit 1; }
auth=(-H "Authorization: Bearer $BENCH_KEY")
curl -fsS -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' \
	-d '{"id":"bench","name":"Bench","bead_prefix":"bench"}' "$LOOM_URL/api/v1/projects"
psql -X -q -v ON_ERROR_STOP=1 "$LOOM_DATABASE_URL" -c \
	"SELECT count(loom_bead_create(json_build_object('project_id','bench','title','seed '||i,
	   'priority', i % 4, 'tags', json_build_array('t' || (i % 10)))::jsonb, 'bench'))
	 FROM generate_series(1, $BENCH_BEADS) i" >/dev/null
psql -X -q "$LOOM_DATABASE_URL" -c "VACUUM ANALYZE" >/dev/null

results=()
measure() { # name, then wrk arguments after the URL
	local name=$1 url=$2 out rps p99
	shift 2
	out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$@" "$url")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "warning: $name had non-2xx responses: $(grep 'Non-2xx' <<<"$out")" >&2
	fi
	results+=("$name|$rps|$p99")
}

curl -fsS -o /dev/null "${auth[@]}" "$LOOM_URL/api/v1/beads/bench-1"
measure "static /index.html (nginx)" "$LOOM_URL/index.html"
measure "GET /api/v1/beads/{id}" "$LOOM_URL" "${auth[@]}" -s tests/bench/get_bead.lua
measure "GET /api/v1/beads?project_id=…&limit=50" "$LOOM_URL/api/v1/beads?project_id=bench&limit=50" "${auth[@]}"
measure "POST /api/v1/beads" "$LOOM_URL/api/v1/beads" "${auth[@]}" -s tests/bench/post_bead.lua

static_rps=${results[0]#*|}
static_rps=${static_rps%%|*}
printf '\nbench-api: wrk -t%s -c%s -d%ss through nginx, %s API processes x %s threads, %s cores\n\n' \
	"$threads" "$conns" "$secs" "${LOOM_API_PROCS:-2}" "${LOOM_API_THREADS:-4}" "$(nproc)"
printf '| %-40s | %10s | %9s | %9s |\n' route 'req/s' 'p99' 'x static'
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "$(printf -- '-%.0s' {1..12})" \
	"$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..11})"
for r in "${results[@]}"; do
	IFS='|' read -r name rps p99 <<<"$r"
	printf '| %-40s | %10s | %9s | %9s |\n' "$name" "$rps" "$p99" \
		"$(awk -v a="$rps" -v b="$static_rps" 'BEGIN {printf "%.2f", a / b}')"
done
