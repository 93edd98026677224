#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Malformed or unknown netlink input gets an error with a message, never a crash; the module
# keeps working afterwards.
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; exit 1; }

# expect_err HEXCMD HEXPAYLOAD TEXT: the request fails and the message contains TEXT.
expect_err() {
	local out rc
	out=$(rnfctl raw "$1" "$2" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && echo "$out" | grep -q "$3"; then
		log "ok: cmd $1 payload '$2' -> $out"
	else
		fail "cmd $1 payload '$2': rc $rc, '$out', want an error with '$3'"
	fi
}

# attribute headers are little-endian here: len u16, type u16
expect_err 2 "08000400ff000000" "out of range"           # hook slot 255
expect_err 2 "0600040001000000" "invalid attribute length"  # u32 with 2 bytes
expect_err 2 "0800630001000000" "Unknown attribute type"    # attribute 99
expect_err 2 "080004000100" "Invalid argument"              # truncated stream
expect_err 1 "0800040001000000" "Unknown attribute type"    # status takes no attributes
expect_err 99 "" "Operation not supported"                  # unknown command
expect_err 0 "" "Operation not supported"
# A valid zero of one slot works, and status still answers.
rnfctl zero --hook 20 || fail "zero --hook 20"
expect_eq "status lines after bad input" "$(rnfctl status | wc -l)" 23
exit "$FAILED"
