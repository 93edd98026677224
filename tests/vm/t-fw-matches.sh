#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Each basic match with real traffic (protocol, addresses, interfaces, ICMP type, fragments,
# TCP flags; the match extensions are in t-fw-matches-ext.sh): a rule in the router's FORWARD
# chain drops what it matches; the client's pings (or TCP connections) show what passed. One
# case per line: replies expected of 4 echo requests, ping options, rule. Every request is
# accounted for: its reply arrived, or the rule counted the request or its reply as dropped.
# cost: 40
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
drops() { dropped_packets "$R"; }

match_case 0 "" -p icmp -j DROP
match_case 4 "" -p tcp -j DROP
match_case 4 "" ! -p icmp -j DROP
match_case 0 "" -s 10.0.1.2 -j DROP
match_case 4 "" -s 10.0.1.3 -j DROP
match_case 0 "" -d 10.0.2.0/24 -j DROP
match_case 0 "" ! -d 10.0.2.0/24 -j DROP
match_case 4 "" ! -d 10.0.0.0/16 -j DROP
RULES=2 match_case 0 "" -s 10.0.1.2,10.9.9.9 -j DROP
match_case 0 "" -i r0 -j DROP
match_case 0 "" -i r+ -j DROP
match_case 0 "" -i r1 -j DROP
match_case 4 "" -i veth9 -j DROP
match_case 0 "" -o r1 -j DROP
match_case 4 "" ! -o r+ -j DROP
match_case 0 "" -p icmp --icmp-type echo-request -j DROP
match_case 0 "" -p icmp --icmp-type 8/0 -j DROP
match_case 4 "" -p icmp --icmp-type destination-unreachable -j DROP
match_case 0 "" -p icmp --icmp-type echo-reply -j DROP
nsx "$R" "$RNF_BIN/iptables" -F FORWARD

# Fragments: a 3000-byte ping over a 1500 MTU path leaves the client in three fragments; -f
# matches the two that are not the first, so no request is whole at the server and no reply
# comes back, while small pings are not fragments and pass.
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -f -j DROP
r0=$(icmp_stat "$C" InEchoReps)
bg "$C" ping -n -c 2 -i 0.05 -W 600 -s 3000 10.0.2.2 >/dev/null 2>&1
pid=$BG
wait_until "$WAIT" counter_reaches 4 rule_counter "$R" filter FORWARD 1 packets
stop "$pid"
expect_eq "fragments dropped by -f (2 of each large request)" "$(rule_counter "$R" filter FORWARD 1 packets)" 4
expect_eq "replies to large pings with -f DROP" $(($(icmp_stat "$C" InEchoReps) - r0)) 0
pings 2 drops
expect_eq "replies to small pings with -f DROP" "$REPLIES" 2
expect_eq "-f rule packets after small pings" "$(rule_counter "$R" filter FORWARD 1 packets)" 4
nsx "$R" "$RNF_BIN/iptables" -F FORWARD

# TCP flags. A dropped SYN: the attempt gets no answer (it is not refused), and the rule
# counted every SYN the client sent.
tcp_server "$S" 8080 open fork
srv=$SRV
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p tcp --syn --dport 8080 -j DROP
syn_dropped "TCP with --syn dropped" "$C" 10.0.2.2 8080 "rule_counter $R filter FORWARD 1 packets"
nsx "$R" "$RNF_BIN/iptables" -R FORWARD 1 -p tcp --tcp-flags SYN,ACK,FIN,RST RST --dport 8080 -j DROP
tcp_get "$C" 10.0.2.2 8080
expect_eq "TCP with only RST dropped (exit $TCP_RC)" "$TCP_OUT" "open"
# That connection is over before the next rule, which would count its last segments.
wait_tcp_done 8080 "$C" "$S"
nsx "$R" "$RNF_BIN/iptables" -R FORWARD 1 -p tcp -m multiport --ports 22,8080 -j DROP
syn_dropped "TCP with multiport --ports dropped" "$C" 10.0.2.2 8080 "rule_counter $R filter FORWARD 1 packets"
stop "$srv"
finish
