#!/usr/bin/env bash
# deploy/down.sh — the body of `make down`: stops everything deploy/stack.sh started; data stays.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/stack.sh" down
