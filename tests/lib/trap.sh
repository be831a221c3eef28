#!/usr/bin/env bash
# tests/lib/trap.sh — loom_trap_add CMD: appends CMD to the EXIT trap instead of replacing what
# the caller installed, and makes INT/TERM end the shell through it.  Sourced by pg.sh, stack.sh.

if ! declare -F loom_trap_add >/dev/null; then
	loom_trap_add() {
		local old
		old=$(trap -p EXIT)
		old=${old#trap -- \'}
		old=${old%\' EXIT}
		old=${old//\'\\\'\'/\'}
		# shellcheck disable=SC2064 # expanded now on purpose
		trap "${old:+$old; }$1" EXIT
		# A signal would otherwise end the shell without running the EXIT trap.
		[ -n "$(trap -p INT)" ] || trap 'exit 130' INT
		[ -n "$(trap -p TERM)" ] || trap 'exit 143' TERM
	}
fi
