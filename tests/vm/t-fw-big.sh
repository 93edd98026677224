#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# 100,000 rules go in with one iptables-restore (a request far larger than the socket's
# default buffer) and come back out whole: iptables-save and -L list every one (the
# kernel answers in many netlink messages), counters included.
# cost: 60
. "$(dirname "$0")/lib.sh"
N="$PFX-big"
COUNT=100000

rnf_load || { fail "insmod"; finish; }
ns_add "$N" || finish
{
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":BIG - [0:0]"
	echo "-A INPUT -i lo -j BIG"
	for ((i = 0; i < COUNT; i++)); do
		echo "-A BIG -s 10.$((i >> 16 & 255)).$((i >> 8 & 255)).$((i & 255))/32 -p tcp -m tcp --dport $((i % 60000 + 1)) -j DROP"
	done
	echo "COMMIT"
} >"$TMPD/big.rules"
nsx "$N" "$RNF_BIN/iptables-restore" "$TMPD/big.rules" || { fail "restore of $COUNT rules"; finish; }
# Traffic through all of them: every rule is tried (none matches) and counted nowhere; the
# jump counts the ping's packets.
nsx "$N" ping -n -c 1 -W "$WAIT" 127.0.0.1 >/dev/null || fail "ping through $COUNT rules"
nsx "$N" "$RNF_BIN/iptables-save" -c >"$TMPD/saved" || fail "iptables-save"
expect_eq "rules in iptables-save" "$(grep -c '^\[.*\] -A BIG ' "$TMPD/saved")" "$COUNT"
expect_eq "the jump's counters in iptables-save" "$(grep -c '^\[2:168\] -A INPUT -i lo -j BIG$' "$TMPD/saved")" 1
# Exactly what was restored (counters aside).
grep '^-A' "$TMPD/big.rules" >"$TMPD/want"
sed -n 's/^\[[0-9]*:[0-9]*\] \(-A .*\)/\1/p' "$TMPD/saved" >"$TMPD/got"
cmp -s "$TMPD/want" "$TMPD/got" && log "ok: saved rules equal the restored ones" ||
	fail "saved rules differ: $(diff "$TMPD/want" "$TMPD/got" | head -3 | tr '\n' ' ')"
expect_eq "lines of -L BIG -n" "$(nsx "$N" "$RNF_BIN/iptables" -L BIG -n | wc -l)" $((COUNT + 2))
finish
