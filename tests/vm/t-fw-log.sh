#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# LOG writes the same kernel-log line as iptables' LOG: the same packet is logged by the
# kernel's iptables-legacy and by rust_nf side by side, and the lines agree after their prefix.
# cost: 9
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
# Like iptables' LOG, nothing is logged from other namespaces unless this is set. It is global:
# it stays set after the test (other tests running at the same time may log too, and setting
# it back would silence them).
sysctl -qw net.netfilter.nf_log_all_netns=1 || fail "nf_log_all_netns"
# Other tests log at the same time: only lines with this run's own prefixes count.
tag="$$.$RANDOM"
rp="RNF$tag: "
lp="IPT$tag: "
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p icmp -j LOG --log-prefix "$rp" --log-level 6 || fail "rnf LOG rule"
nsx "$R" iptables-legacy -A FORWARD -p icmp -j LOG --log-prefix "$lp" --log-level 6 || fail "legacy LOG rule"
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p tcp -j LOG --log-prefix "$rp" --log-tcp-sequence --log-tcp-options --log-ip-options ||
	fail "rnf LOG rule (tcp)"
nsx "$R" iptables-legacy -A FORWARD -p tcp -j LOG --log-prefix "$lp" --log-tcp-sequence --log-tcp-options --log-ip-options ||
	fail "legacy LOG rule (tcp)"

pings 2 "echo 0"
expect_eq "echo replies" "$REPLIES" 2
tcp_server "$S" 8080 x
srv=$SRV
tcp_get "$C" 10.0.2.2 8080
expect_eq "TCP reply (exit $TCP_RC)" "$TCP_OUT" x
stop "$srv"
# The connection is over (no segment still under way), so both tools have logged everything.
wait_tcp_done 8080 "$C" "$S"

# the lines after PREFIX in the kernel log
lines() { dmesg | sed -n "s/^\[[^]]*\] $1//p"; }
# packets counted by the two LOG rules of rust_nf and of iptables-legacy
rnf_count() { nsx "$R" "$RNF_BIN/iptables" -L FORWARD -n -v -x | awk 'NR > 2 { n += $1 } END { print n + 0 }'; }
legacy_count() { nsx "$R" iptables-legacy -L FORWARD -n -v -x | awk 'NR > 2 { n += $1 } END { print n + 0 }'; }
# Every packet the rules counted has its line (a line is written as its packet passes).
logged() {
	rnf=$(lines "$rp")
	ipt=$(lines "$lp")
	rn=$(grep -c . <<<"$rnf")
	ln=$(grep -c . <<<"$ipt")
	[ "$rn" = "$(rnf_count)" ] && [ "$ln" = "$(legacy_count)" ]
}
wait_until "$WAIT" logged || fail "log lines: rust_nf $rn of $(rnf_count) packets, iptables-legacy $ln of $(legacy_count)"
log "rust_nf: $(echo "$rnf" | head -1)"
log "legacy:  $(echo "$ipt" | head -1)"
expect_eq "ICMP lines logged by rust_nf (2 requests, 2 replies)" "$(grep -c 'PROTO=ICMP ' <<<"$rnf")" 4
expect_ge "TCP lines logged by rust_nf" "$(grep -c 'PROTO=TCP ' <<<"$rnf")" 3
# The same lines, in any order: packets crossing the router at the same moment on two CPUs
# may interleave differently in the two tools' lines.
if [ "$(sort <<<"$rnf")" = "$(sort <<<"$ipt")" ]; then
	log "ok: every line identical to iptables-legacy's ($rn lines)"
else
	fail "log lines differ from iptables-legacy's:"
	diff <(sort <<<"$ipt") <(sort <<<"$rnf") | head -10 | sed 's/^/        /'
fi
finish
