#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A stateless firewall on the router, written in iptables syntax and run by rnfctl: what the
# rules allow passes, the rest is dropped by the FORWARD policy; rule and policy counters count
# exactly the packets that took them.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

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

nsx "$C" ping -c 3 -i 0.2 -W 2 10.0.2.2 >/dev/null || fail "echo through the firewall"
expect_eq "echo-request rule packets" "$(rule_counter "$R" filter FORWARD 1 packets)" 3
expect_eq "echo-request rule bytes" "$(rule_counter "$R" filter FORWARD 1 bytes)" 252
expect_eq "echo-reply rule packets" "$(rule_counter "$R" filter FORWARD 2 packets)" 3

# TCP 8080 passes, TCP 8081 is dropped (the connection times out).
nsx "$S" socat -T5 TCP-LISTEN:8080,reuseaddr SYSTEM:'echo open' &
nsx "$S" socat -T5 TCP-LISTEN:8081,reuseaddr SYSTEM:'echo leak' &
sleep 0.5
expect_eq "TCP 8080" "$(nsx "$C" socat -T5 -t5 - TCP:10.0.2.2:8080,connect-timeout=3 </dev/null 2>/dev/null)" "open"
expect_eq "TCP 8081" "$(nsx "$C" socat -T2 - TCP:10.0.2.2:8081,connect-timeout=2 </dev/null 2>/dev/null)" ""
kill %1 %2 2>/dev/null
wait 2>/dev/null
expect_ge "dropped by the FORWARD policy" "$(policy_counter "$R" filter FORWARD)" 1

# UDP to a port in the multiport list arrives; one outside it does not.
nsx "$S" socat -u UDP-RECV:9005 OPEN:/tmp/$PFX-udp9005,creat,trunc &
nsx "$S" socat -u UDP-RECV:9011 OPEN:/tmp/$PFX-udp9011,creat,trunc &
sleep 0.5
echo in-range | nsx "$C" socat -u - UDP:10.0.2.2:9005
echo out-of-range | nsx "$C" socat -u - UDP:10.0.2.2:9011
sleep 0.5
kill %1 %2 2>/dev/null
wait 2>/dev/null
expect_eq "UDP 9005 received" "$(cat /tmp/$PFX-udp9005 2>/dev/null)" "in-range"
expect_eq "UDP 9011 received" "$(cat /tmp/$PFX-udp9011 2>/dev/null)" ""
expect_eq "multiport rule packets" "$(rule_counter "$R" filter FORWARD 5 packets)" 1
rm -f /tmp/$PFX-udp*

# -Z zeroes rule and policy counters; listing shows it.
r -Z FORWARD
expect_eq "rule 1 after -Z" "$(rule_counter "$R" filter FORWARD 1 packets)" 0
expect_eq "policy after -Z" "$(policy_counter "$R" filter FORWARD)" 0
# Counters survive an unrelated change (-A) without losing counts.
nsx "$C" ping -c 2 -i 0.2 -W 2 10.0.2.2 >/dev/null
r -A FORWARD -p udp --dport 53 -j ACCEPT
expect_eq "rule 1 kept its counters across -A" "$(rule_counter "$R" filter FORWARD 1 packets)" 2
# Deleting by number and by specification.
r -D FORWARD 6
r -D FORWARD -p udp -m multiport --dports 5353,9000:9010 -j ACCEPT
expect_eq "rules left" "$(nsx "$R" "$RNF_BIN/iptables" -S FORWARD | grep -c '^-A')" 4
finish
