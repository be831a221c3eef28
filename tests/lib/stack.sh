#!/usr/bin/env bash
# tests/lib/stack.sh — the whole Loom stack (deploy/stack.sh: PostgreSQL, loom-api, loom-sse,
# workers, nginx under supervisord) in a throw-away var directory, for the e2e tests.
#
#   . tests/lib/stack.sh
#   stack_start          deploy/stack.sh up with LOOM_VAR=$(mktemp -d), free random HTTP and
#                        PostgreSQL ports, LOOM_PG_FAST=1, 2 API processes x 8 threads,
#                        4 executors (STACK_API_PROCS / STACK_API_THREADS / STACK_EXECUTORS
#                        override; LOOM_API_PROCS / LOOM_API_THREADS are honoured too), and
#                        short timings so leases, Ralph and back-offs act within a test:
#                        lease 6 s, Ralph every 0.5 s, LLM timeout 3 s, back-off 5 s;
#                        exports LOOM_URL (http://127.0.0.1:PORT), LOOM_VAR, LOOM_DATABASE_URL
#                        and registers stack_cleanup on EXIT (added to any existing trap).
#   stack_stop           deploy/stack.sh down, then delete the var dir (kept if KEEP_STACK=1)
#   stack_pg_restart     restart only PostgreSQL and wait until it answers again
#   stack_ctl ARGS...    supervisorctl for this stack (status, restart loom-api:*, ...)
#   stack_logs [N]       the last N (20) lines of every log of this stack, to stderr
#   stack_sanitizer_report  stops the Loom programs (so exit-time reports are written too),
#                        prints every sanitizer report in their logs (ASan, UBSan, TSan, LSan)
#                        and a closing line "sanitizer reports: N"; returns 1 when N > 0
#   stack_cleanup        stack_stop if a stack is up; safe to call any number of times
#
# Set STACK_DATABASE_URL to run against an existing database instead of a cluster of its own.
# Runs the real stack as root too (programs as www-data / postgres), which needs the repo to
# be readable by www-data; when it is not, deploy/stack.sh serves a copy staged in <var>/app.

_STACK_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

# shellcheck source=tests/lib/trap.sh
source "$(dirname "${BASH_SOURCE[0]}")/trap.sh"

_stack_free_port() {
	local port i
	for ((i = 0; i < 50; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		[ "$port" != "${1:-}" ] || continue
		ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && continue
		printf '%s\n' "$port"
		return 0
	done
	echo "stack.sh: no free port found" >&2
	return 1
}

stack_start() {
	local attempt rc=0 http_port pg_port
	if [ -n "${_STACK_VAR:-}" ]; then
		echo "stack.sh: a stack is already running in $_STACK_VAR (stack_stop it first)" >&2
		return 1
	fi
	_STACK_VAR=$(mktemp -d "${TMPDIR:-/tmp}/loom-e2e.XXXXXX") || return 1
	# mktemp makes it 0700; as root the programs run as www-data and postgres.
	chmod 0755 "$_STACK_VAR"
	loom_trap_add stack_cleanup
	# The caller's LOOM_DATABASE_URL (say, from tests/lib/pg.sh) must not leak into the stack.
	local db=()
	[ -z "${STACK_DATABASE_URL:-}" ] || db=(LOOM_DATABASE_URL="$STACK_DATABASE_URL")
	for attempt in 1 2 3; do
		http_port=$(_stack_free_port) || return 1
		pg_port=$(_stack_free_port "$http_port") || return 1
		rc=0
		env -u LOOM_DATABASE_URL "${db[@]}" \
			LOOM_VAR="$_STACK_VAR" LOOM_HTTP_BIND=127.0.0.1 LOOM_HTTP_PORT="$http_port" \
			LOOM_PG_PORT="$pg_port" LOOM_PG_FAST=1 \
			LOOM_API_PROCS="${STACK_API_PROCS:-${LOOM_API_PROCS:-2}}" \
			LOOM_API_THREADS="${STACK_API_THREADS:-${LOOM_API_THREADS:-4}}" \
			LOOM_EXECUTORS="${STACK_EXECUTORS:-4}" \
			LOOM_LEASE_SECONDS="${LOOM_LEASE_SECONDS:-6}" LOOM_RALPH_INTERVAL_MS="${LOOM_RALPH_INTERVAL_MS:-500}" \
			LOOM_LLM_TIMEOUT_SECONDS="${LOOM_LLM_TIMEOUT_SECONDS:-3}" LOOM_LLM_RETRIES="${LOOM_LLM_RETRIES:-2}" \
			LOOM_DISPATCH_BACKOFF_SECONDS="${LOOM_DISPATCH_BACKOFF_SECONDS:-5}" \
			LOOM_PROJECT_MAX_RUNS="${LOOM_PROJECT_MAX_RUNS:-8}" \
			"$_STACK_REPO/deploy/stack.sh" up || rc=$?
		# 75: a port was taken between our check and the start; try other ports.
		[ "$rc" = 75 ] || break
		echo "stack.sh: port clash (attempt $attempt), retrying with other ports" >&2
	done
	if [ "$rc" != 0 ]; then
		echo "stack.sh: deploy/stack.sh up failed (rc $rc); var dir $_STACK_VAR" >&2
		return 1
	fi
	# The settings the stack really runs with.
	LOOM_URL=$(sed -n 's/^LOOM_URL=//p' "$_STACK_VAR/conf/stack.env")
	LOOM_DATABASE_URL=$(
		# shellcheck disable=SC1091 # written by deploy/stack.sh at run time
		. "$_STACK_VAR/conf/stack.env" && printf '%s' "$LOOM_DATABASE_URL"
	)
	LOOM_VAR=$_STACK_VAR
	LOOM_ADMIN_PASSWORD=$(head -n 1 "$_STACK_VAR/admin-password")
	export LOOM_URL LOOM_VAR LOOM_DATABASE_URL LOOM_ADMIN_PASSWORD
}

# The stack's var dir: ours, or, in a child process that sourced this file (a test's helper
# shell), the LOOM_VAR that stack_start exported.
_stack_var() {
	local v=${_STACK_VAR:-${LOOM_VAR:-}}
	if [ -z "$v" ] || [ ! -r "$v/conf/supervisord.conf" ]; then
		echo "stack.sh: no stack running (stack_start first)" >&2
		return 1
	fi
	printf '%s\n' "$v"
}

stack_ctl() {
	local v
	v=$(_stack_var) || return 1
	supervisorctl -c "$v/conf/supervisord.conf" "$@"
}

stack_pg_restart() {
	local i bindir
	stack_ctl restart postgres >/dev/null || return 1
	bindir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	for ((i = 0; i < 300; i++)); do
		"${PG_BINDIR:-$bindir}/pg_isready" -q -d "$LOOM_DATABASE_URL" && return 0
		sleep 0.1
	done
	echo "stack.sh: PostgreSQL did not come back within 30 s" >&2
	return 1
}

stack_logs() {
	local f n=${1:-20} v
	v=$(_stack_var) || return 0
	for f in "$v"/log/*.log; do
		[ -s "$f" ] || continue
		printf -- '--- %s\n' "$f" >&2
		tail -n "$n" "$f" >&2
	done
}

# The first line of every sanitizer report, as the runtimes print them.
_STACK_SANITIZER_RE='^(==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|[^ ]+:[0-9]+:[0-9]+: runtime error: )'

stack_sanitizer_report() {
	local v f n=0 hits
	v=$(_stack_var) || return 0
	stack_ctl stop 'loom-api:*' 'loom-sse:*' loom-dispatcher 'loom-executor:*' loom-ralph >/dev/null 2>&1 || true
	for f in "$v"/log/loom-*.log; do
		[ -s "$f" ] || continue
		hits=$(grep -cE "$_STACK_SANITIZER_RE" "$f" || true)
		[ "$hits" -gt 0 ] || continue
		n=$((n + hits))
		printf -- '--- %s: %s sanitizer report(s); the first:\n' "${f##*/}" "$hits"
		grep -m 1 -A 30 -E "$_STACK_SANITIZER_RE" "$f"
	done
	echo "sanitizer reports: $n"
	[ "$n" -eq 0 ]
}

stack_stop() {
	[ -n "${_STACK_VAR:-}" ] || return 0
	LOOM_VAR=$_STACK_VAR "$_STACK_REPO/deploy/stack.sh" down >/dev/null || true
	if [ "${KEEP_STACK:-0}" = 1 ]; then
		echo "stack.sh: KEEP_STACK=1: var dir kept in $_STACK_VAR" >&2
	else
		case $_STACK_VAR in
		*/loom-e2e.*) rm -rf "$_STACK_VAR" ;;
		esac
	fi
	unset _STACK_VAR LOOM_URL LOOM_VAR LOOM_DATABASE_URL LOOM_ADMIN_PASSWORD
}

stack_cleanup() { stack_stop; }
