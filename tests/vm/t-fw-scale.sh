#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A kube-proxy sized table: 10000 rules restored, listed, saved (same as iptables-legacy's
# save of the same file), changed by one rule, and hit by traffic. Large tables need several
# per-CPU counter blocks and a reply larger than a socket buffer: both are exercised here.
# cost: 20
. "$(dirname "$0")/lib.sh"
L="$PFX-legacy"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
ns_add "$L" || { fail "netns $L"; finish; }
N=10000
f=$TMPD/big.rules
{
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":KUBE-SERVICES - [0:0]"
	awk -v n=$N 'BEGIN { for (i = 0; i < n; i++)
		printf "-A KUBE-SERVICES -d 172.%d.%d.%d/32 -p tcp -m comment --comment \"default/svc-%d:http\" -m tcp --dport 80 -j ACCEPT\n",
			16 + int(i / 65536), int(i / 256) % 256, i % 256, i }'
	echo "-A FORWARD -j KUBE-SERVICES"
	echo "COMMIT"
} > "$f"
nsx "$R" "$RNF_BIN/iptables-restore" < "$f" || fail "restore of $N rules"
nsx "$L" iptables-legacy-restore < "$f" || fail "legacy restore"
expect_eq "rules listed by -S" "$(nsx "$R" "$RNF_BIN/iptables" -S | grep -c '^-A')" $((N + 1))
norm() { grep -v '^#'; }
nsx "$R" "$RNF_BIN/iptables-save" | norm > "$TMPD/rnf.save"
nsx "$L" iptables-legacy-save | norm > "$TMPD/legacy.save"
expect_eq "rules in iptables-legacy's save" "$(grep -c '^-A' "$TMPD/legacy.save")" $((N + 1))
if cmp -s "$TMPD/rnf.save" "$TMPD/legacy.save"; then
	log "ok: iptables-save output identical to iptables-legacy's ($N rules)"
else
	fail "iptables-save output differs from iptables-legacy's:"
	diff "$TMPD/legacy.save" "$TMPD/rnf.save" | head -10 | sed 's/^/        /'
fi
# Traffic walks the whole chain (no rule matches ICMP) and is accepted by the policy.
pings 3 "echo 0"
expect_eq "replies across $N rules" "$REPLIES" 3
expect_eq "packets counted by the jump to KUBE-SERVICES" "$(rule_counter "$R" filter FORWARD 1 packets)" 6
expect_eq "last rule's counter" "$(rule_counter "$R" filter KUBE-SERVICES $N packets)" 0
# One rule changes; the others keep their counters.
nsx "$R" "$RNF_BIN/iptables" -I FORWARD 1 -p udp --dport 9 -j DROP || fail "-I into a big table"
expect_eq "jump rule kept its counters" "$(rule_counter "$R" filter FORWARD 2 packets)" 6
nsx "$R" "$RNF_BIN/iptables" -D KUBE-SERVICES 5000 || fail "-D in a big table"
expect_eq "rules after -D" "$(nsx "$R" "$RNF_BIN/iptables" -S KUBE-SERVICES | grep -c '^-A')" $((N - 1))
finish
