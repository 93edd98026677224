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

# Pings until stopped; the replacements start once the first reply is back, so every one of
# them happens under traffic.
flood_start "the replacements"
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
# Every request sent has its reply, however long the last ones take to come back.
flood_end "the replacements"
sent=$SENT
log "replaced the ruleset $swaps times while $sent echo requests crossed the router"
mangle=$(rule_counter "$R" mangle FORWARD 1 packets)
security=$(rule_counter "$R" security FORWARD 1 packets)
expect_eq "ICMP packets in FORWARD before filter (requests and replies)" "$mangle" $((2 * sent))
expect_eq "ICMP packets in FORWARD after filter (none dropped)" "$security" "$mangle"
finish
