#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# rust_nf loads and unloads cleanly ten times while traffic flows through a router and into
# the server; traffic keeps flowing (every echo request is answered); every load registers the
# hooks again, in the initial netns and in the router's; after the last unload none is left.
# lane: exclusive
# cost: 12
. "$(dirname "$0")/lib.sh"
# The module is loaded and unloaded here: it must be unloaded when the test ends, whatever
# happens.
trap 'topo_down; rnf_unload' EXIT

rnf_unload || { fail "rust_nf is loaded and does not unload"; finish; }
topo_up || { fail "topology"; finish; }
# rust_nf hooks listed by nft in the initial netns and in the router's
hooks() { echo "$(nft list hooks ip | grep -c rust_nf) $(nsx "$R" nft list hooks ip | grep -c rust_nf)"; }
hooks_are() { [ "$(hooks)" = "$1" ]; }

out0=$(icmp_stat "$C" OutEchos)
in0=$(icmp_stat "$C" InEchoReps)
replies() { echo $(($(icmp_stat "$C" InEchoReps) - in0)); }
# Pings until stopped; the cycles start once the first reply is back.
bg "$C" ping -n -q -i 0.01 10.0.2.2 >/dev/null 2>&1
ping_pid=$BG
wait_until "$WAIT" counter_reaches 1 replies || fail "no reply before the cycles"
for i in $(seq 1 10); do
	insmod "$RNF_KO" || fail "insmod #$i"
	wait_until "$WAIT" hooks_are "21 21" || fail "load #$i: rust_nf hooks listed (initial netns, router): $(hooks), want 21 21"
	rmmod rust_nf || fail "rmmod #$i"
done
rnf_loaded && fail "module still loaded"
expect_eq "rust_nf hooks listed after the last unload (initial netns, router)" "$(hooks)" "0 0"
kill -0 "$ping_pid" 2>/dev/null || fail "ping ended before the last cycle"
stop "$ping_pid"
# Loading and unloading must not cost a packet: every request sent gets its reply, however
# long the last ones take to come back.
sent=$(($(icmp_stat "$C" OutEchos) - out0))
wait_until "$WAIT" counter_reaches "$sent" replies
log "$sent echo requests sent during the cycles"
expect_eq "replies to the $sent requests" "$(replies)" "$sent"
expect_ge "echo requests sent" "$sent" 1
pings 3 "echo 0"
expect_eq "replies after the cycles" "$REPLIES" 3
finish
