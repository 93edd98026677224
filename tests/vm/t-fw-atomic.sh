#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Atomicity: two rulesets that each accept all ICMP, but any mix of the two drops it. While
# pings cross the router, the filter table is replaced back and forth; every ping must be
# answered, and the filter table must never drop an ICMP packet: mangle's FORWARD chain
# (before filter) and security's (after it), which the replacements leave alone, count the
# same packets.
# cost: 12
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
A="*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p udp -j DROP
-A FORWARD -p icmp -j ACCEPT
COMMIT"
B="*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p icmp -j ACCEPT
-A FORWARD -p icmp -j DROP
COMMIT"
# Mixes: A's rule 1 with B's rule 2 drops ICMP; B's rules with A's policy, A's rule 1 alone
# with A's policy: all drop.
echo "$A" | nsx "$R" "$RNF_BIN/iptables-restore" || fail "restore A"
nsx "$R" "$RNF_BIN/iptables" -t mangle -A FORWARD -p icmp || fail "mangle counting rule"
nsx "$R" "$RNF_BIN/iptables" -t security -A FORWARD -p icmp || fail "security counting rule"

out0=$(icmp_stat "$C" OutEchos)
in0=$(icmp_stat "$C" InEchoReps)
# Pings until stopped; the replacements start once the first reply is back, so every one of
# them happens under traffic.
bg "$C" ping -n -q -i 0.01 10.0.2.2 >/dev/null 2>&1
pid=$BG
replies() { echo $(($(icmp_stat "$C" InEchoReps) - in0)); }
wait_until "$WAIT" counter_reaches 1 replies || fail "no reply before the replacements"
# A fixed number of replacements (no timing assumption), in one shell inside the router's
# namespace; each one must succeed.
swaps=$(nsx "$R" bash -c '
	n=0
	for i in $(seq 1 20); do
		"$0" <<<"$2" || { echo "restore B failed at $n" >&2; break; }
		"$0" <<<"$1" || { echo "restore A failed at $((n + 1))" >&2; break; }
		n=$((n + 2))
	done
	echo $n' "$RNF_BIN/iptables-restore" "$A" "$B")
expect_eq "replacements done" "$swaps" 40
kill -0 "$pid" 2>/dev/null || fail "ping ended before the last replacement"
stop "$pid"
# Every request sent has its reply, however long the last ones take to come back.
sent=$(($(icmp_stat "$C" OutEchos) - out0))
wait_until "$WAIT" counter_reaches "$sent" replies
log "replaced the ruleset $swaps times while $sent echo requests crossed the router"
expect_eq "replies to the $sent requests" "$(replies)" "$sent"
mangle=$(rule_counter "$R" mangle FORWARD 1 packets)
security=$(rule_counter "$R" security FORWARD 1 packets)
expect_eq "ICMP packets in FORWARD before filter (requests and replies)" "$mangle" $((2 * sent))
expect_eq "ICMP packets in FORWARD after filter (none dropped)" "$security" "$mangle"
finish
