#!/usr/bin/env bash
# deploy/install-deps.sh run|test — installs the Debian packages Loom needs, and only the
# missing ones: silent when everything is there. `run` is what `make up` needs (build +
# runtime); `test` adds what `make check` needs. As non-root it uses `sudo -n` when that
# works, and otherwise prints the apt-get command to run and exits 1.
set -euo pipefail

# bubblewrap: the jail agent commands run in (workers/sandbox.h; without it they run unjailed)
RUN_PKGS=(build-essential pkg-config libfcgi-dev libfcgi-bin libpq-dev libjson-c-dev
	libcurl4-openssl-dev libsodium-dev libargon2-dev nginx supervisor postgresql curl ca-certificates git
	bubblewrap)
# chromium: the headless browser that tests/e2e/ui.test.mjs drives through playwright-core
# clang + libclang-rt-dev: libFuzzer and the sanitizer runtimes for `make fuzz`
# (--no-install-recommends would leave the runtime out); valgrind: `make valgrind`
TEST_PKGS=(clang-format wrk procps iproute2 chromium clang libclang-rt-dev valgrind)

mode=${1:-run}
case $mode in
run)
	wanted=("${RUN_PKGS[@]}")
	# the demo's scripted model (no LOOM_PROVIDER_URL) runs on node
	[ -n "${LOOM_PROVIDER_URL:-}" ] || command -v node >/dev/null 2>&1 || wanted+=(nodejs)
	;;
test)
	wanted=("${RUN_PKGS[@]}" "${TEST_PKGS[@]}")
	# Node may come from elsewhere (nodesource, nvm): only fall back to Debian's when absent.
	command -v node >/dev/null 2>&1 || wanted+=(nodejs npm)
	;;
*)
	echo "usage: $0 run|test" >&2
	exit 2
	;;
esac

missing=()
for pkg in "${wanted[@]}"; do
	# shellcheck disable=SC2016 # ${db:Status-Status} is a dpkg-query format, not a shell expansion
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done
[ ${#missing[@]} -gt 0 ] || exit 0

install=(apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}")
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	echo "install-deps: missing packages and no root (sudo -n does not work); run as root:" >&2
	echo "  apt-get update && DEBIAN_FRONTEND=noninteractive ${install[*]}" >&2
	exit 1
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${install[@]}"
