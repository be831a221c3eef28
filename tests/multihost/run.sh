#!/usr/bin/env bash
# tests/multihost/run.sh — multi-host scale-out and fail-over, proved on one machine (`make
# multihost`; root, Linux network namespaces).
#
# It builds four "hosts", each a network namespace on one virtual switch (a bridge in a fifth
# namespace; the root namespace gets no interface, address or route):
#   db     PostgreSQL: a throw-away cluster on the host's address, scram passwords, keepalives
#          and tcp_user_timeout so that a vanished client's sessions end in ~10 s; and the
#          scripted LLM stub (tests/fixtures/llm-stub.mjs) behind a TCP forwarder
#   app1,  each: loom-api and loom-sse on TCP FastCGI ports that accept nginx's address only
#   app2   (FCGI_WEB_SERVER_ADDRS), MH_EXECUTORS loom-executor, loom-dispatcher, loom-ralph, its
#          own LOOM_VAR (work trees).  The hosts share only the database and LOOM_SECRET_KEY:
#          the provider's API key is sealed by one host's loom-api and opened by both hosts'
#          executors (the stub refuses calls without it)
#   edge   nginx rendered from nginx/nginx.conf.in: both app hosts in each upstream
#          (max_fails=1 fail_timeout=10s, a shared zone)
#
# What it proves (each a check; any failure exits 1):
#   1. nginx spreads API requests and event streams over both app hosts; both run beads;
#   2. the dispatcher and Ralph of app2 lead (started first); app1's wait as standbys;
#   3. MH_BEADS beads are submitted through nginx; while they run, app2 is cut off (its veth
#      down) and every process on it SIGKILLed: a host lost mid-work, no FIN or RST sent;
#   4. nginx keeps answering: every GET from the cut until the last bead closes succeeds (a
#      request app2 cannot take is retried on app1, and app2 is skipped for 10 s after);
#   5. PostgreSQL ends app2's dead sessions, app1's dispatcher and Ralph take the lead, Ralph
#      re-queues the runs app2 held once their lease expired (attempt 2), app1 finishes them;
#   6. every bead ends closed and completed exactly once: none lost, no run queued or running.
# It prints a table of the numbers and removes everything it made (processes, namespaces and
# their veths, files) on success, failure, Ctrl-C or the global timeout (MH_TIMEOUT).
#
# Settings (environment): MH_BEADS (300), MH_EXECUTORS per app host (4), MH_LLM_DELAY_MS per
# model answer (600), MH_CUT_AT (beads closed before the cut, MH_BEADS / 4), MH_TIMEOUT
# (300 s), MH_KEEP=1 keeps the work directory (logs), MH_NET (10.213.0: the /24 inside the
# namespaces), LOOM_BIN_DIR (build/bin).
set -euo pipefail
umask 022
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
# shellcheck source=tests/lib/trap.sh
source "$REPO/tests/lib/trap.sh"

BEADS=${MH_BEADS:-300}
EXECUTORS=${MH_EXECUTORS:-4}
LLM_DELAY_MS=${MH_LLM_DELAY_MS:-600}
CUT_AT=${MH_CUT_AT:-$((BEADS / 4))}
TIMEOUT=${MH_TIMEOUT:-300}
NET=${MH_NET:-10.213.0}
BIN=${LOOM_BIN_DIR:-$REPO/build/bin}
LEASE_S=6
AGENTS=10 # the project's 5 default agents and 5 more: runs at once, across both hosts

ID=lmh$$ # namespace names: lmh<pid>-db, ... (unique per run)
HOSTS=(db app1 app2 edge)
declare -A IP=([db]=$NET.10 [app1]=$NET.11 [app2]=$NET.12 [edge]=$NET.20)
PG_PORT=5432 API_PORT=9000 SSE_PORT=9001 HTTP_PORT=8080 STUB_PORT=8090
URL=http://${IP[edge]}:$HTTP_PORT
PROJECT=mh

say() { printf 'multihost: %s\n' "$*"; }
fail() {
	printf 'multihost: FAIL: %s\n' "$*" >&2
	exit 1
}

# ---- checks before anything is made -----------------------------------------------------------

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, veths, running programs as www-data/postgres)"
for c in ip setpriv runuser curl node nginx git bwrap cgi-fcgi; do
	command -v "$c" >/dev/null || fail "$c not found (make deps installs what Loom needs; ip: iproute2)"
done
for b in loom-api loom-sse loom-migrate loom-dispatcher loom-executor loom-ralph; do
	[ -x "$BIN/$b" ] || fail "missing $BIN/$b: build first (make)"
done
PG_BINDIR=${PG_BINDIR:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
[ -x "$PG_BINDIR/postgres" ] || fail "no PostgreSQL server in /usr/lib/postgresql/*/bin"
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || fail "MH_NET must be three octets: '$NET'"
((BEADS >= 20 && CUT_AT >= 1 && CUT_AT < BEADS && EXECUTORS >= 1)) ||
	fail "MH_BEADS >= 20, 1 <= MH_CUT_AT < MH_BEADS, MH_EXECUTORS >= 1"
runuser -u www-data -- test -x "$BIN/loom-api" -a -r "$REPO/sql" ||
	fail "www-data cannot reach $BIN and $REPO/sql (every parent directory must be traversable)"

# ---- cleanup: registered before anything exists -----------------------------------------------

WORK=
WATCHDOG_PID=
LOAD_PID=

ns() { printf '%s-%s' "$ID" "$1"; }

# Every process in the namespaces of this run (ip netns pids), signalled by id.
ns_pids() { ip netns pids "$(ns "$1")" 2>/dev/null || true; }

signal_host() { # HOST SIGNAL
	local pids
	mapfile -t pids < <(ns_pids "$1")
	[ ${#pids[@]} -eq 0 ] || kill "-$2" "${pids[@]}" 2>/dev/null || true
}

cleanup() {
	local h i left
	set +e
	[ -z "$WATCHDOG_PID" ] || kill "$WATCHDOG_PID" 2>/dev/null
	[ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null
	for h in edge app1 app2; do signal_host "$h" TERM; done
	if [ -n "$WORK" ] && [ -f "$WORK/db/data/postmaster.pid" ]; then
		(cd / && runuser -u postgres -- "$PG_BINDIR/pg_ctl" -D "$WORK/db/data" -m immediate -w -t 10 \
			stop >/dev/null 2>&1)
	fi
	signal_host db TERM
	for ((i = 0; i < 50; i++)); do
		left=
		for h in "${HOSTS[@]}"; do left+=$(ns_pids "$h"); done
		[ -n "$left" ] || break
		sleep 0.1
	done
	for h in "${HOSTS[@]}"; do signal_host "$h" KILL; done
	# Deleting a namespace destroys its ends of the veths, and with them the peers.
	for h in "${HOSTS[@]}" sw; do
		[ ! -e "/run/netns/$(ns "$h")" ] || ip netns del "$(ns "$h")"
	done
	if [ -n "$WORK" ]; then
		if [ "${MH_KEEP:-0}" = 1 ]; then
			say "MH_KEEP=1: logs and data kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}
loom_trap_add cleanup
# A closed stdout (| head) would otherwise kill the shell without its EXIT trap: ignored, the
# failed write ends the script through set -e, and the trap runs.  A hang-up cleans up too.
trap '' PIPE
trap 'exit 129' HUP

# The global time limit: TERM to this shell, whose trap cleans up.  The sleep is the
# watchdog's own child, ended with it (a leftover would hold the caller's pipe open).
(
	trap 'kill "$nap" 2>/dev/null; exit 0' TERM
	sleep "$TIMEOUT" >/dev/null 2>&1 &
	nap=$!
	wait "$nap"
	printf 'multihost: FAIL: global timeout (%s s)\n' "$TIMEOUT" >&2
	kill -TERM $$
) &
WATCHDOG_PID=$!

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="${2:-$(date +%s.%N)}" 'BEGIN { printf "%.1f", b - a }'; }

# Polls CMD... every 0.2 s until it succeeds; fails with WHAT after SECONDS.
wait_until() { # SECONDS WHAT CMD...
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 5; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	fail "$what (waited ${limit} s)"
}

WORK=$(mktemp -d /tmp/loom-mh.XXXXXX)
chmod 0755 "$WORK"

# ---- the network: a switch and four hosts -----------------------------------------------------

net_up() {
	local h
	ip netns add "$(ns sw)"
	ip -n "$(ns sw)" link add dev br0 type bridge
	ip -n "$(ns sw)" link set dev br0 up
	for h in "${HOSTS[@]}"; do
		ip netns add "$(ns "$h")"
		# eth0 in the host, its peer a port of the switch; never in the root namespace
		ip -n "$(ns "$h")" link add dev eth0 type veth peer name "$h" netns "$(ns sw)"
		ip -n "$(ns sw)" link set dev "$h" master br0
		ip -n "$(ns sw)" link set dev "$h" up
		ip -n "$(ns "$h")" addr add "${IP[$h]}/24" dev eth0
		ip -n "$(ns "$h")" link set dev eth0 up
		ip -n "$(ns "$h")" link set dev lo up
	done
}

in_host() { # HOST CMD...: in the host's namespace, as root
	local h=$1
	shift
	ip netns exec "$(ns "$h")" "$@"
}

as_www() { # HOST CMD...: in the host's namespace, as www-data
	local h=$1
	shift
	(cd / && ip netns exec "$(ns "$h")" setpriv --reuid=www-data --regid=www-data --init-groups -- "$@")
}

reachable() { in_host "$1" timeout 2 bash -c ": </dev/tcp/$2/$3" 2>/dev/null; }

# ---- host db: PostgreSQL and the stub ---------------------------------------------------------

DB_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
DB_URL="host=${IP[db]} port=$PG_PORT dbname=loom user=loom password=$DB_PASSWORD connect_timeout=3"
PG_SOCK=$WORK/db/sock

sql() { "$PG_BINDIR/psql" -X -At -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d loom -c "$1"; }

db_up() {
	mkdir -p "$WORK/db/sock" "$WORK/db/log"
	chown -R postgres:postgres "$WORK/db"
	chmod 0755 "$WORK/db" "$WORK/db/sock"
	(cd / && runuser -u postgres -- "$PG_BINDIR/initdb" -D "$WORK/db/data" -U postgres -E UTF8 \
		--locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --no-sync) \
		>"$WORK/db/log/initdb.log" 2>&1 || fail "initdb failed: $(tail -n 5 "$WORK/db/log/initdb.log")"
	printf 'host loom loom %s.0/24 scram-sha-256\n' "$NET" >>"$WORK/db/data/pg_hba.conf"
	# A host that vanishes (no FIN, no RST) leaves sessions that hold the leader locks.  An idle
	# one ends by keepalives (probes after 5 s, 3 unanswered 2 s apart: ~11 s); one with data
	# the host never acknowledged (a NOTIFY to a listener) by tcp_user_timeout (10 s), else
	# only by retransmission give-up after ~15 minutes.
	(cd / && ip netns exec "$(ns db)" runuser -u postgres -- "$PG_BINDIR/pg_ctl" -D "$WORK/db/data" \
		-l "$WORK/db/log/postgres.log" -w -t 60 -o "-p $PG_PORT -k $PG_SOCK \
		-c listen_addresses=${IP[db]} -c max_connections=200 -c fsync=off -c synchronous_commit=off \
		-c full_page_writes=off -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 \
		-c tcp_keepalives_count=3 -c tcp_user_timeout=10000" start >/dev/null) ||
		fail "postgres did not start: $(tail -n 5 "$WORK/db/log/postgres.log")"
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
		-v pw="$DB_PASSWORD" >/dev/null <<'SQL'
CREATE ROLE loom LOGIN PASSWORD :'pw';
CREATE ROLE loom_api NOLOGIN;
GRANT loom_api TO loom;
CREATE DATABASE loom OWNER loom ENCODING 'UTF8';
SQL
}

STUB_KEY=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

stub_up() {
	as_www db env -i PATH="$PATH" HOME=/tmp STUB_API_KEY="$STUB_KEY" \
		node "$REPO/tests/fixtures/llm-stub.mjs" --port $((STUB_PORT + 1)) >"$WORK/db/log/stub.log" 2>&1 &
	as_www db node "$HERE/forward.mjs" "${IP[db]}" "$STUB_PORT" $((STUB_PORT + 1)) \
		>"$WORK/db/log/forward.log" 2>&1 &
	wait_until 20 "the stub is not reachable from app1" reachable app1 "${IP[db]}" "$STUB_PORT"
	wait_until 20 "the stub is not reachable from app2" reachable app2 "${IP[db]}" "$STUB_PORT"
	# every bead: one model answer after LLM_DELAY_MS, "done"
	in_host db curl -fsS -o /dev/null --max-time 10 -X POST "http://127.0.0.1:$((STUB_PORT + 1))/_stub/script" \
		--data "{\"default\":[{\"delay_ms\":$LLM_DELAY_MS,\"actions\":[{\"type\":\"done\",\"reason\":\"multihost\"}]}]}"
}

# ---- hosts app1, app2: the Loom programs ------------------------------------------------------

SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')

loom_env() { # HOST: the environment every Loom program of HOST gets, one NAME=VALUE a line
	printf '%s\n' PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 "HOME=$WORK/$1/home" \
		"LOOM_VAR=$WORK/$1" "LOOM_DATABASE_URL=$DB_URL" "LOOM_SECRET_KEY=$SECRET" \
		LOOM_LOG_LEVEL=info "LOOM_LEASE_SECONDS=$LEASE_S" LOOM_RALPH_INTERVAL_MS=500 \
		LOOM_LLM_TIMEOUT_SECONDS=10 LOOM_DISPATCH_BACKOFF_SECONDS=5 "LOOM_PROJECT_MAX_RUNS=$AGENTS"
}

start_loom() { # HOST NAME PROGRAM [NAME=VALUE...]: one Loom program in the background
	local h=$1 name=$2 prog=$3 env
	shift 3
	mapfile -t env < <(loom_env "$h")
	as_www "$h" env -i "${env[@]}" "$@" "$BIN/$prog" >"$WORK/$h/log/$name.log" 2>&1 &
}

app_prepare() { # HOST
	mkdir -p "$WORK/$1/home" "$WORK/$1/log" "$WORK/$1/projects"
	chown -R www-data:www-data "$WORK/$1"
}

# The front end of a host: loom-api and loom-sse on TCP, accepting nginx's address only.
app_front_up() { # HOST
	local h=$1
	start_loom "$h" loom-api loom-api LOOM_API_THREADS=4 "LOOM_FCGI_LISTEN=${IP[$h]}:$API_PORT" \
		"FCGI_WEB_SERVER_ADDRS=${IP[edge]}"
	start_loom "$h" loom-sse loom-sse "LOOM_FCGI_LISTEN=${IP[$h]}:$SSE_PORT" "FCGI_WEB_SERVER_ADDRS=${IP[edge]}"
	wait_until 20 "loom-api on $h does not listen" reachable edge "${IP[$h]}" "$API_PORT"
	wait_until 20 "loom-sse on $h does not listen" reachable edge "${IP[$h]}" "$SSE_PORT"
}

app_workers_up() { # HOST
	local h=$1 i
	start_loom "$h" loom-dispatcher loom-dispatcher "LOOM_WORKER_NAME=$h-dispatcher"
	start_loom "$h" loom-ralph loom-ralph "LOOM_WORKER_NAME=$h-ralph"
	# The namespaces share one kernel, so one host name and one pid space: an executor here
	# could see app2's executors die and take their runs back at once (LOOM_EXECUTOR_RECLAIM).
	# Real hosts cannot see each other's processes, so fail-over must come from the lease.
	for ((i = 1; i <= EXECUTORS; i++)); do
		start_loom "$h" "loom-executor-$i" loom-executor "LOOM_WORKER_NAME=$h-executor-$i" \
			LOOM_EXECUTOR_RECLAIM=0
	done
}

# Leader locks (worker.c: pg_try_advisory_lock(bigint), objsubid 1) held by sessions from HOST.
leaders_on() { sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND a.client_addr = '${IP[$1]}'"; }
leads() { [ "$(leaders_on "$1")" = 2 ]; }

# ---- host edge: nginx -------------------------------------------------------------------------

edge_up() {
	local v=$WORK/edge up_api up_sse out
	mkdir -p "$v/conf" "$v/log" "$v/nginx/tmp/"{client_body,fastcgi,proxy,uwsgi,scgi}
	touch "$v/log/nginx-error.log"
	chown -R www-data:www-data "$v/log" "$v/nginx"
	# One failure takes a host out for 10 s, for every nginx worker (the zone shares it).
	up_api="zone loom_api 64k; server ${IP[app1]}:$API_PORT max_fails=1 fail_timeout=10s; server ${IP[app2]}:$API_PORT max_fails=1 fail_timeout=10s;"
	up_sse="zone loom_sse 64k; server ${IP[app1]}:$SSE_PORT max_fails=1 fail_timeout=10s; server ${IP[app2]}:$SSE_PORT max_fails=1 fail_timeout=10s;"
	# A read timeout of 5 s: a GET caught in flight by the cut is retried on app1 after 5 s
	# rather than 60 (the API answers this workload in milliseconds).
	"$REPO/deploy/render.sh" "$REPO/nginx/nginx.conf.in" "$v/conf/nginx.conf" 0644 -- \
		STATIC_DIR="$REPO/static" VAR="$v" HTTP_BIND="${IP[edge]}" HTTP_PORT="$HTTP_PORT" \
		API_UPSTREAM="$up_api" SSE_UPSTREAM="$up_sse" FASTCGI_READ_TIMEOUT=5s
	out=$(as_www edge nginx -t -q -p "$v/nginx" -c "$v/conf/nginx.conf" -g "daemon off;" 2>&1) ||
		fail "nginx rejects $v/conf/nginx.conf: $out"
	as_www edge nginx -p "$v/nginx" -c "$v/conf/nginx.conf" -g "daemon off;" >"$v/log/nginx.log" 2>&1 &
	wait_until 20 "nginx does not answer /health/ready" \
		in_host edge curl -fs -o /dev/null --max-time 2 "$URL/health/ready"
}

# ---- the API, through nginx -------------------------------------------------------------------

TOKEN=
api() { # METHOD PATH [JSON]: the body on stdout; fails on a status other than 2xx
	local out status args=(-sS --max-time 20 -X "$1" -w '\n%{http_code}')
	[ -z "$TOKEN" ] || args+=(-H "Authorization: Bearer $TOKEN")
	[ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data "$3")
	out=$(in_host edge curl "${args[@]}" "$URL$2") || fail "$1 $2: curl failed"
	status=${out##*$'\n'}
	[[ $status == 2?? ]] || fail "$1 $2: HTTP $status ${out%$'\n'*}"
	printf '%s\n' "${out%$'\n'*}"
}

# FastCGI connections HOST accepted (nginx opens one per request, API or stream): TCP
# PassiveOpens of its namespace.
accepted() {
	# shellcheck disable=SC2016 # an awk program
	in_host "$1" awk '$1 == "Tcp:" { if (n) { print $c; exit } n = 1; for (i = 1; i <= NF; i++) if ($i == "PassiveOpens") c = i }' /proc/net/snmp
}

# GET /health/live straight to app1's loom-api over FastCGI (libfcgi's cgi-fcgi), from HOST.
fcgi_live() {
	in_host "$1" env -i REQUEST_METHOD=GET DOCUMENT_URI=/health/live SCRIPT_NAME=/health/live \
		REQUEST_URI=/health/live QUERY_STRING= SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR="${IP[$1]}" \
		timeout 5 cgi-fcgi -bind -connect "${IP[app1]}:$API_PORT" 2>/dev/null || true
}

provider_healthy() { [[ $(api GET /api/v1/providers/stub) =~ \"status\"\ *:\ *\"healthy\" ]]; }

# ---- the run ----------------------------------------------------------------------------------

say "namespaces $(ns '*'), network $NET.0/24, work dir $WORK"
net_up
db_up
wait_until 20 "app1 cannot reach PostgreSQL on the db host" reachable app1 "${IP[db]}" "$PG_PORT"
wait_until 20 "app2 cannot reach PostgreSQL on the db host" reachable app2 "${IP[db]}" "$PG_PORT"
say "db: PostgreSQL on ${IP[db]}:$PG_PORT"
app_prepare app1
app_prepare app2
mapfile -t MIGRATE_ENV < <(loom_env app1)
as_www app1 env -i "${MIGRATE_ENV[@]}" LOOM_ADMIN_PASSWORD="$ADMIN_PASSWORD" "$BIN/loom-migrate" \
	--dir "$REPO/sql" --personas "$REPO/deploy/personas" >"$WORK/app1/log/loom-migrate.log" 2>&1 ||
	fail "loom-migrate over TCP failed: $(tail -n 5 "$WORK/app1/log/loom-migrate.log")"
stub_up
# app2's dispatcher and Ralph first, so that they lead and the cut must move the lead.
app_workers_up app2
wait_until 30 "app2's dispatcher and Ralph did not take the lead" leads app2
app_workers_up app1
app_front_up app1
app_front_up app2
edge_up
say "app1 ${IP[app1]}, app2 ${IP[app2]}: loom-api :$API_PORT, loom-sse :$SSE_PORT, $EXECUTORS executors each; nginx $URL"

TOKEN=$(api POST /api/v1/auth/login "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" |
	sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || fail "no token from the admin login"
api POST /api/v1/providers "{\"id\":\"stub\",\"endpoint\":\"http://${IP[db]}:$STUB_PORT/v1\",\"model\":\"stub-model\",\"api_key\":\"$STUB_KEY\"}" >/dev/null
wait_until 30 "the provider did not become healthy (Ralph's probe through the forwarder)" provider_healthy
api POST /api/v1/projects "{\"id\":\"$PROJECT\",\"name\":\"Multihost\",\"bead_prefix\":\"$PROJECT\",\"context\":{}}" >/dev/null
for ((i = $(sql "SELECT count(*) FROM agents WHERE project_id = '$PROJECT'"); i < AGENTS; i++)); do
	api POST /api/v1/agents "{\"persona_name\":\"engineering-manager\",\"project_id\":\"$PROJECT\",\"provider_id\":\"stub\"}" >/dev/null
done

# loom-api serves nginx's address only (FCGI_WEB_SERVER_ADDRS): from the db host, the same
# request gets no answer (the port itself would be closed by a firewall on real hosts).
[[ $(fcgi_live edge) == Status:\ 200* ]] || fail "loom-api on app1 does not answer FastCGI from the edge host"
[ -z "$(fcgi_live db)" ] || fail "loom-api on app1 answered FastCGI from the db host"

# Both app hosts answer through nginx: API requests and event streams.
api1=$(accepted app1) api2=$(accepted app2)
for ((i = 0; i < 10; i++)); do api GET "/api/v1/projects/$PROJECT" >/dev/null; done
((($(accepted app1) - api1) > 0 && ($(accepted app2) - api2) > 0)) ||
	fail "nginx did not spread 10 requests over both app hosts"
# Four event streams held open for 2 s: both hosts' loom-sse hold some.
sse_held() { in_host "$1" ss -Htn state established "( sport = :$SSE_PORT )" | grep -c . || true; }
both_stream() { [ "$(sse_held app1)" -gt 0 ] && [ "$(sse_held app2)" -gt 0 ]; }
streams=()
for i in 1 2 3 4; do
	in_host edge curl -s -D "$WORK/stream-$i.head" -o /dev/null --max-time 2 \
		-H "Authorization: Bearer $TOKEN" "$URL/api/v1/events/stream" &
	streams+=($!)
done
wait_until 10 "the event streams through nginx did not reach both hosts' loom-sse" both_stream
wait "${streams[@]}" || true # curl's --max-time ends them
for i in 1 2 3 4; do
	head=$(cat "$WORK/stream-$i.head")
	[[ $head == HTTP/1.1\ 200* && $head == *text/event-stream* ]] ||
		fail "an event stream through nginx did not open: ${head%%$'\r'*}"
done

# The beads, through nginx: one curl, one POST each, every status kept.
{
	for ((i = 1; i <= BEADS; i++)); do
		printf 'url = "%s/api/v1/beads"\nheader = "Authorization: Bearer %s"\n' "$URL" "$TOKEN"
		printf 'header = "Content-Type: application/json"\n'
		printf 'data = "{\\"project_id\\":\\"%s\\",\\"title\\":\\"multihost bead %d\\"}"\n' "$PROJECT" "$i"
		printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\nmax-time = 20\n'
		((i == BEADS)) || printf 'next\n'
	done
} >"$WORK/beads.curl"
T_SUBMIT=$(date +%s.%N)
in_host edge curl -K "$WORK/beads.curl" >"$WORK/beads.status" || true
SUBMITTED=$(grep -c '^201$' "$WORK/beads.status" || true)
[ "$SUBMITTED" = "$BEADS" ] || fail "only $SUBMITTED of $BEADS bead submissions got 201: $(sort "$WORK/beads.status" | uniq -c | tr '\n' ' ')"
say "$BEADS beads submitted through nginx in $(elapsed "$T_SUBMIT") s"

closed() { sql "SELECT count(*) FROM beads WHERE project_id = '$PROJECT' AND status = 'closed'"; }
app2_busy() {
	[ "$(closed)" -ge "$CUT_AT" ] &&
		[ "$(sql "SELECT count(*) FROM runs WHERE state = 'running' AND lease_owner LIKE 'app2-%'")" -gt 0 ]
}
wait_until 120 "$CUT_AT beads did not close with app2 at work" app2_busy
CONNS=$(sql "SELECT string_agg(h || ' ' || n, ', ' ORDER BY h) FROM (SELECT CASE client_addr
	WHEN '${IP[app1]}' THEN 'app1' WHEN '${IP[app2]}' THEN 'app2' END h, count(*) n
	FROM pg_stat_activity WHERE datname = 'loom' AND client_addr IS NOT NULL GROUP BY 1) c")
BY_HOST_PRE=$(sql "SELECT count(*) FILTER (WHERE actor LIKE 'app1-%') || ' / ' ||
	count(*) FILTER (WHERE actor LIKE 'app2-%') FROM events WHERE project_id = '$PROJECT' AND type = 'run.finished'")
API_PRE="$(($(accepted app1) - api1)) / $(($(accepted app2) - api2))"

# GET load through nginx from the cut until the last bead closes: 40 requests a second (the
# bead list, limit=1..20), each status and time kept; a stop file ends it after the curl
# under way.
load() {
	while [ ! -e "$WORK/load.stop" ]; do
		in_host edge curl -s --rate 40/s --max-time 30 -o /dev/null -w '%{http_code} %{time_total}\n' \
			-H "Authorization: Bearer $TOKEN" "$URL/api/v1/beads?project_id=$PROJECT&limit=[1-20]" \
			>>"$WORK/load.status" || true
	done
}
: >"$WORK/load.status"
load &
LOAD_PID=$!

# The cut: app2's veth down (a partition: nothing it sends or is sent arrives), then every
# process on it killed (the host is gone, and no FIN or RST will ever reach anyone).
# T_CUT is read once the link is down: what app2 sent before it has arrived by then.
ip -n "$(ns app2)" link set dev eth0 down
T_CUT=$(date +%s.%N)
signal_host app2 KILL
app2_gone() { [ -z "$(ns_pids app2)" ]; }
wait_until 10 "processes on app2 survived SIGKILL" app2_gone
REQUEUE_IDS=$(sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM runs WHERE state = 'running' AND lease_owner LIKE 'app2-%'")
[ -n "$REQUEUE_IDS" ] || fail "app2 held no running run at the cut"
ORPHANS=$(tr ',' '\n' <<<"$REQUEUE_IDS" | wc -l)
say "app2 cut off at $(elapsed "$T0") s with $ORPHANS running run(s) (ids $REQUEUE_IDS); $(closed) of $BEADS closed"

wait_until 60 "app1's dispatcher and Ralph did not take the lead" leads app1
T_LEAD=$(date +%s.%N)
all_done() {
	[ "$(closed)" = "$BEADS" ] &&
		[ "$(sql "SELECT count(*) FROM runs WHERE state IN ('queued', 'running')")" = 0 ]
}
wait_until "$TIMEOUT" "not every bead closed: $(closed) of $BEADS" all_done
T_DONE=$(date +%s.%N)
touch "$WORK/load.stop"
wait "$LOAD_PID" || true
LOAD_PID=

# ---- the checks -------------------------------------------------------------------------------

errors=0
check() { # WHAT CONDITION...: counts a failure, prints it
	local what=$1
	shift
	if ! "$@"; then
		printf 'multihost: FAIL: %s\n' "$what" >&2
		errors=$((errors + 1))
	fi
}
eq() { [ "$1" = "$2" ]; }

IN="id IN ($REQUEUE_IDS)"
N_BEADS=$(sql "SELECT count(*) FROM beads WHERE project_id = '$PROJECT'")
N_TITLES=$(sql "SELECT count(DISTINCT title) FROM beads WHERE project_id = '$PROJECT'")
N_CLOSED=$(closed)
N_COMPLETED=$(sql "SELECT count(*) FROM events WHERE project_id = '$PROJECT' AND type = 'bead.completed'")
N_LEFT=$(sql "SELECT count(*) FROM runs WHERE state IN ('queued', 'running')")
N_RUNS=$(sql "SELECT count(*) FROM runs WHERE project_id = '$PROJECT'")
N_FAILED_RUNS=$(sql "SELECT count(*) FROM runs WHERE project_id = '$PROJECT' AND state <> 'succeeded'")
N_REQUEUED=$(sql "SELECT count(*) FROM events WHERE project_id = '$PROJECT' AND type = 'run.requeued'")
N_RQ_HELD=$(sql "SELECT count(DISTINCT payload ->> 'run_id') FROM events WHERE type = 'run.requeued'
	AND (payload ->> 'run_id')::bigint IN ($REQUEUE_IDS)")
N_RQ_OK=$(sql "SELECT count(*) FROM runs WHERE $IN AND state = 'succeeded' AND attempt >= 2")
N_RQ_APP1=$(sql "SELECT count(*) FROM events WHERE type = 'run.finished' AND actor LIKE 'app1-%'
	AND (payload -> 'run' ->> 'id')::bigint IN ($REQUEUE_IDS)")
T_FIRST_RQ=$(sql "SELECT extract(epoch FROM min(created_at)) FROM events WHERE project_id = '$PROJECT' AND type = 'run.requeued'")
T_LAST_RQ=$(sql "SELECT extract(epoch FROM max(finished_at)) FROM runs WHERE $IN")
N_AFTER_APP2=$(sql "SELECT count(*) FROM events WHERE project_id = '$PROJECT' AND type = 'run.finished'
	AND actor LIKE 'app2-%' AND created_at > to_timestamp($T_CUT)")
BY_HOST=$(sql "SELECT count(*) FILTER (WHERE actor LIKE 'app1-%') || ' / ' ||
	count(*) FILTER (WHERE actor LIKE 'app2-%') FROM events WHERE project_id = '$PROJECT' AND type = 'run.finished'")
LOAD_N=$(wc -l <"$WORK/load.status")
LOAD_BAD=$(grep -cv '^2[0-9][0-9] ' "$WORK/load.status" || true)
LOAD_MAX=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { printf "%.2f", m }' "$WORK/load.status")

check "beads lost: $N_BEADS in the database, $N_TITLES distinct, of $BEADS submitted" \
	eq "$N_BEADS $N_TITLES" "$BEADS $BEADS"
check "beads not closed: $((BEADS - N_CLOSED))" eq "$N_CLOSED" "$BEADS"
check "bead.completed events: $N_COMPLETED, want $BEADS (each bead completed once)" eq "$N_COMPLETED" "$BEADS"
check "runs left queued or running: $N_LEFT" eq "$N_LEFT" 0
check "runs app2 held that were re-queued by lease: $N_RQ_HELD of $ORPHANS" eq "$N_RQ_HELD" "$ORPHANS"
check "runs app2 held that succeeded on a later attempt: $N_RQ_OK of $ORPHANS" eq "$N_RQ_OK" "$ORPHANS"
check "re-queued runs finished by app1: $N_RQ_APP1 of $ORPHANS" eq "$N_RQ_APP1" "$ORPHANS"
check "runs app2 finished after the cut: $N_AFTER_APP2" eq "$N_AFTER_APP2" 0
check "app1 and app2 both finished runs before the cut: $BY_HOST_PRE" \
	test "${BY_HOST_PRE% / *}" -gt 0 -a "${BY_HOST_PRE#* / }" -gt 0
check "requests through nginx during the cut: $LOAD_N, $LOAD_BAD not 2xx" \
	test "$LOAD_N" -gt 0 -a "$LOAD_BAD" = 0

# ---- the table --------------------------------------------------------------------------------

row() { printf '  %-46s %s\n' "$1" "$2"; }
printf '\nmultihost: 2 app hosts (%s executors each) behind nginx, app2 cut off mid-run\n' "$EXECUTORS"
row "beads submitted / closed / lost" "$SUBMITTED / $N_CLOSED / $((SUBMITTED - N_CLOSED))"
row "runs (not succeeded)" "$N_RUNS ($N_FAILED_RUNS)"
row "runs finished by app1 / app2 (before the cut)" "$BY_HOST ($BY_HOST_PRE)"
row "requests nginx passed to app1 / app2 (before)" "$API_PRE"
row "database sessions per host (before the cut)" "$CONNS"
row "runs held by app2 at the cut" "$ORPHANS"
row "... re-queued by lease / finished on app1" "$N_RQ_HELD / $N_RQ_APP1"
row "runs re-queued in all" "$N_REQUEUED"
row "cut to app1 leading (dispatcher, Ralph)" "$(elapsed "$T_CUT" "$T_LEAD") s"
row "cut to the first re-queue" "$(elapsed "$T_CUT" "$T_FIRST_RQ") s"
row "cut to the last re-queued run finished" "$(elapsed "$T_CUT" "$T_LAST_RQ") s"
row "cut to the last bead closed" "$(elapsed "$T_CUT" "$T_DONE") s"
row "GET requests through nginx during the cut" "$LOAD_N"
row "... of which failed (not 2xx)" "$LOAD_BAD"
row "... the slowest" "$LOAD_MAX s"
row "total time" "$(elapsed "$T0") s"
echo
if ((errors > 0)); then
	say "$errors check(s) failed (MH_KEEP=1 keeps the logs)"
	exit 1
fi
say "ok"
