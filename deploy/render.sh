#!/usr/bin/env bash
# deploy/render.sh — tiny template renderer for the files under deploy/ and nginx/.
#
#   deploy/render.sh TEMPLATE OUTPUT [MODE] -- NAME=VALUE ...
#
# Replaces every @NAME@ with VALUE, literally (no regex, no escapes: VALUE may hold
# '/', '&', '\' or anything else). A template line that is only a comment of the form
#   ;@if NAME   /  #@if NAME     ...   ;@endif  /  #@endif
# keeps the enclosed lines when NAME's value is non-empty and not "0", and drops them
# otherwise (blocks do not nest). An @NAME@ without a value is an error, so a typo in a
# template fails the render instead of reaching supervisord or nginx. The output is
# written to a temporary file and renamed, so readers never see half a file.
set -euo pipefail

die() { printf 'render.sh: %s\n' "$*" >&2; exit 1; }

[ $# -ge 3 ] || die "usage: render.sh TEMPLATE OUTPUT [MODE] -- NAME=VALUE ..."
template=$1 output=$2
shift 2
mode=0644
if [ "$1" != "--" ]; then mode=$1; shift; fi
[ "${1:-}" = "--" ] || die "expected -- before the NAME=VALUE list"
shift
[ -r "$template" ] || die "cannot read template $template"

names=()
assignments=()
for kv in "$@"; do
	name=${kv%%=*}
	[[ $kv == *=* && $name =~ ^[A-Z][A-Z0-9_]*$ ]] || die "bad NAME=VALUE argument: $kv"
	names+=("$name")
	# Values travel through the environment: awk -v would interpret backslashes.
	assignments+=("RENDER_$name=${kv#*=}")
done

tmp=$(mktemp "$output.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# shellcheck disable=SC2016 # the single-quoted text is an awk program
env "${assignments[@]}" awk -v names="${names[*]}" -v template="$template" '
BEGIN {
	n = split(names, list, " ")
	for (i = 1; i <= n; i++) { known[list[i]] = 1; value[list[i]] = ENVIRON["RENDER_" list[i]] }
	keep = 1; inblock = 0
}
function fail(msg) { printf "render.sh: %s:%d: %s\n", template, FNR, msg > "/dev/stderr"; bad = 1; exit 1 }
/^[ \t]*[;#]@if[ \t]/ {
	if (inblock) fail("nested @if")
	name = $2
	if (!(name in known)) fail("@if on unknown name " name)
	inblock = 1; keep = (value[name] != "" && value[name] != "0")
	next
}
/^[ \t]*[;#]@endif[ \t]*$/ {
	if (!inblock) fail("@endif without @if")
	inblock = 0; keep = 1
	next
}
!keep { next }
{
	line = $0; out = ""
	while ((start = index(line, "@")) > 0) {
		rest = substr(line, start + 1)
		end = index(rest, "@")
		name = (end > 0) ? substr(rest, 1, end - 1) : ""
		if (end > 0 && name ~ /^[A-Z][A-Z0-9_]*$/) {
			if (!(name in known)) fail("no value for @" name "@")
			out = out substr(line, 1, start - 1) value[name]
			line = substr(rest, end + 1)
		} else {
			out = out substr(line, 1, start)
			line = rest
		}
	}
	print out line
}
END { if (!bad && inblock) fail("@if without @endif") }
' "$template" >"$tmp"
chmod "$mode" "$tmp"
mv -f "$tmp" "$output"
trap - EXIT
