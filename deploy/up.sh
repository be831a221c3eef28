#!/usr/bin/env bash
# deploy/up.sh — the body of `make up` (the Makefile has already installed the packages and
# built build/bin): starts the stack with deploy/stack.sh and says where to find it.
# Settings: the LOOM_* environment variables listed at the top of deploy/stack.sh.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# No model configured: run the demo (the scripted stub model and a seeded demo project).
if [ -z "${LOOM_PROVIDER_URL:-}" ]; then
	export LOOM_DEMO=${LOOM_DEMO:-1}
else
	export LOOM_DEMO=0
fi
"$repo/deploy/stack.sh" up

# stack.sh wrote the effective settings of this run.
var=${LOOM_VAR:-$repo/var}
[[ $var == /* ]] || var=$PWD/$var
url=$(sed -n 's/^LOOM_URL=//p' "$var/conf/stack.env")
bind=${LOOM_HTTP_BIND:-127.0.0.1}

cat <<EOM

Loom is running: $url/
EOM
if [ "$bind" = 0.0.0.0 ]; then
	echo "  (listening on all interfaces, port ${LOOM_HTTP_PORT:-8080})"
fi
if [ "$LOOM_DEMO" = 1 ]; then
	"$repo/deploy/demo/seed.sh" "$url" "$var"
	cat <<EOM
  model:      no LOOM_PROVIDER_URL was set, so a scripted stub model plays the agents' LLM
              (port ${LOOM_STUB_PORT:-$((${LOOM_HTTP_PORT:-8080} + 1))}). Set LOOM_PROVIDER_URL, LOOM_PROVIDER_API_KEY and
              LOOM_PROVIDER_MODEL (any OpenAI-compatible endpoint) to use a real one.
EOM
fi
# The first admin's password is shown once, on the run that made it; later runs say where it is.
if [ -e "$var/run/admin-password.new" ]; then
	cat <<EOM
  login:      admin / $(head -n 1 "$var/admin-password")
              (shown once; also in $var/admin-password, mode 0600 — change it in the UI)
EOM
	rm -f "$var/run/admin-password.new"
else
	echo "  login:      admin, password in $var/admin-password (unless changed since)"
fi
# loomctl, the command-line client, next to the stack it talks to.
bin=${LOOM_BIN_DIR:-$repo/build/bin}
mkdir -p "$var/bin"
install -m 0755 "$bin/loomctl" "$var/bin/loomctl"
envhint=
[ -z "${LOOM_VAR:-}" ] || envhint="LOOM_VAR=$var "
cat <<EOM
  cli:        $var/bin/loomctl  (LOOM_SERVER=$url; export LOOM_TOKEN=\$($var/bin/loomctl login -u admin))
  processes:  ${envhint}make status
  stop:       ${envhint}make down        (data stays in $var)
  logs:       $var/log/
EOM
if [ -z "${LOOM_SECRET_KEY:-}" ]; then
	echo "  secret key: $var/secret.key (seals stored API keys: back it up with the database)"
fi
