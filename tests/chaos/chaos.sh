#!/usr/bin/env bash
# tests/chaos/chaos.sh [--short] — the fault-injection run behind `make chaos` (and, --short,
# a layer of `make check`): the whole stack on loopback in a throw-away directory
# (tests/lib/stack.sh), the scripted LLM stub as the provider, then tests/chaos/chaos.mjs
# drives the scenarios and prints the table.  Stops by itself: every wait has a deadline, and
# the stack, the stub and the connection holders are torn down on any exit.
#
#   CHAOS_BEADS             beads per scenario: 100, so 1,000 over the ten (the baseline, the
#                           eight faults one at a time, all of them together); --short: 24
#   CHAOS_FAULT_SECONDS     how long each fault lasts                 30 (--short: 8)
#   CHAOS_RECOVERY_SECONDS  the most a recovery may take              180 (--short: 90)
#   CHAOS_SCENARIOS         a comma-separated subset of the scenarios (chaos.mjs lists them)
#   CHAOS_IDLE_CONNECTIONS  connections the idle-conns scenario holds 300
#   CHAOS_PGHOLD            the connection holder (make builds it)
#
# Exit status 0 when every scenario passed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

if [ "${1:-}" = --short ]; then
	: "${CHAOS_BEADS:=24}" "${CHAOS_FAULT_SECONDS:=8}" "${CHAOS_RECOVERY_SECONDS:=90}"
	shift
fi
[ $# -eq 0 ] || {
	echo "usage: tests/chaos/chaos.sh [--short]" >&2
	exit 2
}
export CHAOS_BEADS=${CHAOS_BEADS:-100} CHAOS_FAULT_SECONDS=${CHAOS_FAULT_SECONDS:-30}
export CHAOS_RECOVERY_SECONDS=${CHAOS_RECOVERY_SECONDS:-180} STACK_EXECUTORS=${STACK_EXECUTORS:-4}
export CHAOS_PGHOLD=${CHAOS_PGHOLD:-$root/build/tests/chaos/pghold}
[ -x "$CHAOS_PGHOLD" ] || {
	echo "chaos: $CHAOS_PGHOLD is missing (make builds it)" >&2
	exit 1
}

# shellcheck source=tests/lib/stack.sh
source tests/lib/stack.sh

# The executors' action ledger lives outside the stack's directory, made before the stack so
# the executors (www-data when we are root) can open it as they start.
ledger_dir=$(mktemp -d "${TMPDIR:-/tmp}/loom-chaos.XXXXXX") || exit 1
# shellcheck disable=SC2317 # called by the EXIT trap
chaos_cleanup() { rm -rf "$ledger_dir"; }
loom_trap_add chaos_cleanup
chmod 0755 "$ledger_dir"
[ "$(id -u)" != 0 ] || chown www-data "$ledger_dir"
export CHAOS_LEDGER=$ledger_dir/actions.log

# Room for the idle connections next to Loom's own; attempts enough that repeated kills cannot
# exhaust them (a bead blocked by Ralph would count as not recovered).
if ! LOOM_ACTION_LEDGER=$CHAOS_LEDGER LOOM_PG_MAX_CONNECTIONS=$((${CHAOS_IDLE_CONNECTIONS:-300} + 120)) \
	LOOM_MAX_ATTEMPTS=${LOOM_MAX_ATTEMPTS:-50} LOOM_PROJECT_MAX_RUNS=${LOOM_PROJECT_MAX_RUNS:-16} \
	stack_start; then
	echo "chaos: the stack did not start"
	echo "0 passed, 1 failed"
	exit 1
fi
pg_port=$(sed -n 's/^LOOM_PG_PORT=//p' "$LOOM_VAR/conf/stack.env")
export CHAOS_PG_ADMIN="host=$LOOM_VAR/run/pg port=$pg_port user=postgres dbname=loom"
export LOOM_LEASE_SECONDS=${LOOM_LEASE_SECONDS:-6}

out=$ledger_dir/chaos.out
node tests/chaos/chaos.mjs | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ]; then
	echo "# the stack's logs, last lines:"
	stack_logs 15 2>&1 | sed 's/^/# /'
fi
# Builds with SANITIZE=…: a report in a program's log fails the run (one more failed line).
if ! stack_sanitizer_report; then
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	p=${line%% passed*} f=${line#*, } f=${f%% failed*}
	echo "not ok - sanitizer reports in the stack's logs"
	echo "${p:-0} passed, $((${f:-0} + 1)) failed"
	rc=1
fi
stack_stop
exit "$rc"
