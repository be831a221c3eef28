#!/usr/bin/env bash
# deploy/up.sh — the body of `make up` (the Makefile has already installed the packages and
# built build/bin): starts the stack with deploy/stack.sh and says where to find it.
# Settings: the LOOM_* environment variables listed at the top of deploy/stack.sh.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
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
# --- admin credentials: printed here once the auth work lands (first-run admin user). ---
envhint=
[ -z "${LOOM_VAR:-}" ] || envhint="LOOM_VAR=$var "
cat <<EOM
  processes:  ${envhint}make status
  stop:       ${envhint}make down        (data stays in $var)
  logs:       $var/log/
EOM
