#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# LOG writes the same kernel-log line as iptables' LOG: the same packet is logged by the
# kernel's iptables-legacy and by rust_nf side by side, and the lines agree after their prefix.
. "$(dirname "$0")/lib.sh"
trap 'topo_down; sysctl -qw net.netfilter.nf_log_all_netns=0' EXIT

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }
# Like iptables' LOG, nothing is logged from other namespaces unless this is set.
sysctl -qw net.netfilter.nf_log_all_netns=1
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p icmp -j LOG --log-prefix "RNF: " --log-level 6 || fail "rnf LOG rule"
nsx "$R" iptables-legacy -A FORWARD -p icmp -j LOG --log-prefix "IPT: " --log-level 6 || fail "legacy LOG rule"
nsx "$R" "$RNF_BIN/iptables" -A FORWARD -p tcp -j LOG --log-prefix "RNF: " --log-tcp-sequence --log-tcp-options --log-ip-options
nsx "$R" iptables-legacy -A FORWARD -p tcp -j LOG --log-prefix "IPT: " --log-tcp-sequence --log-tcp-options --log-ip-options
# Only lines after this point are compared (the log is not cleared: the runner checks all of it).
skip_lines=$(dmesg | wc -l)
nsx "$C" ping -c 2 -i 0.2 -W 2 10.0.2.2 >/dev/null || fail "ping"
nsx "$S" socat -T3 TCP-LISTEN:8080,reuseaddr SYSTEM:'echo x' &
sleep 0.5
nsx "$C" socat -T3 -t3 - TCP:10.0.2.2:8080 </dev/null >/dev/null
wait
sleep 0.2
rnf=$(dmesg | tail -n +$((skip_lines + 1)) | sed -n 's/^\[[^]]*\] RNF: //p')
ipt=$(dmesg | tail -n +$((skip_lines + 1)) | sed -n 's/^\[[^]]*\] IPT: //p')
log "rust_nf: $(echo "$rnf" | head -1)"
log "legacy:  $(echo "$ipt" | head -1)"
expect_ge "lines logged by rust_nf" "$(echo "$rnf" | grep -c .)" 6
if [ "$rnf" = "$ipt" ]; then
	log "ok: every line identical to iptables-legacy's ($(echo "$rnf" | wc -l) lines)"
else
	fail "log lines differ from iptables-legacy's:"
	diff <(echo "$ipt") <(echo "$rnf") | head -10 | sed 's/^/        /'
fi
nsx "$R" iptables-legacy -F FORWARD
finish
