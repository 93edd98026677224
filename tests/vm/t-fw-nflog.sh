#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# NFLOG hands packets to nfnetlink_log, side by side with iptables-legacy in two identical
# topologies: a listener on the router's NFLOG group (tcpdump -i nflog:N) receives each
# forwarded ping and its reply, whole or cut to --nflog-size bytes; the packets still go on
# (NFLOG does not decide) and carry the rule's prefix; the listings are iptables-legacy's.
# cost: 20
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_pair || { fail "topology"; finish; }

RULES=(
	"-A FORWARD -p icmp -j NFLOG --nflog-group 5 --nflog-prefix rust_nf-test"
	"-A FORWARD -p icmp -j NFLOG --nflog-group 6 --nflog-size 28 --nflog-threshold 1"
	"-A FORWARD -p udp -j NFLOG --nflog-prefix nothing-here"
	"-A FORWARD -p icmp"
)
both_tools "$RR" "$KR" "${RULES[@]}"

_listening() { grep -q "listening on" "$TMPD/g5.err" && grep -q "listening on" "$TMPD/g6.err"; }
for side in rnf kernel; do
	if [ $side = rnf ]; then C=$RC R=$RR; else C=$KC R=$KR; fi
	# (The capture file keeps nfnetlink_log's attributes, the prefix among them.)
	bg "$R" tcpdump -l -n -t -c 2 -i nflog:5 -U -w "$TMPD/g5.$side.pcap" --print >"$TMPD/g5.$side" 2>"$TMPD/g5.err"
	p5=$BG
	bg "$R" tcpdump -l -n -t -c 2 -i nflog:6 >"$TMPD/g6.$side" 2>"$TMPD/g6.err"
	p6=$BG
	wait_until "$WAIT" _listening || fail "$side: tcpdump did not start"
	nsx "$C" ping -n -c 1 -W "$WAIT" 10.0.2.2 >/dev/null || fail "$side: the ping did not go through"
	wait "$p5" "$p6" 2>/dev/null
	sed 's/^/        /' "$TMPD/g5.$side" "$TMPD/g6.$side"
	expect_eq "$side: packets logged to group 5" "$(grep -c "ICMP echo" "$TMPD/g5.$side")" 2
	grep -aq "rust_nf-test" "$TMPD/g5.$side.pcap" || fail "$side: group 5's packets lack the prefix"
	expect_eq "$side: packets logged to group 6" "$(wc -l <"$TMPD/g6.$side")" 2
	C=$RC R=$RR
done
# Each group got the same as with iptables-legacy (the echo ids differ between the sides).
for g in g5 g6; do
	expect_eq "group $g: what the listener printed (rust_nf against iptables-legacy)" \
		"$(sed 's/id [0-9]*/id N/' "$TMPD/$g.rnf")" "$(sed 's/id [0-9]*/id N/' "$TMPD/$g.kernel")"
done
grep -q "\[|icmp\]\|truncated\|length 28" "$TMPD/g6.rnf" || fail "group 6: no packet cut to 28 bytes: $(cat "$TMPD/g6.rnf")"

same_listings "$RR" "$KR" "-S" "-L" "-L -n -v -x --line-numbers"
finish
