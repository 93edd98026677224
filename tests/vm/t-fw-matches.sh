#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Each match with real traffic: a rule in the router's FORWARD chain drops what it matches;
# the client's pings (or UDP datagrams) show what passed. One case per line: description,
# rule, expected pings received of 4 sent (ping options given per case).
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }

# case WANT_RECEIVED "PING OPTIONS" RULE...
case_() {
	local want=$1 popts=$2
	shift 2
	nsx "$R" "$RNF_BIN/iptables" -F FORWARD
	if ! nsx "$R" "$RNF_BIN/iptables" -A FORWARD "$@"; then
		fail "rule rejected: $*"
		return
	fi
	local got
	got=$(nsx "$C" ping -c 4 -i 0.2 -W 1 $popts 10.0.2.2 2>/dev/null | awk '/packets transmitted/ { print $4 }')
	expect_eq "received with [$*] ping $popts" "${got:-0}" "$want"
}

case_ 0 "" -p icmp -j DROP
case_ 4 "" -p tcp -j DROP
case_ 4 "" ! -p icmp -j DROP
case_ 0 "" -s 10.0.1.2 -j DROP
case_ 4 "" -s 10.0.1.3 -j DROP
case_ 0 "" -d 10.0.2.0/24 -j DROP
case_ 0 "" ! -d 10.0.2.0/24 -j DROP
case_ 4 "" ! -d 10.0.0.0/16 -j DROP
case_ 0 "" -s 10.0.1.2,10.9.9.9 -j DROP
case_ 0 "" -i r0 -j DROP
case_ 0 "" -i r+ -j DROP
case_ 0 "" -i r1 -j DROP
case_ 4 "" -i veth9 -j DROP
case_ 0 "" -o r1 -j DROP
case_ 4 "" ! -o r+ -j DROP
case_ 0 "" -p icmp --icmp-type echo-request -j DROP
case_ 0 "" -p icmp --icmp-type 8/0 -j DROP
case_ 4 "" -p icmp --icmp-type destination-unreachable -j DROP
case_ 0 "" -p icmp --icmp-type echo-reply -j DROP
case_ 0 "-s 1000" -m length --length 1000:2000 -j DROP
case_ 4 "-s 10" -m length --length 1000:2000 -j DROP
case_ 4 "-s 1000" -m length ! --length 1000:2000 -j DROP
case_ 0 "" -m iprange --src-range 10.0.1.1-10.0.1.5 -j DROP
case_ 0 "" -m iprange --dst-range 10.0.1.1-10.0.1.5 -j DROP
case_ 4 "" -m iprange ! --src-range 10.0.0.0-10.0.255.255 -j DROP
case_ 0 "-t 5" -m ttl --ttl-lt 10 -j DROP
case_ 4 "-t 64" -m ttl --ttl-lt 10 -j DROP
# The router decrements the TTL before its FORWARD hook.
case_ 0 "-t 64" -m ttl --ttl-eq 63 -j DROP
case_ 4 "-t 64" -m ttl --ttl-gt 63 -j DROP
case_ 0 "" -m comment --comment "drop everything" -j DROP
case_ 4 "" -m mark --mark 0x1 -j DROP
case_ 0 "" -m mark ! --mark 0x1 -j DROP
case_ 2 "" -p icmp --icmp-type echo-request -m statistic --mode nth --every 2 --packet 0 -j DROP
case_ 0 "" -m statistic --mode random --probability 1 -j DROP
case_ 4 "" -m statistic --mode random --probability 0 -j DROP
case_ 4 "" -m addrtype --dst-type LOCAL -j DROP
case_ 0 "" -m addrtype --dst-type UNICAST -j DROP
# A limit of burst 2: the first two requests match (and are dropped), then the rate holds.
case_ 2 "" -p icmp --icmp-type echo-request -m limit --limit 1/hour --limit-burst 2 -j DROP
nsx "$R" "$RNF_BIN/iptables" -F FORWARD

# Fragments: a 3000-byte ping over a 1500 MTU path leaves the client in fragments.
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -f -j DROP
got=$(nsx "$C" ping -c 2 -W 1 -s 3000 10.0.2.2 2>/dev/null | awk '/packets transmitted/ { print $4 }')
expect_eq "large ping with -f DROP" "${got:-0}" 0
got=$(nsx "$C" ping -c 2 -W 1 10.0.2.2 2>/dev/null | awk '/packets transmitted/ { print $4 }')
expect_eq "small ping with -f DROP" "${got:-0}" 2
nsx "$R" "$RNF_BIN/iptables" -F FORWARD

# TCP flags: drop SYNs to 8080 -> no connection.
nsx "$S" socat -T5 TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo open' &
sleep 0.5
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p tcp --syn --dport 8080 -j DROP
expect_eq "TCP with SYN dropped" "$(nsx "$C" socat -T2 - TCP:10.0.2.2:8080,connect-timeout=2 </dev/null 2>/dev/null)" ""
nsx "$R" "$RNF_BIN/iptables" -R FORWARD 1 -p tcp --tcp-flags SYN,ACK,FIN,RST RST --dport 8080 -j DROP
expect_eq "TCP with only RST dropped" "$(nsx "$C" socat -T5 -t5 - TCP:10.0.2.2:8080,connect-timeout=3 </dev/null 2>/dev/null)" "open"
nsx "$R" "$RNF_BIN/iptables" -R FORWARD 1 -p tcp -m multiport --ports 22,8080 -j DROP
expect_eq "TCP with multiport --ports" "$(nsx "$C" socat -T2 - TCP:10.0.2.2:8080,connect-timeout=2 </dev/null 2>/dev/null)" ""
kill %1 2>/dev/null
wait 2>/dev/null
finish
