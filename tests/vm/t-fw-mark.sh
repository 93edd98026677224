#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# MARK in mangle sets the packet mark that -m mark in filter sees, with every MARK option.
# cost: 9
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
m() { nsx "$R" "$RNF_BIN/iptables" -t mangle "$@" || fail "mangle $*"; }
f() { nsx "$R" "$RNF_BIN/iptables" "$@" || fail "filter $*"; }
drops() { dropped_packets "$R"; }
# received WHAT WANT: three echo requests; WANT replies, the rest dropped by the mark rule.
received() {
	pings 3 drops
	if [ "$REPLIES" = "$2" ] && [ "$DROPS" = $((3 - $2)) ]; then
		log "ok: $1: $REPLIES replies, $DROPS dropped"
	else
		fail "$1: $REPLIES replies and $DROPS dropped, want $2 and $((3 - $2))"
	fi
}

m -A PREROUTING -p icmp -j MARK --set-mark 0xf0
m -A PREROUTING -p icmp -j MARK --and-mark 0x30
m -A PREROUTING -p icmp -j MARK --or-mark 0x1
m -A PREROUTING -p icmp -j MARK --xor-mark 0x3
# 0xf0 & 0x30 = 0x30; | 0x1 = 0x31; ^ 0x3 = 0x32
f -A FORWARD -m mark --mark 0x32 -j DROP
received "mark 0x32 dropped" 0
f -R FORWARD 1 -m mark --mark 0x30/0xf0 -j DROP
received "mark 0x30/0xf0 dropped" 0
f -R FORWARD 1 -m mark --mark 0x31 -j DROP
received "mark 0x31 dropped" 3
m -F PREROUTING
m -A PREROUTING -j MARK --set-xmark 0x4/0x6
f -R FORWARD 1 -m mark --mark 0x4 -j DROP
received "--set-xmark 0x4/0x6 then mark 0x4 dropped" 0
expect_eq "MARK rule counted the requests (dropped, so no replies)" "$(rule_counter "$R" mangle PREROUTING 1 packets)" 3
finish
