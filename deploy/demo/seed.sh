#!/usr/bin/env bash
# deploy/demo/seed.sh URL VAR — the demo `make up` seeds when no LOOM_PROVIDER_URL is set:
# a git repository (<var>/demo/repo.git, bare, with a Makefile whose tests check greeting.txt)
# and a project "demo" on it with three beads, the second blocked by the first. The scripted
# stub (tests/fixtures/llm-stub.mjs with deploy/demo/stub-script.json) plays the model, and the
# agents really do the work: write the file, run the tests, commit on bead/<id>, merge, close.
# Runs once: an existing project "demo" is left alone.
set -euo pipefail

url=$1 var=$2
origin=$var/demo/repo.git

# The admin's bearer token (the seed acts as the first admin, with the password make up set).
pw=$(head -n 1 "$var/admin-password" | sed 's/[\\"]/\\&/g')
token=$(printf '{"username":"admin","password":"%s"}' "$pw" |
	curl -fsS -X POST -H 'Content-Type: application/json' --data @- "$url/api/v1/auth/login" |
	sed -n 's/.*"token" *: *"\(lms_[0-9a-f]*\)".*/\1/p')
[ -n "$token" ] || { echo "demo: cannot log in as admin (password in $var/admin-password changed?)" >&2; exit 1; }

api() { # METHOD PATH [BODY] -> body on stdout, fails on HTTP >= 400
	curl -fsS -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$url$2"
}

if api GET /api/v1/projects/demo >/dev/null 2>&1; then
	exit 0
fi

if [ ! -d "$origin" ]; then
	work=$(mktemp -d)
	git -C "$work" init -q -b main
	cat >"$work/Makefile" <<'MK'
# The demo's tests: every tests/*.sh must pass.
test:
	@for t in tests/*.sh; do sh "$$t" || exit 1; done; echo "all tests passed"
.PHONY: test
MK
	mkdir -p "$work/tests"
	cat >"$work/tests/greeting.sh" <<'SH'
# greeting.txt must exist and greet Loom
grep -q '^Hello, Loom!$' greeting.txt 2>/dev/null || { echo "greeting.txt: no 'Hello, Loom!' line"; exit 1; }
SH
	printf '# Demo\n' >"$work/README.md"
	cat >"$work/AGENTS.md" <<'MD'
# Notes for agents
- `make test` runs the tests; run them before you commit.
- Keep greeting.txt short.
MD
	git -C "$work" add -A
	git -C "$work" -c user.name=Loom -c user.email=loom@localhost commit -q -m "Demo repository"
	git clone -q --bare "$work" "$origin"
	rm -rf "$work"
	# the executors (www-data when we run as root) push their branches here
	[ "$(id -u)" != 0 ] || chown -R www-data:www-data "$origin"
fi

api POST /api/v1/projects "{\"id\":\"demo\",\"name\":\"Demo\",\"description\":\"A local git repository the agents work on\",\"git_repo\":\"$origin\",\"bead_prefix\":\"demo\"}" >/dev/null
bead_id_of() { sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p' | head -n 1; }
b1=$(api POST /api/v1/beads '{"project_id":"demo","title":"Write the greeting","description":"Create greeting.txt with the line: Hello, Loom!  Run the tests, commit.","priority":1}' | bead_id_of)
api POST /api/v1/beads "{\"project_id\":\"demo\",\"title\":\"Sign the greeting\",\"description\":\"Add a signature line under the greeting in greeting.txt.\",\"priority\":1,\"blocked_by\":[\"$b1\"]}" >/dev/null
api POST /api/v1/beads '{"project_id":"demo","title":"Describe the demo","description":"Say in README.md what this repository is for.","priority":2}' >/dev/null
echo "demo: project 'demo' with 3 beads; watch the agents at $url/"
