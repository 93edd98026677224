#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Atomicity: two rulesets that each accept all ICMP, but any mix of the two drops it. While
# pings cross the router, the ruleset is replaced back and forth; not one ping may be lost
# and the DROP rules may never count a packet.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

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
nsx "$C" ping -q -i 0.01 -c 2000 -W 2 10.0.2.2 > /tmp/$PFX-ping 2>&1 &
pid=$!
# A fixed number of replacements (no timing assumption); the pings last long enough that
# normally all of them happen under traffic, which the log line below reports.
swaps=0
during=0
for i in $(seq 1 20); do
	echo "$B" | nsx "$R" "$RNF_BIN/iptables-restore" || fail "restore B"
	echo "$A" | nsx "$R" "$RNF_BIN/iptables-restore" || fail "restore A"
	swaps=$((swaps + 2))
	kill -0 $pid 2>/dev/null && during=$swaps
done
wait $pid
log "replaced the ruleset $swaps times, $during of them while the pings ran"
log "$(grep 'packets transmitted' /tmp/$PFX-ping)"
expect_eq "pings lost" "$(awk '/packets transmitted/ { print $1 - $4 }' /tmp/$PFX-ping)" 0
rm -f /tmp/$PFX-ping
finish
