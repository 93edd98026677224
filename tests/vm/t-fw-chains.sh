#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# User chains with traffic: -j returns, -g does not, RETURN and falling off a user chain
# return to the caller, falling off a builtin chain takes its policy.
# cost: 12
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
f() { nsx "$R" "$RNF_BIN/iptables" "$@" || fail "iptables $*"; }
drops() { dropped_packets "$R"; }
# received WHAT WANT: two echo requests; WANT replies, the rest dropped (by CHK's DROP rule or
# the FORWARD policy).
received() {
	pings 2 drops
	if [ "$REPLIES" = "$2" ] && [ "$DROPS" = $((2 - $2)) ]; then
		log "ok: $1: $REPLIES replies, $DROPS dropped"
	else
		fail "$1: $REPLIES replies and $DROPS dropped, want $2 and $((2 - $2))"
	fi
}

f -P FORWARD DROP
f -N EMPTY
f -N CHK
f -A CHK -p icmp --icmp-type echo-request -j RETURN
f -A CHK -p icmp --icmp-type echo-reply -j RETURN
f -A CHK -j DROP
f -A FORWARD -j CHK
f -A FORWARD -j EMPTY
f -A FORWARD -p icmp -j ACCEPT
received "through -j CHK (RETURN) and -j EMPTY (falls off)" 2
expect_eq "CHK rule 1 (RETURN) packets" "$(rule_counter "$R" filter CHK 1 packets)" 2
expect_eq "FORWARD rule 2 (-j EMPTY) packets" "$(rule_counter "$R" filter FORWARD 2 packets)" 4
expect_eq "FORWARD rule 3 (ACCEPT) packets" "$(rule_counter "$R" filter FORWARD 3 packets)" 4
# -g EMPTY: falling off EMPTY does not come back to FORWARD: the policy (DROP) decides.
f -R FORWARD 2 -g EMPTY
policy0=$(policy_counter "$R" filter FORWARD)
received "through -g EMPTY" 0
expect_eq "requests dropped by the FORWARD policy" $(($(policy_counter "$R" filter FORWARD) - policy0)) 2
# A goto inside a jump: RETURN from the goto target returns to the jump's caller.
f -R FORWARD 2 -j EMPTY
f -N G
f -A G -j RETURN
f -I CHK 1 -g G
before=$(rule_counter "$R" filter CHK 2 packets)
received "with CHK -g G, G RETURN" 2
expect_eq "CHK's own RETURN rule was skipped" "$(rule_counter "$R" filter CHK 2 packets)" "$before"
expect_eq "G's RETURN counted requests and replies" "$(rule_counter "$R" filter G 1 packets)" 4
finish
