#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# CONNMARK and -m connmark on a router, against iptables-legacy with nf_conntrack: the first
# packet of a flow gets a packet mark that CONNMARK --save-mark keeps in the flow; every later
# packet, replies included, gets it back from --restore-mark, so the MARK rule fires once per
# flow, and the replies match both -m mark and -m connmark. The flow's mark shows in
# `conntrack -L` (mark=) and filters it (--mark). --set-mark/--and-mark/--or-mark change the
# flow's mark as the kernel does.
# cost: 8
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
ct_long_timeouts "$R"
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"

ruleset() {
	local t=$1
	nsx "$R" "$t" -t mangle -A PREROUTING -j CONNMARK --restore-mark &&
		nsx "$R" "$t" -t mangle -A PREROUTING -i r0 -p udp --dport 5353 -m mark --mark 0 -j MARK --set-mark 0x5 &&
		nsx "$R" "$t" -t mangle -A PREROUTING -i r0 -p tcp --dport 8080 -m mark --mark 0 -j MARK --set-mark 0x7 &&
		nsx "$R" "$t" -t mangle -A PREROUTING -j CONNMARK --save-mark --mask 0xff &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p udp --sport 5353 -m mark --mark 0x5 &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p udp --sport 5353 &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p tcp --sport 8080 -m mark --mark 0x7 &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p tcp --sport 8080 -m connmark --mark 0x7/0xff &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p tcp --sport 8080 &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p tcp --sport 8080 -m connmark ! --mark 0x7 &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p tcp --sport 8080 -m connbytes --connbytes 0:3 --connbytes-dir reply --connbytes-mode packets &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r1 -p tcp --sport 8080 -m connbytes ! --connbytes 0:3 --connbytes-dir reply --connbytes-mode packets &&
		nsx "$R" "$t" -t mangle -A FORWARD -i r0 -p tcp --dport 8080 -m connbytes --connbytes 1 --connbytes-dir both --connbytes-mode bytes
}
# counter TOOL CHAIN N: packets of mangle rule N.
counter() {
	nsx "$R" "$1" -t mangle -L "$2" -n -v -x --line-numbers | awk -v n="$3" '$1 == n { print $2 }'
}
traffic() {
	bg "$S" socat -T "$WAIT" UDP-RECVFROM:5353,reuseaddr SYSTEM:"echo pong"
	wait_udp_bind "$S" 5353
	udp_ask "$C" 10.0.2.2 5353 < <(echo ping)
	got=$UDP_OUT
	expect_eq "$1: UDP request and reply" "$got" pong
	tcp_server "$S" 8080 "$(seq 1 2000)"
	tcp_get "$C" 10.0.2.2 8080
	expect_eq "$1: TCP transfer" "$(echo "$TCP_OUT" | wc -l)" 2000
	wait_tcp_done 8080 "$C" "$S"
}
check() {
	local t=$1 what=$2
	expect_eq "$what: UDP MARK rule fired once (first packet)" "$(counter "$t" PREROUTING 2)" 1
	expect_eq "$what: TCP MARK rule fired once (the SYN)" "$(counter "$t" PREROUTING 3)" 1
	expect_eq "$what: the UDP reply had its mark restored" "$(counter "$t" FORWARD 1)" "$(counter "$t" FORWARD 2)"
	expect_eq "$what: UDP replies" "$(counter "$t" FORWARD 2)" 1
	all=$(counter "$t" FORWARD 5)
	expect_ge "$what: TCP replies" "$all" 3
	expect_eq "$what: every TCP reply had mark 7" "$(counter "$t" FORWARD 3)" "$all"
	expect_eq "$what: every TCP reply's flow had connmark 7" "$(counter "$t" FORWARD 4)" "$all"
	expect_eq "$what: ! --mark 7 matched no TCP reply" "$(counter "$t" FORWARD 6)" 0
	# connbytes counts the packet being matched: the first three replies are 1..3.
	expect_eq "$what: connbytes 0:3 (reply packets)" "$(counter "$t" FORWARD 7)" 3
	expect_eq "$what: ! connbytes 0:3 (reply packets)" "$(counter "$t" FORWARD 8)" $((all - 3))
	req=$(nsx "$R" "$1" -t mangle -L FORWARD -n -v -x | awk 'NR > 2 && /dpt:8080/ { print $1; exit }')
	expect_ge "$what: connbytes 1: (bytes, both) on client packets" "$req" 3
}

ruleset "$RNF_BIN/iptables" || fail "rnfctl ruleset"
traffic rnfctl
check "$RNF_BIN/iptables" rnfctl
list=$(nsx "$R" "$RNF_BIN/conntrack" -L 2>/dev/null)
log "$list"
expect_eq "flows with mark=7 (TCP)" "$(grep -c 'dport=8080 .* mark=7 use=1$' <<<"$list")" 1
expect_eq "flows with mark=5 (UDP)" "$(grep -c 'dport=5353 .* mark=5 use=1$' <<<"$list")" 1
expect_eq "conntrack -L --mark 7" "$(nsx "$R" "$RNF_BIN/conntrack" -L --mark 7 2>/dev/null | grep -c .)" 1
expect_eq "conntrack -L --mark 0x4/0x4" "$(nsx "$R" "$RNF_BIN/conntrack" -L --mark 0x4/0x4 2>/dev/null | grep -c .)" 2

# The flow's mark under the other ways of writing it: a UDP flow whose first packet goes
# through --set-mark 0x30/0xf0, --or-mark 0x100, --xor-mark 0x3, --and-mark 0xff0f.
nsx "$R" "$RNF_BIN/iptables" -t mangle -F
for o in "--set-mark 0x30/0xf0" "--or-mark 0x100" "--xor-mark 0x3" "--and-mark 0xff0f"; do
	# shellcheck disable=SC2086
	nsx "$R" "$RNF_BIN/iptables" -t mangle -A PREROUTING -i r0 -p udp --dport 5400 -j CONNMARK $o ||
		fail "CONNMARK $o"
done
bg "$S" socat -T "$WAIT" UDP-RECVFROM:5400,reuseaddr SYSTEM:"echo ok"
wait_udp_bind "$S" 5400
echo ping | udp_ask "$C" 10.0.2.2 5400
# (0x30 | 0x100) ^ 0x3 = 0x133, & 0xff0f = 0x103 = 259.
expect_eq "flow mark after set/or/xor/and" \
	"$(nsx "$R" "$RNF_BIN/conntrack" -L -p udp --dport 5400 2>/dev/null | grep -o 'mark=[0-9]*')" "mark=259"

# The same with iptables-legacy and nf_conntrack.
nsx "$R" "$RNF_BIN/iptables" -t mangle -F
ruleset iptables-legacy || fail "iptables-legacy ruleset"
traffic legacy
check iptables-legacy legacy
klist=$(nsx "$R" conntrack -L 2>/dev/null)
expect_eq "legacy: flows with mark=7 (TCP)" "$(grep -c 'dport=8080 .* mark=7 use=1$' <<<"$klist")" 1
finish
