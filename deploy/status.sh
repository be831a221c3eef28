#!/usr/bin/env bash
# deploy/status.sh — the body of `make status`: the supervised processes and the URL, or
# "not running".  Exit 0 either way (stack.sh status says 3 for "not running", for scripts).
set -uo pipefail
"$(dirname "${BASH_SOURCE[0]}")/stack.sh" status
rc=$?
[ "$rc" = 3 ] && exit 0
exit "$rc"
