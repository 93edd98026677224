#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# REJECT really answers: the client sees the ICMP error each --reject-with asks for, and a
# TCP reset for tcp-reset.
. "$(dirname "$0")/lib.sh"
trap topo_down EXIT

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
# with ping's wording of each ICMP destination-unreachable code
for pair in "icmp-net-unreachable:Destination Net Unreachable" \
	"icmp-host-unreachable:Destination Host Unreachable" \
	"icmp-port-unreachable:Destination Port Unreachable" \
	"icmp-proto-unreachable:Destination Protocol Unreachable" \
	"icmp-net-prohibited:Destination Net Prohibited" \
	"icmp-host-prohibited:Destination Host Prohibited" \
	"icmp-admin-prohibited:Packet filtered" \
	"net-unreach:Destination Net Unreachable" \
	"port-unreach:Destination Port Unreachable"; do
	with=${pair%%:*}
	text=${pair#*:}
	nsx "$R" "$RNF_BIN/iptables" -F FORWARD
	nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p icmp -j REJECT --reject-with "$with" || fail "rule with $with"
	out=$(nsx "$C" ping -c 1 -W 2 10.0.2.2 2>&1)
	if echo "$out" | grep -q "From 10.0.1.1 .*$text"; then
		log "ok: --reject-with $with -> $text"
	else
		fail "--reject-with $with: no '$text' in: $(echo "$out" | head -3 | tr '\n' ' ')"
	fi
done
nsx "$R" "$RNF_BIN/iptables" -F FORWARD
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p icmp -j REJECT
out=$(nsx "$C" ping -c 1 -W 2 10.0.2.2 2>&1)
echo "$out" | grep -q "Destination Port Unreachable" || fail "default REJECT is not port-unreachable"
expect_eq "REJECT rule counted" "$(rule_counter "$R" filter FORWARD 1 packets)" 1

# tcp-reset: the connection is refused at once instead of timing out.
nsx "$S" socat -T5 TCP-LISTEN:8080,reuseaddr SYSTEM:'echo open' &
sleep 0.5
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p tcp --dport 8080 -j REJECT --reject-with tcp-reset
start=$(date +%s%N)
out=$(nsx "$C" bash -c 'exec 3<>/dev/tcp/10.0.2.2/8080' 2>&1)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
log "client: $out (${ms} ms)"
echo "$out" | grep -q "Connection refused" || fail "no RST seen by the client"
kill %1 2>/dev/null
wait 2>/dev/null
# tcp-reset needs -p tcp, as in iptables.
if nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p udp -j REJECT --reject-with tcp-reset 2>/dev/null; then
	fail "tcp-reset accepted without -p tcp"
fi
# REJECT only in the filter table, as in iptables.
if nsx "$R" "$RNF_BIN/iptables" -t mangle -A PREROUTING -j REJECT 2>/dev/null; then
	fail "REJECT accepted in mangle PREROUTING"
fi
finish
