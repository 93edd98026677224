#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A stateless firewall on the router, written in iptables syntax and run by rnfctl: what the
# rules allow passes, the rest is dropped by the FORWARD policy; rule and policy counters count
# exactly the packets that took them.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
r() { nsx "$R" "$RNF_BIN/iptables" "$@" || fail "iptables $*"; }
r -P FORWARD DROP
r -A FORWARD -p icmp --icmp-type echo-request -s 10.0.1.0/24 -j ACCEPT
r -A FORWARD -p icmp --icmp-type echo-reply -d 10.0.1.0/24 -j ACCEPT
r -A FORWARD -p tcp --dport 8080 -j ACCEPT
r -A FORWARD -p tcp --sport 8080 -j ACCEPT
r -A FORWARD -p udp -m multiport --dports 5353,9000:9010 -j ACCEPT
nsx "$R" "$RNF_BIN/iptables" -S FORWARD | sed 's/^/    /'
policy() { policy_counter "$R" filter FORWARD; }

pings 3 policy
expect_eq "echo replies through the firewall" "$REPLIES" 3
expect_eq "echo requests or replies dropped by the policy" "$DROPS" 0
expect_eq "echo-request rule packets" "$(rule_counter "$R" filter FORWARD 1 packets)" 3
expect_eq "echo-request rule bytes" "$(rule_counter "$R" filter FORWARD 1 bytes)" 252
expect_eq "echo-reply rule packets" "$(rule_counter "$R" filter FORWARD 2 packets)" 3

# TCP 8080 passes both ways.
tcp_server "$S" 8080 open
srv=$SRV
tcp_get "$C" 10.0.2.2 8080
expect_eq "TCP 8080 (exit $TCP_RC)" "$TCP_OUT" "open"
stop "$srv"
wait_tcp_done 8080 "$C" "$S"
expect_eq "policy drops after TCP 8080" "$(policy)" 0

# TCP 8081 is dropped: the attempt gets no answer (it is not refused), the policy counts
# every SYN, and the server, listening, never sees a packet.
tcp_server "$S" 8081 leak
srv=$SRV
nsx "$S" rnfctl zero || fail "zero in the server's netns"
syn_dropped "TCP 8081, dropped by the FORWARD policy" "$C" 10.0.2.2 8081 policy
expect_eq "packets reaching the server's INPUT" "$(hook_counter "$S" INPUT filter packets)" 0
_bound "$S" 8081 t || fail "the 8081 listener went away"
stop "$srv"

# UDP to a port in the multiport list arrives; one outside it is dropped by the policy and
# never reaches the server.
bg "$S" socat -u UDP-RECV:9005 OPEN:"$TMPD/udp9005",creat,trunc
u1=$BG
bg "$S" socat -u UDP-RECV:9011 OPEN:"$TMPD/udp9011",creat,trunc
u2=$BG
wait_udp_bind "$S" 9005
wait_udp_bind "$S" 9011
nsx "$S" rnfctl zero || fail "zero in the server's netns"
echo in-range | nsx "$C" socat -u - UDP:10.0.2.2:9005 || fail "send to UDP 9005"
wait_until "$WAIT" file_is "$TMPD/udp9005" in-range
expect_eq "UDP 9005 received" "$(cat "$TMPD/udp9005")" "in-range"
p0=$(policy)
echo out-of-range | nsx "$C" socat -u - UDP:10.0.2.2:9011 || fail "send to UDP 9011"
wait_until "$WAIT" counter_reaches $((p0 + 1)) policy
expect_eq "UDP 9011 datagrams dropped by the policy" $(($(policy) - p0)) 1
expect_eq "UDP 9011 received" "$(cat "$TMPD/udp9011")" ""
expect_eq "packets reaching the server's INPUT (the 9005 datagram)" "$(hook_counter "$S" INPUT filter packets)" 1
expect_eq "multiport rule packets" "$(rule_counter "$R" filter FORWARD 5 packets)" 1
stop "$u1" "$u2"

# -Z zeroes rule and policy counters; listing shows it.
r -Z FORWARD
expect_eq "rule 1 after -Z" "$(rule_counter "$R" filter FORWARD 1 packets)" 0
expect_eq "policy after -Z" "$(policy)" 0
# Counters survive an unrelated change (-A) without losing counts.
pings 2 policy
expect_eq "echo replies after -Z" "$REPLIES" 2
r -A FORWARD -p udp --dport 53 -j ACCEPT
expect_eq "rule 1 kept its counters across -A" "$(rule_counter "$R" filter FORWARD 1 packets)" 2
# Deleting by number and by specification.
r -D FORWARD 6
r -D FORWARD -p udp -m multiport --dports 5353,9000:9010 -j ACCEPT
expect_eq "rules left" "$(nsx "$R" "$RNF_BIN/iptables" -S FORWARD | grep -c '^-A')" 4
finish
