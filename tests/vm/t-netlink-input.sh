#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Malformed or unknown netlink input gets an error with a message, never a crash; the module
# keeps working afterwards.
# cost: 5
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
# In a netns of its own: the zero below must not touch anyone else's counters.
X="$PFX-x"
ns_add "$X" || { fail "netns $X"; finish; }

# expect_err HEXCMD HEXPAYLOAD MESSAGE: the request fails with exit status 1 and MESSAGE (the
# kernel's error and its extended-ack text), on one line.
expect_err() {
	expect_fail "cmd $1 payload '$2'" 1 "$3" nsx "$X" rnfctl raw "$1" "$2"
	[ "$OUT" = "$3" ] || fail "cmd $1 payload '$2': more output than the message: '$OUT'"
}

# attribute headers are little-endian here: len u16, type u16
expect_err 2 "08000400ff000000" "rnfctl: Numerical result out of range: integer out of range" # hook slot 255
expect_err 2 "0600040001000000" "rnfctl: Invalid argument: invalid attribute length"          # u32 with 2 bytes
expect_err 2 "0800630001000000" "rnfctl: Invalid argument: Unknown attribute type"            # attribute 99
expect_err 2 "080004000100" "rnfctl: Invalid argument: bytes leftover after parsing attributes" # truncated
expect_err 1 "0800040001000000" "rnfctl: Invalid argument: Unknown attribute type" # status takes none
expect_err 99 "" "rnfctl: Operation not supported"                                  # unknown command
expect_err 0 "" "rnfctl: Operation not supported"
# A valid zero of one slot works, and status still answers.
nsx "$X" ping -n -c 1 -W "$WAIT" 127.0.0.1 >/dev/null || fail "ping in $X"
st=$(nsx "$X" rnfctl status)
expect_eq "status lines after bad input" "$(echo "$st" | wc -l)" 23
slot=$(awk '$2 == "OUTPUT" && $4 == "filter" { print $1 }' <<<"$st")
expect_eq "OUTPUT/filter packets before zeroing its slot" "$(status_counter OUTPUT filter packets <<<"$st")" 2
out=$(nsx "$X" rnfctl zero --hook "$slot" 2>&1) || fail "zero --hook $slot: $out"
st=$(nsx "$X" rnfctl status)
expect_eq "OUTPUT/filter packets after zero --hook $slot" "$(status_counter OUTPUT filter packets <<<"$st")" 0
expect_eq "OUTPUT/raw packets (another slot, kept)" "$(status_counter OUTPUT raw packets <<<"$st")" 2
finish
