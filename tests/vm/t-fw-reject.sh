#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# REJECT really answers: the client sees the ICMP error each --reject-with asks for, sent by
# the router, and a TCP reset for tcp-reset that the router sent in the server's name (the
# server, listening, never saw the SYN). REJECT is refused where iptables refuses it.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }

# reject_ping WITH TEXT: one echo request meets REJECT --reject-with WITH (none: the default);
# ping shows the router's error TEXT, and the rule counted the request.
reject_ping() {
	local with=$1 text=$2 out
	nsx "$R" "$RNF_BIN/iptables" -F FORWARD
	nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p icmp -j REJECT ${with:+--reject-with "$with"} ||
		fail "rule with ${with:-the default}"
	# ping ends as soon as the error arrives; -W only bounds a run that went wrong.
	out=$(nsx "$C" ping -n -c 1 -W "$WAIT" 10.0.2.2 2>&1)
	if [[ $out == *"From 10.0.1.1 icmp_seq=1 $text"* ]]; then
		log "ok: --reject-with ${with:-(default)} -> $text"
	else
		fail "--reject-with ${with:-(default)}: no 'From 10.0.1.1 icmp_seq=1 $text' in: $(echo "$out" | head -3 | tr '\n' ' ')"
	fi
	expect_eq "REJECT ${with:-(default)} rule packets" "$(rule_counter "$R" filter FORWARD 1 packets)" 1
}

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
	reject_ping "${pair%%:*}" "${pair#*:}"
done
# The default is port-unreachable.
reject_ping "" "Destination Port Unreachable"
nsx "$R" "$RNF_BIN/iptables" -F FORWARD

# tcp-reset: the connection is refused by the router's REJECT rule. The server listens (so a
# SYN reaching it would be answered, not refused), its rust_nf INPUT hook sees no packet, and
# nothing connects to it.
tcp_server "$S" 8080 open
srv=$SRV
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p tcp --dport 8080 -j REJECT --reject-with tcp-reset ||
	fail "tcp-reset rule"
nsx "$S" rnfctl zero || fail "zero in the server's netns"
tcp_get "$C" 10.0.2.2 8080
if [ "$TCP_RC" != 0 ] && [[ $TCP_OUT == *"Connection refused"* ]]; then
	log "ok: client: connection refused"
else
	fail "want a refused connection, got exit $TCP_RC, output '$TCP_OUT'"
fi
expect_eq "REJECT tcp-reset rule packets (the SYN)" "$(rule_counter "$R" filter FORWARD 1 packets)" 1
expect_eq "packets reaching the server's INPUT" "$(hook_counter "$S" INPUT filter packets)" 0
expect_eq "connections the server accepted" "$(nsx "$S" ss -Htn state established '( sport = :8080 )' | wc -l)" 0
_bound "$S" 8080 t || fail "the server stopped listening"
stop "$srv"

# Refused where iptables refuses them, with iptables-legacy's message and exit status (the
# kernel's refusal; rnfctl adds its own explanation on a second line).
expect_fail "tcp-reset without -p tcp" 1 "iptables: Invalid argument. Run \`dmesg' for more information." \
	nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p udp -j REJECT --reject-with tcp-reset
expect_fail "REJECT in mangle PREROUTING" 1 "iptables: Invalid argument. Run \`dmesg' for more information." \
	nsx "$R" "$RNF_BIN/iptables" -t mangle -A PREROUTING -j REJECT
expect_eq "FORWARD rules after the refusals" "$(nsx "$R" "$RNF_BIN/iptables" -S FORWARD | grep -c '^-A')" 1
expect_eq "mangle PREROUTING rules after the refusals" "$(nsx "$R" "$RNF_BIN/iptables" -t mangle -S PREROUTING | grep -c '^-A')" 0
finish
