#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A full connection table (module parameter ct_max=64): 64 established, ASSURED TCP flows
# fill it; the next SYN cannot evict any of them and is dropped, counted, and reported once
# in the kernel log ("table full, dropping packet"), while the 64 flows keep working. Then the
# module unloads with the table full and the connections open, and frees everything (the
# harness checks the kernel log and kmemleak).
# lane: exclusive
# cost: 15
. "$(dirname "$0")/lib.sh"
trap 'topo_down; rnf_unload' EXIT

rnf_unload || { fail "rust_nf is loaded and does not unload"; finish; }
insmod "$RNF_KO" ct_max=64 ct_buckets=16 || { fail "insmod ct_max=64"; finish; }
topo_up || { fail "topology"; finish; }
ln -s "$(command -v rnfctl)" "$RNF_BIN/conntrack"
DATA=$(dirname "$0")/data
f() { nsx "$R" "$RNF_BIN/iptables" "$@" || fail "iptables $*"; }
f -P FORWARD DROP
f -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
f -A FORWARD -p tcp --dport 7000 -m conntrack --ctstate NEW -j ACCEPT

bg "$S" python3 "$DATA/tcphold.py" server 10.0.2.2 7000
wait_tcp_listen "$S" 7000
# A counter summed over the CPUs (rnfctl's own line after conntrack's per-CPU lines).
stat() { nsx "$R" "$RNF_BIN/conntrack" -S | sed -n 's/^rust_nf://p' | tr ' ' '\n' | sed -n "s/^$1=//p"; }
expect_eq "table size from ct_max" "$(stat max)" 64
bg "$C" python3 "$DATA/tcphold.py" client 10.0.2.2 7000 64 >"$TMPD/client.out" 2>&1
wait_until 60 file_is "$TMPD/client.out" "64 up" || fail "64 connections: $(cat "$TMPD/client.out")"
_dropped() { [ "$(stat drop)" -ge 1 ] 2>/dev/null; }
wait_until "$WAIT" _dropped || fail "the 65th SYN was not dropped as table full: $(nsx "$R" "$RNF_BIN/conntrack" -S)"
expect_eq "flows in the table" "$(nsx "$R" "$RNF_BIN/conntrack" -C)" 64
assured=$(nsx "$R" "$RNF_BIN/conntrack" -L 2>/dev/null | grep -c "ESTABLISHED .*\[ASSURED\]")
expect_eq "ESTABLISHED, ASSURED flows" "$assured" 64
expect_eq "flows evicted (none may be)" "$(stat early_drop)" 0
dmesg | grep -q "rust_nf: conntrack table full, dropping packet" || fail "no 'table full' message in the kernel log"
log "ok: table full: $(nsx "$R" "$RNF_BIN/conntrack" -S)"
expect_eq "client connections still established" \
	"$(nsx "$C" ss -Htn state established "( dport = :7000 )" | wc -l)" 64

# Unload with everything in place.
rmmod rust_nf || fail "rmmod with a full table"
rnf_loaded && fail "rust_nf still loaded"
finish
