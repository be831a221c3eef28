#!/usr/bin/env bash
# Starts a throw-away stack (tests/lib/stack.sh), runs tests/e2e/*.test.mjs with node's test
# runner (TAP) against it, and stops it.  KEEP_STACK=1 leaves it running for a look.
# Ends with "sanitizer reports: N" from the programs' logs (stack_sanitizer_report).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
# shellcheck source=tests/lib/stack.sh
source tests/lib/stack.sh
if ! stack_start; then
	echo "stack did not start"
	exit 1
fi
trap stack_stop EXIT
# playwright-core for the browser test (it drives Debian's chromium; no browser download)
npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error ||
	echo "run-e2e: npm ci failed; the browser test will skip"
# tests/lib/run-e2e.sh [FILE...]: only those test files (make check-tsan), else all of them
node --test --test-reporter=tap --test-concurrency=1 "${@:-tests/e2e/}"
rc=$?
# the programs' logs, for builds with SANITIZE=…: check.sh counts each report as a failure
stack_sanitizer_report || rc=1
exit "$rc"
