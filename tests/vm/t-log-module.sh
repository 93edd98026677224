#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# LOG with the kernel's syslog logger as a module (as the test kernel builds it): a LOG rule
# loads nf_log_syslog and holds a reference on it while the rule exists, as xt_LOG does; the
# packets are logged; when the rule goes, the reference goes and the logger can unload.
# lane: exclusive
# cost: 8
. "$(dirname "$0")/lib.sh"
N="$PFX-log"
trap 'topo_down; rnf_unload' EXIT

[ -d /sys/module/nf_log_syslog ] && [ ! -e /sys/module/nf_log_syslog/refcnt ] && skip "nf_log_syslog is built in"
modinfo nf_log_syslog >/dev/null 2>&1 || skip "no nf_log_syslog module"
# Nothing else holds it now (exclusive lane: no other test runs).
if [ -e /sys/module/nf_log_syslog/refcnt ]; then rmmod nf_log_syslog || fail "rmmod nf_log_syslog before"; fi
rnf_load || { fail "insmod"; finish; }
# The logger logs other namespaces' packets only when told to.
sysctl -qw net.netfilter.nf_log_all_netns=1 || fail "nf_log_all_netns"
ns_add "$N" || finish
expect_eq "nf_log_syslog loaded before any LOG rule" "$([ -e /sys/module/nf_log_syslog ] && echo yes || echo no)" no
nsx "$N" "$RNF_BIN/iptables" -A INPUT -p icmp --icmp-type echo-request -j LOG --log-prefix "rnf-logmod: " ||
	fail "LOG rule"
expect_eq "nf_log_syslog references after the LOG rule" "$(cat /sys/module/nf_log_syslog/refcnt 2>&1)" 1
nsx "$N" ping -n -c 2 -i 0.05 -W "$WAIT" 127.0.0.1 >/dev/null || fail "ping"
logged() { [ "$(dmesg | grep -c 'rnf-logmod: IN=lo')" -ge 2 ]; }
wait_until "$WAIT" logged && log "ok: both echo requests logged" || fail "log lines: $(dmesg | grep -c 'rnf-logmod:')"
nsx "$N" "$RNF_BIN/iptables" -F INPUT || fail "flush"
expect_eq "nf_log_syslog references after the flush" "$(cat /sys/module/nf_log_syslog/refcnt 2>&1)" 0
rmmod nf_log_syslog && log "ok: nf_log_syslog unloads" || fail "nf_log_syslog would not unload"
finish
