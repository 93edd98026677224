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

# Pings until stopped; the cycles start once the first reply is back.
flood_start "the cycles"
for i in $(seq 1 10); do
	insmod "$RNF_KO" || fail "insmod #$i"
	wait_until "$WAIT" hooks_are "21 21" || fail "load #$i: rust_nf hooks listed (initial netns, router): $(hooks), want 21 21"
	rmmod rust_nf || fail "rmmod #$i"
done
rnf_loaded && fail "module still loaded"
expect_eq "rust_nf hooks listed after the last unload (initial netns, router)" "$(hooks)" "0 0"
# Loading and unloading must not cost a packet: every request sent gets its reply, however
# long the last ones take to come back.
flood_end "the cycles"
pings 3 "echo 0"
expect_eq "replies after the cycles" "$REPLIES" 3
finish
