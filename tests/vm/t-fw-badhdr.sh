#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Every packet meets the rules, whatever its IPv4 header says. A raw socket with IP_HDRINCL
# sends headers with IHL 4, IHL 1 and version 5 (and a valid one) to a neighbour, from a
# namespace whose OUTPUT policy is DROP: with iptables-legacy none arrives, and none may with
# rust_nf either; the policy counts what it dropped. Without rules they all leave (the sender
# works). The kernel itself refuses some of them at send time; the test counts only what left.
# cost: 15
. "$(dirname "$0")/lib.sh"
A="$PFX-a"
B="$PFX-b"
SEND="$(dirname "$0")/data/rawsend.py"
KINDS=(good ihl4 ihl1 v5)

rnf_load || { fail "insmod"; finish; }
NAMESPACES+=("$A" "$B")
ip -batch - <<-EOF2 || { fail "namespaces"; finish; }
	netns add $A
	netns add $B
	link add a0 netns $A address 02:00:00:00:09:01 type veth peer name b0 netns $B address 02:00:00:00:09:02
EOF2
# Static neighbours both ways: no ARP packet lands in the counts.
printf '%s\n' "link set lo up" "addr add 10.0.9.1/24 dev a0" "link set a0 up" \
	"neigh add 10.0.9.2 lladdr 02:00:00:00:09:02 dev a0 nud permanent" >"$TMPD/a.ip"
printf '%s\n' "link set lo up" "addr add 10.0.9.2/24 dev b0" "link set b0 up" \
	"neigh add 10.0.9.1 lladdr 02:00:00:00:09:01 dev b0 nud permanent" >"$TMPD/b.ip"
_ns_start "$A" "$TMPD/a.ip"
_ns_start "$B" "$TMPD/b.ip"
_ns_ready "$A" "$B" || finish

# rx_b: packets b0 received so far (read by bash from the namespace's /proc/PID/net/dev).
rx_b() {
	local name rx_bytes rx_packets rest
	while read -r name rx_bytes rx_packets rest; do
		[ "$name" = "b0:" ] && { echo "$rx_packets"; return; }
	done <"/proc/${ANCHOR[$B]}/net/dev"
	echo missing
}

# send WHAT [KIND...]: sends the kinds (all by default) from A; SENT is how many the kernel let
# out of the socket, DROPPED how many netfilter dropped on the way out (sendto fails with
# EPERM for those).
send() {
	local out kind verdict what=$1
	shift
	[ $# -gt 0 ] || set -- "${KINDS[@]}"
	out=$(nsx "$A" /usr/bin/python3 "$SEND" 10.0.9.2 "$@" 2>&1) || { fail "$what: sender: $out"; return 1; }
	SENT=0 DROPPED=0
	while read -r kind verdict errno; do
		[ "$verdict" = sent ] && SENT=$((SENT + 1))
		[ "$verdict $errno" = "refused 1" ] && DROPPED=$((DROPPED + 1))
	done <<<"$out"
	log "$what: $(echo "$out" | tr '\n' ' ')"
}

arrived() { [ "$(rx_b)" -ge "$1" ]; }

# marker WHAT RX0: with the policy back to ACCEPT, one valid packet more, waited for: packets
# on the same path arrive in order, so when it is in, any packet sent before it that got
# through is counted too. B then has exactly one packet more than RX0.
marker() {
	send "$1: marker" good || return
	wait_until "$WAIT" arrived $(($2 + 1)) || fail "$1: the marker packet never arrived"
	expect_eq "$1: packets that reached the neighbour (the marker only)" $(($(rx_b) - $2)) 1
}

# Control: no rules, everything the kernel let out arrives. At least the valid header and
# version 5 leave the socket (the kernel refuses IHL below 5 itself, today).
rx0=$(rx_b)
send "no rules" || finish
[ "$SENT" -ge 2 ] || fail "no rules: only $SENT packets left the socket, want at least good and v5"
wait_until "$WAIT" arrived $((rx0 + SENT)) || fail "no rules: $SENT sent, $(($(rx_b) - rx0)) arrived"
expect_eq "no rules: packets arrived" $(($(rx_b) - rx0)) "$SENT"
CONTROL_SENT=$SENT

# rust_nf: OUTPUT policy DROP. None arrives; the policy counted every packet that left the
# socket. The good one is sent last, after the bad ones: once the policy counted it, the
# others had their verdict already.
nsx "$A" "$RNF_BIN/iptables" -P OUTPUT DROP || fail "rnfctl -P OUTPUT DROP"
rx0=$(rx_b)
send "rust_nf, OUTPUT DROP" || finish
expect_eq "rust_nf: packets sendto saw dropped" "$DROPPED" "$CONTROL_SENT"
expect_eq "rust_nf: packets the OUTPUT policy dropped" "$(policy_counter "$A" filter OUTPUT)" "$CONTROL_SENT"
nsx "$A" "$RNF_BIN/iptables" -P OUTPUT ACCEPT || fail "rnfctl -P OUTPUT ACCEPT"
marker "rust_nf" "$rx0"

# The same with iptables-legacy.
nsx "$A" iptables-legacy -P OUTPUT DROP || fail "iptables-legacy -P OUTPUT DROP"
rx0=$(rx_b)
send "iptables-legacy, OUTPUT DROP" || finish
expect_eq "iptables-legacy: packets sendto saw dropped" "$DROPPED" "$CONTROL_SENT"
expect_eq "iptables-legacy: packets the OUTPUT policy dropped" \
	"$(nsx "$A" iptables-legacy -L OUTPUT -n -v -x | { read -r _ _ _ _ p _; echo "$p"; })" "$CONTROL_SENT"
nsx "$A" iptables-legacy -P OUTPUT ACCEPT
marker "iptables-legacy" "$rx0"

# And without rules again: the packets flow (nothing stuck the path shut).
rx0=$(rx_b)
send "no rules again" || finish
wait_until "$WAIT" arrived $((rx0 + SENT)) || fail "no rules again: $SENT sent, $(($(rx_b) - rx0)) arrived"
expect_eq "no rules again: as many sent as the first time" "$SENT" "$CONTROL_SENT"
finish
