#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Zeroing counters while packets are being counted on every CPU: rule counters (-Z) and hook
# counters (rnfctl zero) are zeroed over and over during a ping flood. No read ever shows a
# wrapped or torn value, and after the flood the counters count exactly what comes next: a
# zero never loses an addition made after it, nor undoes itself.
# cost: 8
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
X="$PFX-x"
ns_add "$X" || { fail "netns $X"; finish; }
nsx "$X" "$RNF_BIN/iptables" -A INPUT -p icmp || fail "rule"

# Flood: local echo requests and replies, both through INPUT.
bg "$X" ping -q -f -c 8000 127.0.0.1
flood=$BG
bad=0 rounds=0
# A value is sane when it is a number below 2^40 (a zero that went wrong shows near 2^64).
sane() { is_num "$1" && [ "${#1}" -le 13 ]; }
while kill -0 "$flood" 2>/dev/null && [ $rounds -lt 400 ]; do
	rounds=$((rounds + 1))
	nsx "$X" "$RNF_BIN/iptables" -Z INPUT || fail "-Z INPUT"
	nsx "$X" rnfctl zero || fail "rnfctl zero"
	r=$(rule_counter "$X" filter INPUT 1 packets)
	h=$(hook_counter "$X" INPUT filter packets)
	if ! sane "$r" || ! sane "$h"; then
		bad=$((bad + 1))
		log "round $rounds: rule counter '$r', hook counter '$h'"
	fi
done
wait "$flood" || fail "ping flood: exit $?"
expect_ge "zero rounds during the flood" "$rounds" 2
expect_eq "reads with a wrapped or torn counter" "$bad" 0

# Now exactly 10 requests and 10 replies.
nsx "$X" "$RNF_BIN/iptables" -Z INPUT || fail "-Z INPUT"
nsx "$X" rnfctl zero || fail "rnfctl zero"
nsx "$X" ping -n -q -c 10 -i 0.01 -W "$WAIT" 127.0.0.1 >/dev/null || fail "10 pings"
expect_eq "rule counter after zero + 10 pings" "$(rule_counter "$X" filter INPUT 1 packets)" 20
expect_eq "hook counter after zero + 10 pings" "$(hook_counter "$X" INPUT filter packets)" 20
finish
