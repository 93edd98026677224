#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A kube-proxy sized table: 10000 rules restored, listed, saved (same as iptables-legacy's
# save of the same file), changed by one rule, and hit by traffic. Large tables need several
# per-CPU counter blocks and a reply larger than a socket buffer: both are exercised here.
. "$(dirname "$0")/lib.sh"
L="$PFX-legacy"
trap 'ip netns del "$L" 2>/dev/null; topo_down' EXIT

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
ip netns add "$L"
N=10000
f=/tmp/$PFX-big.rules
{
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":KUBE-SERVICES - [0:0]"
	i=0
	while [ $i -lt $N ]; do
		echo "-A KUBE-SERVICES -d 172.$((16 + i / 65536)).$((i / 256 % 256)).$((i % 256))/32 -p tcp -m comment --comment \"default/svc-$i:http\" -m tcp --dport 80 -j ACCEPT"
		i=$((i + 1))
	done
	echo "-A FORWARD -j KUBE-SERVICES"
	echo "COMMIT"
} > "$f"
nsx "$R" "$RNF_BIN/iptables-restore" < "$f" || fail "restore of $N rules"
nsx "$L" iptables-legacy-restore < "$f" || fail "legacy restore"
expect_eq "rules listed by -S" "$(nsx "$R" "$RNF_BIN/iptables" -S | grep -c '^-A')" $((N + 1))
norm() { grep -v '^#'; }
if [ "$(nsx "$R" "$RNF_BIN/iptables-save" | norm)" = "$(nsx "$L" iptables-legacy-save | norm)" ]; then
	log "ok: iptables-save output identical to iptables-legacy's ($N rules)"
else
	fail "iptables-save output differs from iptables-legacy's"
fi
# Traffic walks the whole chain (no rule matches ICMP) and is accepted by the policy.
nsx "$C" ping -c 3 -i 0.2 -W 2 10.0.2.2 >/dev/null || fail "ping across $N rules"
expect_eq "packets counted by the jump to KUBE-SERVICES" "$(rule_counter "$R" filter FORWARD 1 packets)" 6
expect_eq "last rule's counter" "$(rule_counter "$R" filter KUBE-SERVICES $N packets)" 0
# One rule changes; the others keep their counters.
nsx "$R" "$RNF_BIN/iptables" -I FORWARD 1 -p udp --dport 9 -j DROP || fail "-I into a big table"
expect_eq "jump rule kept its counters" "$(rule_counter "$R" filter FORWARD 2 packets)" 6
nsx "$R" "$RNF_BIN/iptables" -D KUBE-SERVICES 5000 || fail "-D in a big table"
expect_eq "rules after -D" "$(nsx "$R" "$RNF_BIN/iptables" -S KUBE-SERVICES | grep -c '^-A')" $((N - 1))
rm -f "$f"
finish
