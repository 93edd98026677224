#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# iptables-restore of a file with several tables is one transaction: when the kernel refuses
# a later table, the earlier ones stay as they were (iptables-legacy commits table by table
# and would have changed them). The kernel refuses here because the namespace's rule limit
# (module parameter max_rules) is reached, which rnfctl cannot check beforehand; the message
# names the limit. Also: the limit counts all tables of a namespace, not other namespaces.
# lane: exclusive
# cost: 10
. "$(dirname "$0")/lib.sh"
N="$PFX-tx"
O="$PFX-other"
P=/sys/module/rust_nf/parameters

rnf_load || { fail "insmod"; finish; }
old_max=$(<$P/max_rules)
trap 'echo "$old_max" >$P/max_rules; topo_down' EXIT
ns_add "$N" || finish
ns_add "$O" || finish

# rules TABLE CHAIN COUNT TAG
rules() {
	local i
	for ((i = 0; i < $3; i++)); do echo "-A $2 -s 10.$4.0.$i -j ACCEPT"; done
}
# file INPUT_POLICY FILTER_RULES MANGLE_RULES TAG: filter and mangle, rules in INPUT and OUTPUT.
file() {
	echo "*filter"; echo ":INPUT $1 [0:0]"; echo ":FORWARD ACCEPT [0:0]"; echo ":OUTPUT ACCEPT [0:0]"
	rules filter INPUT "$2" "$4"; echo "COMMIT"
	echo "*mangle"; echo ":PREROUTING ACCEPT [0:0]"; echo ":INPUT ACCEPT [0:0]"; echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"; echo ":POSTROUTING ACCEPT [0:0]"
	rules mangle OUTPUT "$3" $(($4 + 1)); echo "COMMIT"
}
file ACCEPT 5 5 1 >"$TMPD/first"
nsx "$N" "$RNF_BIN/iptables-restore" "$TMPD/first" || fail "first restore"
nsx "$N" "$RNF_BIN/iptables-save" | grep -v '^#' >"$TMPD/before"
expect_eq "rules before" "$(grep -c '^-A' "$TMPD/before")" 10

# Limit 12 rules per namespace. The new file: filter with 4 rules (fine alone), then mangle
# with 9: 13 in all, over the limit. Nothing may change, filter included.
echo 12 >$P/max_rules
file DROP 4 9 3 >"$TMPD/second"
out=$(nsx "$N" "$RNF_BIN/iptables-restore" "$TMPD/second" 2>&1)
rc=$?
expect_eq "restore over the limit: exit status" "$rc" 1
# The transaction as a whole is over the limit: the last COMMIT's line is named (line 25).
expect_eq "restore over the limit: message" "$out" "iptables-restore: line 25 failed"
nsx "$N" "$RNF_BIN/iptables-save" | grep -v '^#' >"$TMPD/after"
if cmp -s "$TMPD/before" "$TMPD/after"; then
	log "ok: both tables unchanged"
else
	fail "tables changed by a refused transaction: $(diff "$TMPD/before" "$TMPD/after" | head -5 | tr '\n' ' ')"
fi
# The same limit through one iptables command names it.
expect_fail "-A over the limit" 1 "iptables: Argument list too long." \
	nsx "$N" bash -c "for i in 1 2 3; do $RNF_BIN/iptables -A FORWARD -j ACCEPT || exit; done"
[[ $OUT == *"max_rules"* ]] && log "ok: the message names the limit" || fail "no mention of max_rules in: $OUT"
# Another namespace has its own count.
nsx "$O" "$RNF_BIN/iptables-restore" "$TMPD/first" || fail "restore in another namespace under the limit"
# With the limit raised, the file goes in whole.
echo "$old_max" >$P/max_rules
nsx "$N" "$RNF_BIN/iptables-restore" "$TMPD/second" || fail "restore under the limit"
expect_eq "INPUT policy after the second restore" "$(nsx "$N" "$RNF_BIN/iptables" -S INPUT | head -1)" "-P INPUT DROP"
expect_eq "mangle OUTPUT rules" "$(nsx "$N" "$RNF_BIN/iptables" -t mangle -S OUTPUT | grep -c '^-A')" 9
finish
