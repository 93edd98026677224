#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A replace is all or nothing when memory runs out: with the kernel's fault injection, every
# allocation a two-table transaction makes fails in turn (rnfctl fault-inject: fail-nth 1, 2,
# ... until one attempt gets through, there and back), and after each
# failure the tables read exactly as before: rules, counters, policies. Most injected failures
# hit kvmalloc's first try, which falls back to vmalloc: the replace then goes through whole
# (also all or nothing; rnfctl checks the new tables and puts the old ones back).
# cost: 60
. "$(dirname "$0")/lib.sh"
N="$PFX-fi"

rnf_load || { fail "insmod"; finish; }
fault_injection_on
ns_add "$N" || finish

# ruleset TAG RULES: filter and mangle with RULES rules each, user chains, LOG, limit, nth.
ruleset() {
	local i
	echo "*mangle"
	echo ":PREROUTING ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	for ((i = 0; i < $2; i++)); do echo "-A OUTPUT -d 10.$1.$((i / 250)).$((i % 250)) -j MARK --set-mark $i"; done
	echo "COMMIT"
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD DROP [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":C$1 - [0:0]"
	echo "-A INPUT -p icmp -j C$1"
	echo "-A C$1 -m limit --limit 5/sec -j LOG --log-prefix \"fi$1 \""
	echo "-A C$1 -m statistic --mode nth --every 3 --packet 0 -j RETURN"
	for ((i = 0; i < $2; i++)); do echo "-A C$1 -s 10.$1.$((i / 250)).$((i % 250)) -p tcp --dport $((i + 1)) -j DROP"; done
	echo "COMMIT"
}
ruleset 1 60 >"$TMPD/a.rules"
ruleset 2 40 >"$TMPD/b.rules"
nsx "$N" "$RNF_BIN/iptables-restore" "$TMPD/a.rules" || fail "restoring the first ruleset"
# Counters that must survive every failed attempt.
nsx "$N" ping -n -c 3 -i 0.05 -W "$WAIT" 127.0.0.1 >/dev/null || fail "ping"
expect_eq "INPUT jump counted the pings (requests and replies)" "$(rule_counter "$N" filter INPUT 1 packets)" 6

out=$(nsx "$N" rnfctl fault-inject --rounds 2 "$TMPD/b.rules" 2>&1)
rc=$?
log "$out"
expect_eq "fault-inject exit status" "$rc" 0
n=${out%% failures injected*}
if is_num "$n" && [ "$n" -ge 2 ]; then
	log "ok: $n injected allocation failures refused the replace, each left the tables unchanged"
else
	fail "want at least one injected failure per round, got '$out'"
fi
# After an even number of rounds the first ruleset is back, with its counters.
expect_eq "INPUT jump counter after the rounds" "$(rule_counter "$N" filter INPUT 1 packets)" 6
expect_eq "rules in filter after the rounds" "$(nsx "$N" "$RNF_BIN/iptables" -S | grep -c '^-A')" 63
fault_injection_off
finish
