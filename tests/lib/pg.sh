#!/usr/bin/env bash
# tests/lib/pg.sh — a throw-away PostgreSQL cluster for the integration tests.
#
# Sourced (bash):
#   . tests/lib/pg.sh
#   pg_temp_start        initdb --no-sync in a mktemp dir, fsync=off, free random port
#                        (20000-60000), database loom_test owned by role loom; exports
#                        LOOM_DATABASE_URL  host=<socket dir> port=N dbname=loom_test user=loom
#                        PG_TEMP_ADMIN_URL  the same as superuser postgres
#                        PG_TEMP_DIR        the cluster's directory (data/, sock/, server.log)
#                        and registers pg_temp_cleanup on EXIT (added to any existing trap).
#   pg_temp_stop         fast shutdown and delete the directory
#   pg_temp_restart      stop and start the same cluster on the same port
#   pg_temp_stop_only    stop, keep everything           pg_temp_start_again   start it again
#   pg_temp_cleanup      pg_temp_stop if a cluster is up; safe to call any number of times
#
# Executed (for C tests that need to restart the server under a running client):
#   tests/lib/pg.sh restart|stop-only|start-again|stop    (uses $PG_TEMP_DIR)
#   tests/lib/pg.sh start                                 (prints export lines to eval)
#
# Environment read at every start: PG_TEMP_DURABLE=1 turns fsync, synchronous_commit and
# full_page_writes back on (benchmarks of commits: make bench-dispatch); PG_TEMP_SHARED_BUFFERS
# (32MB).
#
# As root, initdb and postgres run as the postgres user (PostgreSQL refuses root).

_pg_temp_die() {
	printf 'pg.sh: %s\n' "$*" >&2
	return 1
}

_pg_temp_bindir() {
	local d best=
	if [ -n "${PG_BINDIR:-}" ]; then
		printf '%s\n' "$PG_BINDIR"
		return 0
	fi
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
		[ -x "$d/postgres" ] && best=$d
	done
	[ -n "$best" ] || _pg_temp_die "no PostgreSQL server in /usr/lib/postgresql/*/bin" || return 1
	printf '%s\n' "$best"
}

# Runs a PostgreSQL server binary as its owner: postgres when we are root, else ourselves.
_pg_temp_as_owner() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

_pg_temp_port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# Appends a command to the EXIT trap instead of replacing what the caller installed.
# shellcheck source=tests/lib/trap.sh
source "$(dirname "${BASH_SOURCE[0]}")/trap.sh"

_pg_temp_server_start() {
	local bindir=$1 port=$2 durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	[ "${PG_TEMP_DURABLE:-0}" != 1 ] ||
		durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
	_pg_temp_as_owner "$bindir/pg_ctl" -D "$PG_TEMP_DIR/data" -l "$PG_TEMP_DIR/server.log" -w -t 60 \
		-o "-p $port -k $PG_TEMP_DIR/sock -c listen_addresses=127.0.0.1 $durability -c max_connections=200 -c shared_buffers=${PG_TEMP_SHARED_BUFFERS:-32MB}" \
		start >/dev/null
}

pg_temp_start() {
	local bindir port candidate attempt base=${TMPDIR:-/tmp}
	if [ -n "${PG_TEMP_DIR:-}" ] && [ -d "$PG_TEMP_DIR/data" ]; then
		_pg_temp_die "a cluster is already running in $PG_TEMP_DIR (pg_temp_stop it first)"
		return 1
	fi
	bindir=$(_pg_temp_bindir) || return 1
	PG_TEMP_DIR=$(mktemp -d "$base/loom-pg.XXXXXX") || return 1
	export PG_TEMP_DIR
	loom_trap_add pg_temp_cleanup
	mkdir "$PG_TEMP_DIR/sock"
	chmod 0755 "$PG_TEMP_DIR" "$PG_TEMP_DIR/sock"
	if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PG_TEMP_DIR"; fi
	if ! _pg_temp_as_owner "$bindir/initdb" -D "$PG_TEMP_DIR/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 --no-sync >"$PG_TEMP_DIR/initdb.log" 2>&1; then
		cat "$PG_TEMP_DIR/initdb.log" >&2
		_pg_temp_die "initdb failed"
		return 1
	fi
	# A free port can be taken between the check and the bind: try a few.
	port=
	for attempt in 1 2 3 4 5 6 7 8; do
		candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		_pg_temp_port_free "$candidate" || continue
		if _pg_temp_server_start "$bindir" "$candidate"; then
			port=$candidate
			break
		fi
		grep -q 'already in use' "$PG_TEMP_DIR/server.log" 2>/dev/null ||
			{ tail -n 20 "$PG_TEMP_DIR/server.log" >&2; _pg_temp_die "postgres did not start"; return 1; }
	done
	[ -n "$port" ] || { _pg_temp_die "no free port found after $attempt attempts"; return 1; }
	printf '%s\n' "$port" >"$PG_TEMP_DIR/port"
	export PG_TEMP_PORT=$port
	export PG_TEMP_ADMIN_URL="host=$PG_TEMP_DIR/sock port=$port dbname=postgres user=postgres"
	export LOOM_DATABASE_URL="host=$PG_TEMP_DIR/sock port=$port dbname=loom_test user=loom"
	"$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$PG_TEMP_ADMIN_URL" \
		-c "CREATE ROLE loom LOGIN" -c "CREATE DATABASE loom_test OWNER loom" \
		-c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loom_api') THEN CREATE ROLE loom_api NOLOGIN; END IF; END \$\$" \
		-c "GRANT loom_api TO loom" >/dev/null ||
		{ _pg_temp_die "could not create loom_test"; return 1; }
}

pg_temp_stop_only() {
	local bindir
	[ -n "${PG_TEMP_DIR:-}" ] && [ -d "$PG_TEMP_DIR/data" ] || return 0
	[ -f "$PG_TEMP_DIR/data/postmaster.pid" ] || return 0
	bindir=$(_pg_temp_bindir) || return 1
	_pg_temp_as_owner "$bindir/pg_ctl" -D "$PG_TEMP_DIR/data" -m fast -w -t 60 stop >/dev/null
}

pg_temp_start_again() {
	local bindir
	if [ -z "${PG_TEMP_DIR:-}" ] || [ ! -r "$PG_TEMP_DIR/port" ]; then
		_pg_temp_die "no cluster to start (pg_temp_start first)"
		return 1
	fi
	bindir=$(_pg_temp_bindir) || return 1
	_pg_temp_server_start "$bindir" "$(<"$PG_TEMP_DIR/port")" ||
		{ tail -n 20 "$PG_TEMP_DIR/server.log" >&2; _pg_temp_die "postgres did not start again"; return 1; }
}

pg_temp_restart() {
	pg_temp_stop_only && pg_temp_start_again
}

pg_temp_stop() {
	[ -n "${PG_TEMP_DIR:-}" ] || return 0
	pg_temp_stop_only || true
	case $PG_TEMP_DIR in
	*/loom-pg.*) rm -rf "$PG_TEMP_DIR" ;;
	*) _pg_temp_die "refusing to delete $PG_TEMP_DIR" ;;
	esac
	unset PG_TEMP_DIR PG_TEMP_PORT PG_TEMP_ADMIN_URL LOOM_DATABASE_URL
}

pg_temp_cleanup() {
	[ "${KEEP_PG:-0}" = 1 ] && [ -n "${PG_TEMP_DIR:-}" ] && {
		printf 'pg.sh: KEEP_PG=1: cluster left running in %s\n' "$PG_TEMP_DIR" >&2
		return 0
	}
	pg_temp_stop
}

# Executed rather than sourced: one command against $PG_TEMP_DIR.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	start)
		pg_temp_start
		trap - EXIT INT TERM # the caller owns the cluster now
		printf 'export PG_TEMP_DIR=%q PG_TEMP_PORT=%q PG_TEMP_ADMIN_URL=%q LOOM_DATABASE_URL=%q\n' \
			"$PG_TEMP_DIR" "$PG_TEMP_PORT" "$PG_TEMP_ADMIN_URL" "$LOOM_DATABASE_URL"
		;;
	stop) pg_temp_stop ;;
	stop-only) pg_temp_stop_only ;;
	start-again) pg_temp_start_again ;;
	restart) pg_temp_restart ;;
	*)
		echo "usage: $0 start|stop|restart|stop-only|start-again  (or source it)" >&2
		exit 2
		;;
	esac
fi
