#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# MARK in mangle sets the packet mark that -m mark in filter sees, with every MARK option.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
m() { nsx "$R" "$RNF_BIN/iptables" -t mangle "$@" || fail "mangle $*"; }
f() { nsx "$R" "$RNF_BIN/iptables" "$@" || fail "filter $*"; }
received() { nsx "$C" ping -c 3 -i 0.2 -W 1 10.0.2.2 2>/dev/null | awk '/packets transmitted/ { print $4 }'; }

m -A PREROUTING -p icmp -j MARK --set-mark 0xf0
m -A PREROUTING -p icmp -j MARK --and-mark 0x30
m -A PREROUTING -p icmp -j MARK --or-mark 0x1
m -A PREROUTING -p icmp -j MARK --xor-mark 0x3
# 0xf0 & 0x30 = 0x30; | 0x1 = 0x31; ^ 0x3 = 0x32
f -A FORWARD -m mark --mark 0x32 -j DROP
expect_eq "received with mark 0x32 dropped" "$(received)" 0
f -R FORWARD 1 -m mark --mark 0x30/0xf0 -j DROP
expect_eq "received with mark 0x30/0xf0 dropped" "$(received)" 0
f -R FORWARD 1 -m mark --mark 0x31 -j DROP
expect_eq "received with mark 0x31 dropped" "$(received)" 3
m -F PREROUTING
m -A PREROUTING -j MARK --set-xmark 0x4/0x6
f -R FORWARD 1 -m mark --mark 0x4 -j DROP
expect_eq "received with --set-xmark 0x4/0x6 then mark 0x4 dropped" "$(received)" 0
expect_eq "MARK rule counted the requests (dropped, so no replies)" "$(rule_counter "$R" mangle PREROUTING 1 packets)" 3
finish
