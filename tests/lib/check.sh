#!/usr/bin/env bash
# The body of `make check`: every test layer, then one closing line "N passed, M failed".
#
#   tests/lib/check.sh UNIT_BINARIES... -- INTEGRATION_BINARIES...
#
# unit: plain binaries.  integration: against a throw-away PostgreSQL (tests/lib/pg.sh),
# migrated by loom-migrate twice (the second run must apply nothing).  e2e: the whole stack
# (tests/lib/stack.sh: PostgreSQL, nginx, loom-api, loom-sse, workers under supervisord on
# random ports) driven by node's test runner over HTTP.  chaos: the short fault-injection run
# (tests/chaos/chaos.sh --short), a stack of its own.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

unit=() integ=()
target=unit
for a in "$@"; do
	if [ "$a" = "--" ]; then target=integ; continue; fi
	if [ "$target" = unit ]; then unit+=("$a"); else integ+=("$a"); fi
done

passed=0 failed=0
count() { # adds the "N passed, M failed" line of a log; a log without one is 1 failure
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		echo "  (no result line: counted as 1 failure)"
		failed=$((failed + 1))
		return
	fi
	p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
	passed=$((passed + p)); failed=$((failed + f))
}

run_binaries() { # runs test binaries, shows failures only
	local b log
	for b in "$@"; do
		log=$(mktemp)
		"$b" >"$log" 2>&1
		grep -E '^(not ok|#   )' "$log" || true
		printf '  %-45s %s\n' "$(basename "$b")" "$(grep -E '^[0-9]+ passed' "$log" | tail -n 1)"
		count "$log"
		rm -f "$log"
	done
}

echo "== unit"
run_binaries "${unit[@]}"

echo "== integration (throw-away PostgreSQL)"
# shellcheck source=tests/lib/pg.sh
source tests/lib/pg.sh
if pg_temp_start; then
	mig=$(mktemp)
	migrate=${LOOM_BIN_DIR:-build/bin}/loom-migrate
	if "$migrate" --dir sql >"$mig" 2>&1 && "$migrate" --dir sql >>"$mig" 2>&1 \
		&& grep -q '0 applied now' "$mig"; then
		echo "  migrations apply once and re-run as a no-op"; passed=$((passed + 1))
	else
		echo "  not ok - migrations"; cat "$mig"; failed=$((failed + 1))
	fi
	rm -f "$mig"
	run_binaries "${integ[@]}"
	pg_temp_stop
else
	echo "  not ok - cannot start a throw-away PostgreSQL"; failed=$((failed + 1))
fi

echo "== e2e (nginx + FastCGI + PostgreSQL under supervisord)"
e2elog=$(mktemp "${TMPDIR:-/tmp}/loom-e2e.XXXXXX") # one per run: parallel checks must not share it
tests/lib/run-e2e.sh >"$e2elog" 2>&1
# show each failing test with its YAML diagnostics, nothing for passing ones
awk '/^not ok/ {show = 1} /^(ok|# Subtest)/ {show = 0} show' "$e2elog" | head -n 200
p=$(grep -E '^# pass [0-9]+' "$e2elog" | tail -n 1 | awk '{print $3}')
f=$(grep -E '^# fail [0-9]+' "$e2elog" | tail -n 1 | awk '{print $3}')
if [ -z "$p" ]; then
	echo "  e2e produced no results:"; tail -n 40 "$e2elog"
	failed=$((failed + 1))
else
	echo "  e2e: $p passed, $f failed"
	passed=$((passed + p)); failed=$((failed + f))
fi
# sanitizer reports in the stack's logs (SANITIZE=… builds): each one is a failure
s=$(sed -n 's/^sanitizer reports: \([0-9]*\)$/\1/p' "$e2elog" | tail -n 1)
if [ -n "$s" ] && [ "$s" -gt 0 ]; then
	sed -n '/^--- loom-.*sanitizer report/,/^sanitizer reports:/p' "$e2elog" | head -n 120
	failed=$((failed + s))
elif [ -n "$s" ]; then
	echo "  e2e: no sanitizer reports in the programs' logs"
fi

echo "== chaos, short (tests/chaos/chaos.sh --short: every fault scenario on a small workload)"
chaoslog=$(mktemp "${TMPDIR:-/tmp}/loom-chaos.XXXXXX")
tests/chaos/chaos.sh --short >"$chaoslog" 2>&1
# the table, the failing scenarios and their diagnostics
grep -E '^(\||not ok|chaos:|# .*(FAILED|error))' "$chaoslog" | cut -c1-400
grep -q '^not ok' "$chaoslog" && tail -n 60 "$chaoslog"
count "$chaoslog"
rm -f "$chaoslog"

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
