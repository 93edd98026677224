#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The TTL target rewrites the IPv4 header in place: the receiver sees the new TTL and a header
# checksum it accepts, for --ttl-set, --ttl-dec, --ttl-inc, exactly as with iptables-legacy.
# The rewrite works on a private copy when the packet is shared (skb_ensure_writable): a
# capture on the router's input sees the TTL the client sent, the server the rewritten one.
# cost: 8
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }

# reply_ttl: the TTL of the server's echo reply as the client sees it ("-" when none came).
reply_ttl() {
	local out
	out=$(nsx "$C" ping -n -c 1 -W "$WAIT" 10.0.2.2 2>&1)
	out=${out#*ttl=}
	[ "$out" != "${out%% *}" ] && echo "${out%% *}" || echo -
}

# Replies leave the router through r0; the server sent them with TTL 64, forwarding made 63.
for tool in "$RNF_BIN/iptables" iptables-legacy; do
	name=${tool##*/}
	for c in "--ttl-set 200:200" "--ttl-dec 10:53" "--ttl-inc 100:163" "--ttl-dec 255:0" "--ttl-set 255:255"; do
		opt=${c%:*} want=${c##*:}
		nsx "$R" "$tool" -t mangle -F POSTROUTING
		# shellcheck disable=SC2086 # two words
		nsx "$R" "$tool" -t mangle -A POSTROUTING -o r0 -p icmp -j TTL $opt || fail "$name: -j TTL $opt"
		# Clamped at 0; a local receiver takes TTL 0 (only forwarding checks it).
		expect_eq "$name: reply TTL after -j TTL $opt" "$(reply_ttl)" "$want"
	done
	nsx "$R" "$tool" -t mangle -F POSTROUTING
done
nsx "$R" iptables-legacy -t mangle -F

# A shared packet: the capture on r0 holds the same data as the packet that goes on. The
# rewrite at PREROUTING must not show in the capture.
for tool in "$RNF_BIN/iptables" iptables-legacy; do
	name=${tool##*/}
	nsx "$R" "$tool" -t mangle -A PREROUTING -i r0 -p icmp -j TTL --ttl-set 33 || fail "$name: PREROUTING"
	for side in r:"$R":r0 s:"$S":s0; do
		IFS=: read -r tag ns dev <<<"$side"
		bg "$ns" tcpdump -l -n -v -c 1 -i "$dev" icmp and dst 10.0.2.2 >"$TMPD/$tag.cap" 2>"$TMPD/$tag.err"
		eval "pid_$tag=\$BG"
	done
	_listening() { grep -q "listening on" "$TMPD/r.err" && grep -q "listening on" "$TMPD/s.err"; }
	wait_until "$WAIT" _listening || fail "$name: tcpdump did not start"
	nsx "$C" ping -n -c 1 -W "$WAIT" 10.0.2.2 >/dev/null || fail "$name: ping through the rewrite"
	# shellcheck disable=SC2154 # set by eval
	wait "$pid_r" "$pid_s" 2>/dev/null
	got_r=$(grep -o "ttl [0-9]*" "$TMPD/r.cap" | head -1)
	got_s=$(grep -o "ttl [0-9]*" "$TMPD/s.cap" | head -1)
	expect_eq "$name: TTL captured on the router's input" "$got_r" "ttl 64"
	expect_eq "$name: TTL captured at the server (33, forwarded)" "$got_s" "ttl 32"
	if grep -q "bad cksum" "$TMPD/s.cap"; then fail "$name: bad IP checksum at the server: $(cat "$TMPD/s.cap")"; fi
	if [ "$name" = iptables ]; then
		expect_eq "rnfctl: the TTL rule counted the request" "$(rule_counter "$R" mangle PREROUTING 1 packets)" 1
	fi
	nsx "$R" "$tool" -t mangle -F PREROUTING
done
finish
