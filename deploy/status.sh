#!/usr/bin/env bash
# deploy/status.sh — the body of `make status`: the supervised processes and the URL, or
# "not running" (exit 3).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/stack.sh" status
