#!/usr/bin/env bash
# tests/fuzz/run.sh NAME... — runs the libFuzzer harnesses that `make fuzz` built into
# build-fuzz/fuzz/, each for FUZZ_SECONDS (60), one after the other (the machine is shared).
#
# Each harness starts from its seeds (tests/fuzz/corpus/NAME), the crashes found before
# (tests/fuzz/regressions/NAME) and what earlier runs added (build-fuzz/corpus/NAME, where new
# inputs go: the repository's seeds stay small).  tests/fuzz/NAME.dict is used when present.
# A crash, leak, timeout or broken invariant leaves its input in build-fuzz/crashes/NAME/;
# fix the product, then copy the input to tests/fuzz/regressions/NAME/ so make check replays
# it.  Prints one line per harness and exits 1 when anything was found.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
out=build-fuzz
seconds=${FUZZ_SECONDS:-60}
found=0

printf '%-12s %10s %8s %8s %6s  %s\n' harness execs exec/s corpus cov result
for name in "$@"; do
	bin=$out/fuzz/fuzz_$name
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is missing (make fuzz builds it)" >&2
		exit 2
	fi
	mkdir -p "$out/corpus/$name" "$out/crashes/$name" "$out/logs"
	dirs=("$out/corpus/$name" "tests/fuzz/corpus/$name")
	[ ! -d "tests/fuzz/regressions/$name" ] || dirs+=("tests/fuzz/regressions/$name")
	args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$out/crashes/$name/")
	[ ! -f "tests/fuzz/$name.dict" ] || args+=(-dict="tests/fuzz/$name.dict")
	log=$out/logs/$name.log
	before=$(find "$out/crashes/$name" -type f | wc -l)
	"$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	after=$(find "$out/crashes/$name" -type f | wc -l)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	corpus=$(find "$out/corpus/$name" -type f | wc -l)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
	result=clean
	if [ "$rc" != 0 ] || [ "$after" -gt "$before" ]; then
		result="FOUND (exit $rc): see $log and $out/crashes/$name/"
		found=1
	fi
	printf '%-12s %10s %8s %8s %6s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "$corpus" "${cov:-?}" "$result"
done
exit "$found"
