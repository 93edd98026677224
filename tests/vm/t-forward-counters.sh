#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Forwarded traffic moves the router's PREROUTING, FORWARD and POSTROUTING counters, and only
# those, and only in the router's netns.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
ip netns add "$PFX-idle"
for ns in "$R" "$PFX-idle"; do nsx "$ns" rnfctl zero || fail "zero in $ns"; done

N=5
nsx "$C" ping -c $N -i 0.2 -W 2 -s 56 10.0.2.2 >/dev/null || fail "ping through the router"
# 56 bytes of data + 8 ICMP + 20 IP = 84 bytes per packet; requests and replies both forwarded.
want_pkts=$((2 * N))
want_bytes=$((2 * N * 84))
for point_stage in "PREROUTING raw" "PREROUTING conntrack" "PREROUTING mangle" "PREROUTING nat" \
	"FORWARD mangle" "FORWARD filter" "FORWARD security" \
	"POSTROUTING mangle" "POSTROUTING nat" "POSTROUTING confirm"; do
	set -- $point_stage
	expect_eq "router $1/$2 packets" "$(hook_counter "$R" "$1" "$2" packets)" "$want_pkts"
	expect_eq "router $1/$2 bytes" "$(hook_counter "$R" "$1" "$2" bytes)" "$want_bytes"
done
expect_eq "router INPUT packets (all stages)" "$(point_packets "$R" INPUT)" 0
expect_eq "router OUTPUT packets (all stages)" "$(point_packets "$R" OUTPUT)" 0
for p in PREROUTING INPUT FORWARD OUTPUT POSTROUTING; do
	expect_eq "idle netns $p packets" "$(point_packets "$PFX-idle" "$p")" 0
done
# The client saw its requests leave and the replies arrive: its counters, not the router's.
expect_eq "client OUTPUT/filter packets" "$(hook_counter "$C" OUTPUT filter packets)" "$((N + 1))"
ip netns del "$PFX-idle"
finish
