#!/usr/bin/env bash
# deploy/stack.sh up|down|status — runs the whole Loom stack from one var directory:
# supervisord supervising PostgreSQL, loom-api, loom-sse, the workers and nginx.
# This is the one implementation behind `make up` / `make down` / `make status` and the e2e
# tests (tests/lib/stack.sh).
#
# Settings (environment):
#   LOOM_VAR            var directory                        default <repo>/var
#   LOOM_HTTP_BIND      nginx listen address (IPv4)          default 127.0.0.1 (0.0.0.0 allowed)
#   LOOM_HTTP_PORT      nginx listen port                    default 8080
#   LOOM_PG_PORT        port of the cluster in <var>/pg      default 5544
#   LOOM_DATABASE_URL   use this external PostgreSQL instead: no cluster is created or supervised
#   LOOM_API_PROCS      loom-api processes                   default 2
#   LOOM_API_THREADS    threads per loom-api process         default 4
#   LOOM_EXECUTORS      loom-executor processes (0 = none)   default 2
#   LOOM_SSE_MAX_STREAMS  stream cap passed to loom-sse      default: loom-sse's own
#   LOOM_LOG_LEVEL      passed to every Loom program         default info
#   LOOM_PG_FAST=1      fsync=off, full_page_writes=off, initdb --no-sync (tests only)
#   LOOM_PG_MAX_CONNECTIONS  the local cluster's max_connections         default 300
#   LOOM_PROVIDER_URL, LOOM_PROVIDER_API_KEY, LOOM_PROVIDER_MODEL
#                       registered as provider "default" by loom-ralph when there is none
#   LOOM_SECRET_KEY     32 bytes (64 hex digits or base64) that seal stored API keys; unset:
#                       <var>/secret.key, made (0600) on the first `up` and kept — back it up
#   LOOM_DEMO=1         with no LOOM_PROVIDER_URL: supervise the scripted stub model
#                       (tests/fixtures/llm-stub.mjs, deploy/demo/stub-script.json) on
#                       LOOM_STUB_PORT (default HTTP port + 1) and use it as the provider
#   LOOM_LEASE_SECONDS, LOOM_LLM_*, LOOM_COMMAND_TIMEOUT_SECONDS, LOOM_RALPH_*, LOOM_MAX_* …
#                       worker tunables (list: LOOM_TUNABLES below), passed on when set
#   LOOM_BIN_DIR        where the programs are               default <repo>/build/bin
#   ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS, LSAN_OPTIONS
#                       passed on to the Loom programs when set (sanitizer builds)
#   PG_BINDIR           PostgreSQL server binaries           default newest /usr/lib/postgresql/*/bin
#
# Layout of <var>: pg/data (cluster), run/ (supervisor, FastCGI and pg/ sockets, pid files),
# log/, conf/ (rendered configs + stack.env), nginx/ (prefix, temp paths), projects/, home/,
# secret.key (unless LOOM_SECRET_KEY is set).
# As root, nginx and the Loom programs run as www-data and PostgreSQL as postgres; otherwise
# everything runs as the invoking user.
#
# Exit codes: 0 ok; 1 failure; 3 `status` found nothing running; 75 `up` found a port taken
# by something else (tests/lib/stack.sh retries with other ports).
set -euo pipefail
umask 022
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DEPLOY=$REPO/deploy
EX_PORT_TAKEN=75

die() { printf 'stack: %s\n' "$*" >&2; exit 1; }
say() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: warning: %s\n' "$*" >&2; }

# ---- settings -------------------------------------------------------------------------------

# Paths end up unquoted in nginx and supervisord configs, conninfo strings and sun_path.
check_path() {
	[[ $2 == /* && $2 =~ ^[A-Za-z0-9_./+-]+$ ]] ||
		die "$1 must be an absolute path made of [A-Za-z0-9_./+-] only: '$2'"
}

check_uint() {
	if [[ $2 =~ ^[1-9][0-9]{0,8}$|^0$ ]] && (($2 >= $3 && $2 <= $4)); then return 0; fi
	die "$1 must be an integer in $3..$4: '$2'"
}

load_settings() {
	VAR=${LOOM_VAR:-$REPO/var}
	[[ $VAR == /* ]] || VAR=$PWD/$VAR
	VAR=${VAR%/}
	check_path LOOM_VAR "$VAR"
	HTTP_BIND=${LOOM_HTTP_BIND:-127.0.0.1}
	[[ $HTTP_BIND =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "LOOM_HTTP_BIND must be an IPv4 address: '$HTTP_BIND'"
	HTTP_PORT=${LOOM_HTTP_PORT:-8080}
	PG_PORT=${LOOM_PG_PORT:-5544}
	API_PROCS=${LOOM_API_PROCS:-2}
	API_THREADS=${LOOM_API_THREADS:-4}
	EXECUTORS=${LOOM_EXECUTORS:-2}
	SSE_MAX_STREAMS=${LOOM_SSE_MAX_STREAMS:-}
	LOG_LEVEL=${LOOM_LOG_LEVEL:-info}
	check_uint LOOM_HTTP_PORT "$HTTP_PORT" 1 65535
	check_uint LOOM_PG_PORT "$PG_PORT" 1 65535
	check_uint LOOM_API_PROCS "$API_PROCS" 1 64
	check_uint LOOM_API_THREADS "$API_THREADS" 1 4096
	check_uint LOOM_EXECUTORS "$EXECUTORS" 0 64
	[ -z "$SSE_MAX_STREAMS" ] || check_uint LOOM_SSE_MAX_STREAMS "$SSE_MAX_STREAMS" 1 1000000
	[[ $LOG_LEVEL =~ ^[a-z]+$ ]] || die "LOOM_LOG_LEVEL must be a lower-case word: '$LOG_LEVEL'"
	PG_FAST=${LOOM_PG_FAST:-0}
	PG_MAX_CONNECTIONS=${LOOM_PG_MAX_CONNECTIONS:-300}
	check_uint LOOM_PG_MAX_CONNECTIONS "$PG_MAX_CONNECTIONS" 20 10000
	# The demo: the scripted stub stands in for a model (only when no provider is configured).
	DEMO=${LOOM_DEMO:-0}
	[ -z "${LOOM_PROVIDER_URL:-}" ] || DEMO=0
	STUB_PORT=${LOOM_STUB_PORT:-$((HTTP_PORT + 1))}
	check_uint LOOM_STUB_PORT "$STUB_PORT" 1 65535
	if [ "$DEMO" = 1 ]; then
		LOOM_PROVIDER_URL=http://127.0.0.1:$STUB_PORT/v1
		LOOM_PROVIDER_MODEL=stub-model
	fi
	BIN_DIR=${LOOM_BIN_DIR:-$REPO/build/bin}
	SQL_DIR=$REPO/sql
	STATIC_DIR=$REPO/static
	PERSONAS_DIR=$REPO/deploy/personas
	[ -d "$PERSONAS_DIR" ] || PERSONAS_DIR=
	check_path LOOM_BIN_DIR "$BIN_DIR"
	check_path "the repository path" "$REPO"

	PG_SOCKET_DIR=$VAR/run/pg
	if [ -n "${LOOM_DATABASE_URL:-}" ]; then
		PG_LOCAL=0
		DB_URL=$LOOM_DATABASE_URL
	else
		PG_LOCAL=1
		DB_URL="host=$PG_SOCKET_DIR port=$PG_PORT dbname=loom user=loom"
	fi
	URL_HOST=$HTTP_BIND
	[ "$URL_HOST" != 0.0.0.0 ] || URL_HOST=127.0.0.1
	URL="http://$URL_HOST:$HTTP_PORT"
	CONF=$VAR/conf/supervisord.conf

	if [ "$(id -u)" = 0 ]; then
		APP_USER=www-data PG_USER=postgres
	else
		APP_USER=$(id -un) PG_USER=$APP_USER
	fi
}

# Run a command as the user the programs run as (www-data / postgres when root), from <var>,
# so an unreadable cwd such as /root does not matter.
as_user() {
	local user=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		(cd "$VAR" && runuser -u "$user" -- "$@")
	else
		(cd "$VAR" && "$@")
	fi
}

find_pg_bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		[ -x "$PG_BINDIR/postgres" ] || die "PG_BINDIR=$PG_BINDIR has no postgres binary"
		return
	fi
	local d
	PG_BINDIR=
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
		[ -x "$d/postgres" ] && PG_BINDIR=$d
	done
	[ -n "$PG_BINDIR" ] || die "no PostgreSQL server found in /usr/lib/postgresql/*/bin (run deploy/install-deps.sh run)"
}

find_nginx() {
	NGINX=$(command -v nginx || true)
	[ -n "$NGINX" ] || die "nginx not found (run deploy/install-deps.sh run)"
	command -v supervisord >/dev/null || die "supervisord not found (run deploy/install-deps.sh run)"
}

# ---- supervisord ------------------------------------------------------------------------------

ctl() { supervisorctl -c "$CONF" "$@"; }

# Prints the pid of the supervisord that runs this var directory; fails if there is none.
supervisord_pid() {
	local pid
	[ -r "$VAR/run/supervisord.pid" ] || return 1
	pid=$(<"$VAR/run/supervisord.pid")
	[[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF" || return 1
	printf '%s\n' "$pid"
}

# supervisord keeps every inherited descriptor above 2 for its whole life: a caller's pipe
# (a test harness capturing output) would never see EOF, and our own lock would stay held.
start_supervisord() (
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
	done
	exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 HOME="$VAR/home" ${TZ:+TZ="$TZ"} supervisord -c "$CONF"
)

wait_supervisord() {
	local i
	for ((i = 0; i < 100; i++)); do
		ctl pid >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	tail -n 20 "$VAR/log/supervisord.log" >&2 2>/dev/null || true
	die "supervisord did not come up (see $VAR/log/supervisord.log)"
}

# ---- preparing <var> --------------------------------------------------------------------------

make_dirs() {
	mkdir -p "$VAR"/{pg,run/pg,log,conf,projects,home} "$VAR"/nginx/tmp/{client_body,fastcgi,proxy,uwsgi,scgi}
	chmod 0755 "$VAR" "$VAR/run" "$VAR/run/pg" "$VAR/conf" "$VAR/nginx"
	chmod 0700 "$VAR/pg"
	chmod 0750 "$VAR/log" "$VAR/projects" "$VAR/home"
	touch "$VAR/log/nginx-error.log"
	if [ "$(id -u)" = 0 ]; then
		id -u www-data >/dev/null 2>&1 || die "user www-data does not exist (is nginx installed?)"
		id -u postgres >/dev/null 2>&1 || die "user postgres does not exist (is postgresql installed?)"
		chown postgres:postgres "$VAR/pg" "$VAR/run/pg"
		chown root:www-data "$VAR/log"
		chown www-data:www-data "$VAR/projects" "$VAR/home" "$VAR/log/nginx-error.log"
		chown -R www-data:www-data "$VAR/nginx"
	fi
}

# True when www-data can use every program in $1 and read the directories $2 and $3.
www_data_reaches() {
	local b
	for b in loom-api loom-sse loom-migrate loom-dispatcher loom-executor loom-ralph; do
		runuser -u www-data -- test -x "$1/$b" || return 1
	done
	runuser -u www-data -- test -r "$2" -a -x "$2" || return 1
	[ ! -d "$3" ] || runuser -u www-data -- test -r "$3" -a -x "$3"
}

# The repository is out of www-data's reach (a checkout under /root, say): serve a copy of the
# programs, migrations and dashboard from <var>/app instead, refreshed on every `up`.
stage_app() {
	local app=$VAR/app
	warn "www-data cannot read $REPO; serving a copy from $app (refreshed on every up)"
	rm -rf "$app.new"
	mkdir -p "$app.new/bin"
	cp -p "$BIN_DIR"/loom-* "$app.new/bin/"
	cp -rp "$SQL_DIR" "$app.new/sql"
	[ ! -d "$STATIC_DIR" ] || cp -rp "$STATIC_DIR" "$app.new/static"
	[ ! -d "$PERSONAS_DIR" ] || cp -rp "$PERSONAS_DIR" "$app.new/personas"
	chmod -R a+rX "$app.new"
	rm -rf "$app"
	mv "$app.new" "$app"
	BIN_DIR=$app/bin SQL_DIR=$app/sql STATIC_DIR=$app/static PERSONAS_DIR=${PERSONAS_DIR:+$app/personas}
	www_data_reaches "$BIN_DIR" "$SQL_DIR" "$STATIC_DIR" ||
		die "www-data cannot reach $app either: every parent directory of $VAR must be traversable by other users"
}

# As root, the programs run as www-data and postgres: they must reach what they use. Only
# <var> is ours to fix; the repository's permissions are reported, never changed.
check_access() {
	local b
	for b in loom-api loom-sse loom-migrate loom-dispatcher loom-executor loom-ralph; do
		[ -x "$BIN_DIR/$b" ] || die "missing $BIN_DIR/$b: build first (make)"
	done
	[ -d "$REPO/sql" ] || die "missing $REPO/sql"
	[ -d "$REPO/static" ] || warn "missing $REPO/static: the dashboard will not be served"
	[ "$(id -u)" = 0 ] || return 0
	if ! www_data_reaches "$BIN_DIR" "$SQL_DIR" "$STATIC_DIR"; then
		stage_app
	fi
	runuser -u www-data -- test -x "$VAR/run" -a -w "$VAR/projects" ||
		die "www-data cannot reach $VAR: every parent directory must be traversable by other users"
	if [ "$PG_LOCAL" = 1 ]; then
		runuser -u postgres -- test -w "$VAR/pg" -a -w "$PG_SOCKET_DIR" ||
			die "postgres cannot reach $VAR/pg: every parent directory must be traversable by other users"
	fi
}

check_socket_paths() {
	local p
	# sun_path holds 107 bytes plus the NUL.
	for p in "$VAR/run/supervisor.sock" "$VAR/run/loom-api.sock" "$VAR/run/loom-sse.sock" \
		"$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT.lock"; do
		[ "${#p}" -le 107 ] || die "socket path too long (${#p} > 107 bytes): $p; use a shorter LOOM_VAR"
	done
}

port_taken() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# ---- PostgreSQL -------------------------------------------------------------------------------

pg_major() { "$PG_BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/'; }

init_cluster() {
	local data=$VAR/pg/data
	if [ -f "$data/PG_VERSION" ]; then
		[ "$(cat "$data/PG_VERSION")" = "$(pg_major)" ] ||
			die "$data was made by PostgreSQL $(cat "$data/PG_VERSION"), but $PG_BINDIR is $(pg_major)"
		return 0
	fi
	say "creating the PostgreSQL cluster in $data"
	local args=(-D "$data.new" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256)
	[ "$PG_FAST" != 1 ] || args+=(--no-sync)
	rm -rf "$data.new"
	# Built aside and renamed, so an interrupted initdb never passes for a cluster.
	if ! as_user "$PG_USER" "$PG_BINDIR/initdb" "${args[@]}" >"$VAR/log/initdb.log" 2>&1; then
		tail -n 20 "$VAR/log/initdb.log" >&2
		die "initdb failed (see $VAR/log/initdb.log)"
	fi
	mv "$data.new" "$data"
}

wait_pg() {
	local i state
	for ((i = 0; i < 600; i++)); do
		if [ "$PG_LOCAL" = 1 ]; then
			"$PG_BINDIR/pg_isready" -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres && return 0
			if ((i % 10 == 9)); then
				state=$(ctl status postgres 2>/dev/null || true)
				[[ $state != *FATAL* ]] || fail_with_logs "PostgreSQL does not start: $state"
			fi
		else
			"$PG_BINDIR/pg_isready" -q -d "$DB_URL" && return 0
		fi
		sleep 0.1
	done
	fail_with_logs "PostgreSQL is not ready after 60 s"
}

# Roles and database for the local cluster (loom_api: the role loom-api takes for the requests
# of non-admin users, sql/016_rls_roles.sql); repeated on every `up`, a no-op once they exist.
bootstrap_db() {
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres >/dev/null <<'SQL'
SELECT 'CREATE ROLE loom LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loom') \gexec
SELECT 'CREATE ROLE loom_api NOLOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loom_api') \gexec
GRANT loom_api TO loom;
SELECT 'CREATE DATABASE loom OWNER loom ENCODING ''UTF8''' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'loom') \gexec
SQL
}

# The key that seals provider API keys at rest (shared/secret.c): LOOM_SECRET_KEY, passed on to
# the programs, or else <var>/secret.key, 32 random bytes in hex made once, readable by the
# programs' user alone.  Losing it loses the stored keys (they must be registered again).
ensure_secret_key() {
	local f=$VAR/secret.key
	[ -z "${LOOM_SECRET_KEY:-}" ] || return 0
	[ ! -e "$f" ] || return 0
	say "creating $f (it seals stored API keys: keep it, and back it up with the database)"
	(
		umask 077
		od -An -tx1 -N32 -v /dev/urandom | tr -d ' \n' >"$f.new"
		echo >>"$f.new"
	)
	[ "$(wc -c <"$f.new")" = 65 ] || die "cannot make $f from /dev/urandom"
	[ "$(id -u)" != 0 ] || chown "$APP_USER:" "$f.new"
	mv -f "$f.new" "$f"
}

# The first admin's password: LOOM_ADMIN_PASSWORD, else a random one made on the first run;
# kept in <var>/admin-password (mode 0600) for `make up` to print.  loom-migrate creates the
# admin with it only while no admin exists, so a password changed in the UI stays changed.
admin_password() {
	local f=$VAR/admin-password
	if [ -n "${LOOM_ADMIN_PASSWORD:-}" ]; then
		(umask 077 && printf '%s\n' "$LOOM_ADMIN_PASSWORD" >"$f")
	elif [ ! -s "$f" ]; then
		(umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$f")
		: >"$VAR/run/admin-password.new"
	fi
	head -n 1 "$f"
}

migrate() {
	local pw
	pw=$(admin_password)
	as_user "$APP_USER" env LOOM_DATABASE_URL="$DB_URL" LOOM_VAR="$VAR" LOOM_LOG_LEVEL="$LOG_LEVEL" \
		LOOM_ADMIN_PASSWORD="$pw" "$BIN_DIR/loom-migrate" --dir "$SQL_DIR" ${PERSONAS_DIR:+--personas "$PERSONAS_DIR"} ||
		fail_with_logs "loom-migrate failed"
}

# ---- rendering ----------------------------------------------------------------------------------

# A value inside environment="..." in supervisord.conf: % is supervisord's expansion character,
# a double quote would end the value, and " ;" or " #" would start a comment.
supervisor_value() { # VALUE [NAME]: VALUE escaped for a supervisord environment= line
	local v=$1
	[[ $v != *\"* && $v != *$'\n'* && ! $v =~ [[:space:]][\;#] ]] ||
		die "${2:-LOOM_DATABASE_URL} cannot contain a double quote, a newline, or ' ;' / ' #'"
	printf '%s' "${v//%/%%}"
}

# ,LOOM_PROVIDER_URL="…",… for the provider settings that are set (loom-ralph registers them).
provider_env() {
	local name out=
	for name in LOOM_PROVIDER_URL LOOM_PROVIDER_API_KEY LOOM_PROVIDER_MODEL; do
		[ -z "${!name:-}" ] || out+=",$name=\"$(supervisor_value "${!name}" "$name")\""
	done
	printf '%s' "$out"
}

# ,LOOM_SECRET_KEY="…" for loom-api and the workers that seal or open API keys, when it is set.
secret_env() {
	[ -z "${LOOM_SECRET_KEY:-}" ] ||
		printf ',LOOM_SECRET_KEY="%s"' "$(supervisor_value "$LOOM_SECRET_KEY" LOOM_SECRET_KEY)"
}

# ,NAME="…",… for the worker tunables that are set in the caller's environment.
LOOM_TUNABLES="LOOM_LEASE_SECONDS LOOM_LLM_TIMEOUT_SECONDS LOOM_LLM_CONNECT_TIMEOUT_SECONDS
LOOM_LLM_RETRIES LOOM_LLM_STREAM LOOM_COMMAND_TIMEOUT_SECONDS LOOM_BUDGET_WAIT_SECONDS LOOM_PROJECTS_DIR LOOM_MAX_ATTEMPTS
LOOM_RALPH_STUCK_SECONDS LOOM_RALPH_RECOVER_SECONDS LOOM_RALPH_AUTH_RECOVER_SECONDS
LOOM_RALPH_RECOVER_EVERY_SECONDS LOOM_RALPH_INTERVAL_MS LOOM_DISPATCH_BATCH LOOM_MAX_HOPS LOOM_PROJECT_MAX_RUNS
LOOM_DISPATCH_BACKOFF_SECONDS LOOM_EVENTS_RETENTION_DAYS LOOM_LOGS_RETENTION_DAYS LOOM_METRICS_FLUSH_MS LOOM_SANDBOX LOOM_SANDBOX_CPU_SECONDS
LOOM_SANDBOX_MEMORY_MB LOOM_SANDBOX_FILE_MB LOOM_SANDBOX_NPROC LOOM_SANDBOX_NOFILE LOOM_SANDBOX_TMP_MB
LOOM_SANDBOX_RO_PATHS LOOM_SANDBOX_BWRAP LOOM_SESSION_IDLE_SECONDS LOOM_SESSION_MAX_SECONDS
LOOM_LOGIN_MAX_FAILURES LOOM_LOGIN_MAX_FAILURES_PER_IP LOOM_LOGIN_WINDOW_SECONDS
LOOM_API_LLM_REQUESTS LOOM_PAIR_COMMAND_TIMEOUT_SECONDS LOOM_ACTION_LEDGER LOOM_EXECUTOR_RECLAIM"
tunables_env() {
	local name out=
	for name in $LOOM_TUNABLES; do
		[ -z "${!name:-}" ] || out+=",$name=\"$(supervisor_value "${!name}" "$name")\""
	done
	printf '%s' "$out"
}

# ,ASAN_OPTIONS="…",… for the Loom programs when the caller set them: a stack running programs
# built with SANITIZE=… (make check-asan / check-tsan) reports findings in the programs' logs.
SANITIZER_VARS="ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS LSAN_OPTIONS"
sanitizer_env() {
	local name out=
	for name in $SANITIZER_VARS; do
		[ -z "${!name:-}" ] || out+=",$name=\"$(supervisor_value "${!name}" "$name")\""
	done
	printf '%s' "$out"
}

# The stub and its script, copied where the programs' user can read them.
stage_demo() {
	[ "$DEMO" = 1 ] || return 0
	command -v node >/dev/null || die "the demo model needs node (deploy/install-deps.sh run installs it)"
	mkdir -p "$VAR/demo"
	cp "$REPO/tests/fixtures/llm-stub.mjs" "$DEPLOY/demo/stub-script.json" "$VAR/demo/"
	chmod 0755 "$VAR/demo"
	chmod 0644 "$VAR/demo/llm-stub.mjs" "$VAR/demo/stub-script.json"
}

render_configs() {
	local minfds=20000 hard app_user_line=";(runs as the invoking user)" pg_user_line=";(runs as the invoking user)"
	local socket_owner_line=";(socket owned by the invoking user)" pg_fsync=on executors_on=0
	hard=$(ulimit -Hn)
	if [ "$(id -u)" = 0 ]; then
		app_user_line="user=www-data"
		pg_user_line="user=postgres"
		socket_owner_line="socket_owner=www-data:www-data"
	elif [ "$hard" != unlimited ] && ((hard < minfds)); then
		warn "open-file hard limit is $hard: supervisord minfds lowered to it (SSE capacity shrinks)"
		minfds=$hard
	fi
	[ "$PG_FAST" != 1 ] || pg_fsync=off
	((EXECUTORS == 0)) || executors_on=1

	"$DEPLOY/render.sh" "$REPO/nginx/nginx.conf.in" "$VAR/conf/nginx.conf" 0644 -- \
		STATIC_DIR="$STATIC_DIR" VAR="$VAR" HTTP_BIND="$HTTP_BIND" HTTP_PORT="$HTTP_PORT" \
		API_UPSTREAM="server unix:$VAR/run/loom-api.sock;" SSE_UPSTREAM="server unix:$VAR/run/loom-sse.sock;" \
		FASTCGI_READ_TIMEOUT=60s
	"$DEPLOY/render.sh" "$DEPLOY/supervisord.conf.in" "$CONF" 0600 -- \
		VAR="$VAR" BIN_DIR="$BIN_DIR" NGINX="$NGINX" MINFDS="$minfds" \
		PG_LOCAL="$PG_LOCAL" PG_BINDIR="$PG_BINDIR" PG_PORT="$PG_PORT" PG_SOCKET_DIR="$PG_SOCKET_DIR" \
		PG_FSYNC="$pg_fsync" PG_MAX_CONNECTIONS="$PG_MAX_CONNECTIONS" PG_USER_LINE="$pg_user_line" APP_USER_LINE="$app_user_line" \
		SOCKET_OWNER_LINE="$socket_owner_line" DATABASE_URL="$(supervisor_value "$DB_URL")" \
		LOG_LEVEL="$LOG_LEVEL" API_PROCS="$API_PROCS" API_THREADS="$API_THREADS" \
		SSE_MAX_STREAMS="$SSE_MAX_STREAMS" EXECUTORS="$EXECUTORS" EXECUTORS_ON="$executors_on" \
		PROVIDER_ENV="$(provider_env)" TUNABLES_ENV="$(tunables_env)" SECRET_ENV="$(secret_env)" \
		SANITIZER_ENV="$(sanitizer_env)" \
		STUB_ON="$DEMO" STUB_PORT="$STUB_PORT" NODE="$(command -v node || echo node)"

	# What `status` and tests/lib/stack.sh read back (may hold a password: 0600).
	(
		umask 077
		{
			printf 'LOOM_URL=%q\n' "$URL"
			printf 'LOOM_VAR=%q\n' "$VAR"
			printf 'LOOM_HTTP_BIND=%q\n' "$HTTP_BIND"
			printf 'LOOM_HTTP_PORT=%q\n' "$HTTP_PORT"
			printf 'LOOM_PG_LOCAL=%q\n' "$PG_LOCAL"
			printf 'LOOM_PG_PORT=%q\n' "$PG_PORT"
			printf 'LOOM_DATABASE_URL=%q\n' "$DB_URL"
		} >"$VAR/conf/stack.env.new"
	)
	mv -f "$VAR/conf/stack.env.new" "$VAR/conf/stack.env"

	local out
	if ! out=$(as_user "$APP_USER" "$NGINX" -t -q -p "$VAR/nginx" -c "$VAR/conf/nginx.conf" -g "daemon off;" 2>&1); then
		printf '%s\n' "$out" >&2
		die "nginx rejects $VAR/conf/nginx.conf"
	fi
}

# ---- failure report ---------------------------------------------------------------------------

fail_with_logs() {
	local f
	printf 'stack: %s\n' "$1" >&2
	ctl status >&2 2>/dev/null || true
	for f in supervisord.log postgres.log nginx-error.log nginx.log loom-api_00.log loom-sse.log \
		loom-dispatcher.log loom-executor_00.log loom-ralph.log; do
		[ -s "$VAR/log/$f" ] || continue
		printf -- '--- tail of %s\n' "$VAR/log/$f" >&2
		tail -n 15 "$VAR/log/$f" >&2
	done
	printf 'stack: the stack is left as it is for inspection; stop it with: LOOM_VAR=%s %s down\n' "$VAR" "$0" >&2
	exit 1
}

# supervisorctl start waits startsecs per group, one group after the other: start the groups
# side by side instead (about 1 s in all rather than 1 s per group).
start_programs() {
	local targets=('loom-api:*' 'loom-sse:*' loom-dispatcher loom-ralph nginx) t i=0 failed=0
	((EXECUTORS == 0)) || targets+=('loom-executor:*')
	[ "$DEMO" != 1 ] || targets+=(llm-stub)
	local outdir pids=()
	outdir=$(mktemp -d)
	for t in "${targets[@]}"; do
		ctl start "$t" >"$outdir/$i" 2>&1 &
		pids+=($!)
		i=$((i + 1))
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || failed=1
	done
	if [ "$failed" = 1 ]; then
		cat "$outdir"/* >&2
		rm -rf "$outdir"
		fail_with_logs "a program did not start"
	fi
	rm -rf "$outdir"
}

# ---- commands ---------------------------------------------------------------------------------

cmd_up() {
	find_pg_bindir
	find_nginx
	check_socket_paths
	make_dirs
	exec 9>"$VAR/run/stack.lock"
	flock -w 300 9 || die "another stack.sh holds $VAR/run/stack.lock"
	check_access

	local running=0 p ports=("$HTTP_PORT")
	if supervisord_pid >/dev/null; then
		running=1
	else
		[ "$PG_LOCAL" = 0 ] || ports+=("$PG_PORT")
		[ "$DEMO" != 1 ] || ports+=("$STUB_PORT")
		for p in "${ports[@]}"; do
			if port_taken "$p"; then
				printf 'stack: port %s is already in use (set LOOM_HTTP_PORT / LOOM_PG_PORT)\n' "$p" >&2
				exit "$EX_PORT_TAKEN"
			fi
		done
	fi
	[ "$PG_LOCAL" = 0 ] || init_cluster
	ensure_secret_key
	stage_demo
	render_configs

	local nginx_was_running=0 stamp=$VAR/run/binaries.sha256 sums
	sums=$(cd "$BIN_DIR" && sha256sum loom-api loom-sse loom-dispatcher loom-executor loom-ralph)
	if [ "$running" = 1 ]; then
		say "supervisord already runs $VAR: applying the new configuration"
		local out
		out=$(ctl reread 2>&1) || die "supervisord rejects $CONF: $out"
		ctl update
		[[ $(ctl status nginx 2>/dev/null || true) != *RUNNING* ]] || nginx_was_running=1
		# `make up` after a rebuild must run the new code, not keep the old processes.
		if [ "$sums" != "$(cat "$stamp" 2>/dev/null)" ]; then
			say "programs were rebuilt: restarting them"
			stop_loom_programs
		fi
	else
		start_supervisord
		wait_supervisord
	fi

	wait_pg
	[ "$PG_LOCAL" = 0 ] || bootstrap_db
	migrate

	start_programs
	printf '%s\n' "$sums" >"$stamp"
	if [ "$nginx_was_running" = 1 ]; then
		ctl signal HUP nginx >/dev/null
	fi

	local i
	for ((i = 0; i < 240; i++)); do
		if curl -fsS -o /dev/null --max-time 2 "$URL/health/ready" 2>/dev/null; then
			say "up: $URL/ (var: $VAR)"
			return 0
		fi
		sleep 0.25
	done
	fail_with_logs "$URL/health/ready did not answer 200 within 60 s"
}

# A bare `supervisorctl shutdown` handles one group per ~1 s tick, stopped or not (5 s for this
# stack). Stop the front door first, then every Loom group side by side, then PostgreSQL; the
# shutdown that follows finds nothing left to stop and returns at once.
stop_programs() {
	ctl stop nginx >/dev/null 2>&1 || true
	stop_loom_programs
	ctl stop postgres >/dev/null 2>&1 || true
}

stop_loom_programs() {
	local g
	for g in 'loom-api:*' 'loom-sse:*' loom-dispatcher 'loom-executor:*' loom-ralph; do
		ctl stop "$g" >/dev/null 2>&1 &
	done
	wait || true
}

# Processes that outlived a killed supervisord still hold the ports and the data directory.
stop_orphan() {
	local pidfile=$1 sig=$2 what=$3 pid i
	[ -r "$pidfile" ] || return 0
	pid=$(head -n 1 "$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 0
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$VAR/" || return 0
	say "stopping a leftover $what (pid $pid)"
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# Loom programs of this var directory that lost their supervisord (killed with -9): their
# environment names the var directory and their argv[0] is one of our binaries.
stop_orphan_programs() {
	local f pid argv0 pids=() i
	for f in /proc/[0-9]*/environ; do
		grep -qzxF "LOOM_VAR=$VAR" "$f" 2>/dev/null || continue
		pid=${f#/proc/}
		pid=${pid%/environ}
		argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1) || continue
		case ${argv0##*/} in
		loom-api | loom-sse | loom-dispatcher | loom-executor | loom-ralph) pids+=("$pid") ;;
		esac
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	say "stopping ${#pids[@]} leftover Loom process(es): ${pids[*]}"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		any_alive "${pids[@]}" || return 0
		sleep 0.1
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
}

any_alive() {
	local p
	for p in "$@"; do
		pid_alive "$p" && return 0
	done
	return 1
}

# A zombie counts as gone: an orphan's exit status waits for init to reap it, which can lag.
pid_alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

cmd_down() {
	if [ ! -d "$VAR/run" ]; then
		say "not running (var: $VAR)"
		return 0
	fi
	exec 9>>"$VAR/run/stack.lock"
	flock -w 300 9 || die "another stack.sh holds $VAR/run/stack.lock"
	local pid i
	if pid=$(supervisord_pid); then
		stop_programs
		ctl shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 600; i++)); do
			pid_alive "$pid" || break
			sleep 0.1
		done
		if pid_alive "$pid"; then
			warn "supervisord (pid $pid) did not stop within 60 s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "stopped (var: $VAR; data kept)"
	else
		say "not running (var: $VAR)"
	fi
	stop_orphan_programs
	stop_orphan "$VAR/nginx/nginx.pid" TERM nginx
	stop_orphan "$VAR/pg/data/postmaster.pid" INT postgres
}

cmd_status() {
	if ! supervisord_pid >/dev/null; then
		say "not running (var: $VAR)"
		return 3
	fi
	local rc=0 url=$URL
	ctl status || rc=$?
	if [ -r "$VAR/conf/stack.env" ]; then
		url=$(sed -n 's/^LOOM_URL=//p' "$VAR/conf/stack.env")
	fi
	printf '\nURL:  %s/\nlogs: %s/log\n' "$url" "$VAR"
	((rc == 0)) || return 1
}

main() {
	local cmd=${1:-}
	case $cmd in
	up | down | status) ;;
	*)
		printf 'usage: %s up|down|status\n' "$0" >&2
		exit 2
		;;
	esac
	load_settings
	"cmd_$cmd"
}

main "$@"
