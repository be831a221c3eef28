#!/usr/bin/env bash
# tests/lib/valgrind.sh — the workers under valgrind --leak-check=full for a short real workload
# (`make valgrind`).
#
# Starts a throw-away stack in demo mode (tests/lib/stack.sh; the scripted stub model plays the
# LLM) without executors, stops its dispatcher and Ralph, and runs loom-dispatcher, loom-ralph
# and two loom-executors under valgrind in their place, with the same database, var directory
# and settings.  The workload is the demo (deploy/demo/seed.sh): a project on a local git
# repository and three beads, one blocked by another, which the agents work to Closed — LLM
# calls, tool actions, commands in the sandbox, commits, merges.  Then every worker gets SIGTERM
# and exits the normal way, and valgrind's report is read.
#
# Passes when the three beads were closed, every worker exited with a report, and each report
# says "definitely lost: 0" and no memory errors.  Prints one line per process; the full logs
# are kept in build/valgrind/ (VALGRIND_OUT).  VALGRIND_TIMEOUT (300 s) bounds the workload;
# the workers then idle VALGRIND_LINGER (10) seconds more before they are stopped.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
out=${VALGRIND_OUT:-$root/build/valgrind}
timeout=${VALGRIND_TIMEOUT:-300}
bin=$(cd "${LOOM_BIN_DIR:-build/bin}" && pwd) || exit 1
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }

# shellcheck source=tests/lib/stack.sh
source tests/lib/stack.sh
export LOOM_DEMO=1 STACK_EXECUTORS=0
stack_start >/dev/null || { echo "valgrind.sh: the stack did not start" >&2; exit 1; }
stack_ctl stop loom-dispatcher loom-ralph >/dev/null

vgdir=$LOOM_VAR/valgrind
mkdir -p "$vgdir"
run_as=()
if [ "$(id -u)" = 0 ]; then
	chown www-data: "$vgdir"
	run_as=(runuser -u www-data --)
fi
http_port=${LOOM_URL##*:}
common=(LOOM_DATABASE_URL="$LOOM_DATABASE_URL" LOOM_VAR="$LOOM_VAR" LOOM_LOG_LEVEL=info
	HOME="$LOOM_VAR/home" LOOM_LEASE_SECONDS=60 LOOM_LLM_TIMEOUT_SECONDS=60
	LOOM_RALPH_INTERVAL_MS=1000 LOOM_DISPATCH_BACKOFF_SECONDS=5)
vg=(valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
	--num-callers=30 --trace-children=no)

pids=()
start() { # NAME PROGRAM [VAR=VALUE...]
	local name=$1 prog=$2
	shift 2
	(cd "$LOOM_VAR" && exec "${run_as[@]}" env "${common[@]}" "$@" "${vg[@]}" \
		--log-file="$vgdir/$name.vg.log" "$bin/$prog" >"$vgdir/$name.log" 2>&1) &
	pids+=($!)
}
start loom-ralph loom-ralph LOOM_PROVIDER_URL="http://127.0.0.1:$((http_port + 1))/v1" \
	LOOM_PROVIDER_MODEL=stub-model
start loom-dispatcher loom-dispatcher
start loom-executor-00 loom-executor LOOM_WORKER_NAME=executor-vg-00
start loom-executor-01 loom-executor LOOM_WORKER_NAME=executor-vg-01

failed=0
deploy/demo/seed.sh "$LOOM_URL" "$LOOM_VAR" >/dev/null || failed=1
closed=0
for ((i = 0; i < timeout && failed == 0; i++)); do
	closed=$(psql -X -At "$LOOM_DATABASE_URL" -c \
		"SELECT count(*) FROM beads WHERE project_id = 'demo' AND status = 'closed'" 2>/dev/null)
	[ "${closed:-0}" -ge 3 ] && break
	sleep 1
done
echo "valgrind.sh: demo beads closed: ${closed:-0} of 3 (after ${i} s)"
[ "${closed:-0}" -ge 3 ] || failed=1

# a few more idle ticks: Ralph's probes and maintenance, the dispatcher's wake-ups
sleep "${VALGRIND_LINGER:-10}"

# SIGTERM to the programs: valgrind runs each in its own process, which is ours or, as root,
# runuser's child (runuser itself would answer a TERM by killing it after 2 s)
for p in "${pids[@]}"; do
	kids=$(pgrep -P "$p" 2>/dev/null)
	kill -TERM ${kids:-$p} 2>/dev/null
done
for p in "${pids[@]}"; do
	wait "$p" 2>/dev/null
done

rm -rf "$out"
mkdir -p "$out"
cp "$vgdir"/* "$out/" 2>/dev/null
stack_stop

printf '%-18s %16s %8s  %s\n' program "definitely lost" errors result
for f in "$out"/*.vg.log; do
	name=$(basename "$f" .vg.log)
	lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -n 1 | tr -d ,)
	errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tail -n 1 | tr -d ,)
	# no LEAK SUMMARY at all means nothing leaked ("All heap blocks were freed")
	if [ -z "$lost" ] && grep -q 'All heap blocks were freed\|LEAK SUMMARY' "$f"; then lost=0; fi
	result=ok
	if [ -z "$errors" ]; then
		result="NO REPORT (did it exit?)"
		failed=1
	elif [ "${lost:-1}" != 0 ] || [ "$errors" != 0 ]; then
		result="FAILED: see $f"
		failed=1
	fi
	printf '%-18s %16s %8s  %s\n' "$name" "${lost:-?} bytes" "${errors:-?}" "$result"
done
[ "$failed" = 0 ] && echo "valgrind.sh: clean (definitely lost = 0 everywhere)"
exit "$failed"
