#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Forwarded traffic moves the router's PREROUTING, FORWARD and POSTROUTING counters, and only
# those, and only in the router's netns.
# cost: 10
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
ns_add "$PFX-idle" || fail "netns $PFX-idle"
for ns in "$R" "$PFX-idle"; do nsx "$ns" rnfctl zero || fail "zero in $ns"; done

N=5
# Once the N replies are in, the router has counted every request and reply.
pings $N "echo 0" -s 56
expect_eq "replies through the router" "$REPLIES" $N
# 56 bytes of data + 8 ICMP + 20 IP = 84 bytes per packet; requests and replies both forwarded.
want_pkts=$((2 * N))
want_bytes=$((2 * N * 84))
st=$(nsx "$R" rnfctl status)
for point_stage in "PREROUTING raw" "PREROUTING conntrack" "PREROUTING mangle" "PREROUTING nat" \
	"FORWARD mangle" "FORWARD filter" "FORWARD security" \
	"POSTROUTING mangle" "POSTROUTING nat" "POSTROUTING confirm"; do
	set -- $point_stage
	expect_eq "router $1/$2 packets" "$(status_counter "$1" "$2" packets <<<"$st")" "$want_pkts"
	expect_eq "router $1/$2 bytes" "$(status_counter "$1" "$2" bytes <<<"$st")" "$want_bytes"
done
expect_eq "router INPUT packets (all stages)" "$(point_packets "$R" INPUT)" 0
expect_eq "router OUTPUT packets (all stages)" "$(point_packets "$R" OUTPUT)" 0
for p in PREROUTING INPUT FORWARD OUTPUT POSTROUTING; do
	expect_eq "idle netns $p packets" "$(point_packets "$PFX-idle" "$p")" 0
done
# The client saw its requests leave and the replies arrive: its counters, not the router's.
expect_eq "client OUTPUT/filter packets" "$(hook_counter "$C" OUTPUT filter packets)" "$((N + 1))"
expect_eq "client INPUT/filter packets" "$(hook_counter "$C" INPUT filter packets)" "$((N + 1))"
expect_eq "client FORWARD packets" "$(point_packets "$C" FORWARD)" 0
expect_eq "server FORWARD packets" "$(point_packets "$S" FORWARD)" 0
finish
